// Wire formats of API-CONTRACT.md §1.2 that JSON has no type for.

/**
 * A PostgreSQL UTC timestamp (`2026-11-25 20:45:21.0978+00`, or the JSON form
 * `2026-11-25T20:45:21.0978+00:00`) as the contract's `2026-11-25T20:45:21.097800Z`: microseconds
 * always six digits, left out when zero. Assumes the session time zone is UTC (database.ts).
 */
export function apiTime(value: string): string;
export function apiTime(value: string | null): string | null;
export function apiTime(value: string | null): string | null {
  if (value === null) return null;
  const base = `${value.slice(0, 10)}T${value.slice(11, 19)}`;
  if (value.charCodeAt(19) !== 46 /* . */) return `${base}Z`;
  let end = 20;
  while (end < value.length && value.charCodeAt(end) >= 48 && value.charCodeAt(end) <= 57) end++;
  const micros = value.slice(20, end).padEnd(6, '0').slice(0, 6);
  return micros === '000000' ? `${base}Z` : `${base}.${micros}Z`;
}

/** `average_rating`: a JSON number, 0 without reviews (the column is numeric(2,1) text). */
export function rating(value: string | number): number {
  return Number(value);
}
