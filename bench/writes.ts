// The write mix's staff member: price and stock edits (PATCH /api/products/{id}/) while the shopper
// mix reads, and how soon reads show each edit. After a PATCH's 200 the writer reads the product's
// page (and, for a price, the list page it is on) back to back until both show the new value.
// Staleness is the time from the 200 to the sending of that first fresh read: about 0 when the
// first read after the 200 already shows the edit, and otherwise the window in which reads were
// answered stale (each counted), measured to the resolution of one read under the load. When that
// read was answered is reported too: what a client polling for the edit waits.
import { percentile } from './latency.ts';

export interface WriteRun {
  edits: number;
  seconds: number;
  /** PATCH latency, ms. */
  patch: { p50: number; p99: number };
  /** From a PATCH's 200 to sending the first read that showed the change, ms. */
  staleness: { p50: number; p95: number; p99: number; max: number };
  /** From a PATCH's 200 to the answer of that read, ms. */
  answered: { p50: number; p99: number };
  /** Reads sent after a PATCH's 200 that still showed the old value. */
  staleReads: number;
  errors: number;
}

interface Card {
  id: number;
  price: string;
  stock_quantity?: number;
}

export async function staffToken(base: string, email: string, password: string): Promise<string> {
  const r = await fetch(`${base}/api/users/auth/login/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
  if (!r.ok) throw new Error(`staff login: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { access: string }).access;
}

const get = async <T>(url: string): Promise<T> => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return (await r.json()) as T;
};

/**
 * Edits the products of one list page in turn, one edit every `pauseMs` plus the time to see it,
 * alternating a price edit and a stock edit (or stock edits only), until `stop()`. Each value is new (the price moves by
 * a cent per edit, the stock up by one), so a read shows either the old value or this edit's.
 */
export function staffWriter(base: string, token: string, listPath: string, pauseMs: number, edits: 'price and stock' | 'stock' = 'price and stock'): { stop: () => Promise<WriteRun> } {
  let stopping = false;
  const patchTimes: number[] = [];
  const staleness: number[] = [];
  const answered: number[] = [];
  let staleReads = 0;
  let errors = 0;
  const started = performance.now();
  const done = (async () => {
    const cards = (await get<{ results: Card[] }>(base + listPath)).results;
    const cents = new Map(cards.map((c) => [c.id, Math.round(Number(c.price) * 100)]));
    for (let i = 0; !stopping; i++) {
      const card = cards[i % cards.length]!;
      const isPrice = edits !== 'stock' && i % 2 === 0;
      const value = isPrice ? ((cents.get(card.id)! + i + 1) / 100).toFixed(2) : 100 + i;
      const t = performance.now();
      const r = await fetch(`${base}/api/products/${card.id}/`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(isPrice ? { price: value } : { stock_quantity: value }),
      });
      await r.arrayBuffer();
      const saved = performance.now();
      if (r.status !== 200) {
        errors++;
        continue;
      }
      patchTimes.push(saved - t);
      for (;;) {
        const sent = performance.now();
        const [detail, list] = await Promise.all([
          get<Card>(`${base}/api/products/${card.id}/`),
          isPrice ? get<{ results: Card[] }>(base + listPath) : undefined,
        ]);
        const listed = list?.results.find((c) => c.id === card.id);
        const fresh = isPrice ? detail.price === value && (!listed || listed.price === value) : detail.stock_quantity === value;
        if (fresh) {
          staleness.push(sent - saved);
          answered.push(performance.now() - saved);
          break;
        }
        staleReads++;
        if (performance.now() - saved > 30_000) throw new Error(`product ${card.id}: edit not visible after 30 s`);
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  })();
  done.catch(() => {}); // rethrown by stop(), not left unhandled meanwhile
  return {
    stop: async () => {
      stopping = true;
      await done;
      const s = Float64Array.from(staleness).sort();
      const p = Float64Array.from(patchTimes).sort();
      const a = Float64Array.from(answered).sort();
      return {
        edits: staleness.length,
        seconds: (performance.now() - started) / 1000,
        patch: { p50: percentile(p, 50), p99: percentile(p, 99) },
        staleness: { p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s.length ? s[s.length - 1]! : 0 },
        answered: { p50: percentile(a, 50), p99: percentile(a, 99) },
        staleReads,
        errors,
      };
    },
  };
}
