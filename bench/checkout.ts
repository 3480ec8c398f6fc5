// The checkout mix: virtual shoppers who each buy as a new guest (their own `sessionid` cookie and
// cart): a page of in-stock products, one or two product pages, add those to the cart, the cart,
// check out, pay on the built-in test provider (ALLOW_TEST_PAYMENTS), and verify the order.
// A hand-rolled loop on fetch rather than autocannon: each step needs the answer before it (the
// cookie, the checkout session), and autocannon's connections would share one cart.
import { summarize, type Result } from './latency.ts';

export interface CheckoutRun {
  result: Result;
  /** Purchases paid on the test provider and verified as orders. */
  orders: number;
  /** Purchases given up because what was picked sold out meanwhile: the shop's answer, not an error. */
  soldOut: number;
  seconds: number;
}

interface Tally {
  latencies: number[];
  errors: number;
  non2xx: number;
  orders: number;
  soldOut: number;
}

const ADDRESS = { name: 'Load Test', address: '1 Test Street', city: 'Portland', state: 'OR', postal_code: '97201', country: 'US' };

/** Thrown when a step's answer is not what a shopper can go on from; the purchase is abandoned. */
class Abandon extends Error {}

/** One guest, one purchase. Every request is timed from sending to the last byte of the body. */
async function purchase(base: string, pages: number, n: number, t: Tally): Promise<void> {
  let cookie = '';
  const call = async (path: string, init: RequestInit = {}, expected = [200]): Promise<{ status: number; body: string }> => {
    const started = performance.now();
    let res: Response;
    let body: string;
    try {
      res = await fetch(base + path, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) } });
      body = await res.text();
    } catch {
      t.errors++;
      throw new Abandon();
    }
    t.latencies.push(performance.now() - started);
    // The guest's session arrives with its first cart call; later answers may renew it.
    const session = res.headers.getSetCookie().find((c) => c.startsWith('sessionid='));
    if (session) cookie = session.split(';')[0]!;
    if (!expected.includes(res.status)) {
      if (res.status === 400 && /stock|available|empty/i.test(body)) t.soldOut++;
      else t.non2xx++;
      throw new Abandon();
    }
    return { status: res.status, body };
  };
  const json = { 'content-type': 'application/json' };
  try {
    const page = JSON.parse((await call(`/api/products/?in_stock=true&page=${1 + Math.floor(Math.random() * pages)}`)).body) as { results: { id: number }[] };
    const picks = page.results.sort(() => Math.random() - 0.5).slice(0, 1 + Math.floor(Math.random() * 2));
    if (!picks.length) return;
    for (const p of picks) {
      await call(`/api/products/${p.id}/`);
      await call('/api/cart/add/', { method: 'POST', headers: json, body: JSON.stringify({ product_id: p.id, quantity: 1 }) });
    }
    await call('/api/cart/');
    const email = `load${n}@example.com`;
    const session = JSON.parse((await call('/api/payments/create-checkout-session/', { method: 'POST', headers: json, body: JSON.stringify({ email, shipping_address: { ...ADDRESS, email } }) })).body) as {
      checkout_session_id: string;
      checkout_url: string;
    };
    // The test provider's payment page is on this server; paying answers 303 to the storefront.
    await call(new URL(session.checkout_url).pathname, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=paid' }, [303]);
    const verified = JSON.parse((await call(`/api/payments/verify-checkout-session/?session_id=${encodeURIComponent(session.checkout_session_id)}`)).body) as { status: string };
    if (verified.status === 'success') t.orders++;
    else t.errors++;
  } catch (err) {
    if (!(err instanceof Abandon)) throw err;
  }
}

/** The first pages of in-stock products, which shoppers mostly buy from. */
async function buyingPages(base: string): Promise<number> {
  const first = (await (await fetch(`${base}/api/products/?in_stock=true`)).json()) as { count: number };
  // Deeper pages spread the stock locks thinner.
  return Math.max(1, Math.min(10, Math.floor(first.count / 20)));
}

function finish(t: Tally, started: number): CheckoutRun {
  const elapsed = (performance.now() - started) / 1000;
  const requests = t.latencies.length;
  return {
    result: summarize(t.latencies, { rps: requests / elapsed, errors: t.errors, non2xx: t.non2xx, requests }),
    orders: t.orders,
    soldOut: t.soldOut,
    seconds: elapsed,
  };
}

/**
 * Purchases started at a steady `perSecond` for `seconds` (an open loop: a slow server makes them
 * overlap, it does not slow the arrivals), each a new guest; those under way at the end finish.
 */
export async function pacedCheckouts(base: string, perSecond: number, seconds: number): Promise<CheckoutRun> {
  const pages = await buyingPages(base);
  const t: Tally = { latencies: [], errors: 0, non2xx: 0, orders: 0, soldOut: 0 };
  const started = performance.now();
  const running: Promise<void>[] = [];
  for (let n = 0; n < Math.round(perSecond * seconds); n++) {
    const due = started + (n * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    running.push(purchase(base, pages, n, t));
  }
  await Promise.all(running);
  return finish(t, started);
}

/** `users` shoppers buying back to back for `seconds`; purchases under way at the end finish. */
export async function checkoutMix(base: string, users: number, seconds: number): Promise<CheckoutRun> {
  const pages = await buyingPages(base);
  const t: Tally = { latencies: [], errors: 0, non2xx: 0, orders: 0, soldOut: 0 };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: users }, async () => {
      while (performance.now() < deadline) await purchase(base, pages, n++, t);
    }),
  );
  return finish(t, started);
}
