// Money in integer cents: exact for every numeric(10,2) value (at most 10^10 cents, far inside
// Number's exact integers), so sums, shipping and discounts never pick up binary-float error.
// Amounts come in as the decimal strings the database returns and go out the same way.

const DECIMAL = /^(-)?(\d{1,12})(?:\.(\d{1,2}))?$/;

/** "19.99" → 1999. Throws on anything that is not a plain decimal with at most 2 places. */
export function toCents(amount: string | number): number {
  const text = typeof amount === 'number' ? amount.toFixed(2) : amount.trim();
  const m = DECIMAL.exec(text);
  if (!m) throw new RangeError(`not a money amount: ${JSON.stringify(amount)}`);
  const cents = Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'));
  return m[1] ? -cents : cents;
}

/** 1999 → "19.99". */
export function fromCents(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(Math.round(cents));
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** `percent`% of `cents`, rounded half up to the cent (percent as a decimal string, e.g. "12.5"). */
export function percentOf(cents: number, percent: string | number): number {
  // Percent has at most 2 places: scale to an integer so the product stays exact.
  const p = toCents(percent);
  return Math.floor((cents * p + 5000) / 10000);
}

/** Whether `text` is a money amount this module accepts. */
export function isMoney(text: string): boolean {
  return DECIMAL.test(text.trim());
}
