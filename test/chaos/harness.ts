// What the fault scenarios share: real `pasargad serve` / `worker` processes on loopback, a steady
// shopper load that counts every status, guest purchases on the test payment provider, and the data
// checks made after a fault (stock accounted for, each order whole or absent, one email per order).
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type DB } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { seedCatalog } from '../../src/db/seed.ts';
import { freePort } from '../helpers/net.ts';

export { sleep };
export { freePort, waitFor } from '../helpers/net.ts';

/**
 * Settings every scenario starts from: limits far above the load (a scenario that tests a limit
 * sets its own), loopback trusted as the proxy so X-Forwarded-For tells clients apart, the
 * built-in test payment provider.
 */
export function chaosEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    SECRET_KEY: 'chaos-secret-key-that-is-long-enough-0000',
    TRUSTED_PROXIES: '127.0.0.1',
    RATE_LIMIT_ALLOWLIST: '',
    RATE_LIMIT_ANON: '1000000/hour',
    RATE_LIMIT_USER: '1000000/hour',
    RATE_LIMIT_BURST: '1000000/minute',
    RATE_LIMIT_SUSTAINED: '10000000/day',
    RATE_LIMIT_STAFF: '1000000/hour',
    ALLOW_TEST_PAYMENTS: 'true',
    DEMO_PRODUCTS: '0',
    ...extra,
  };
}

/** Migrates and seeds the database an environment names (PostgreSQL, or PGlite in DATA_DIR). */
export async function prepareDatabase(env: NodeJS.ProcessEnv, products = 60): Promise<void> {
  const database = await openDatabase(loadConfig(env));
  try {
    await migrate(database);
    await seedCatalog(database, { products, seed: 11 });
  } finally {
    await database.close();
  }
}

export interface Proc {
  name: string;
  /** http://127.0.0.1:port for `serve`; empty for a worker. */
  base: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Starts `pasargad <role>`; a `serve` is returned once /health/ answers. */
export async function startProc(name: string, env: NodeJS.ProcessEnv, role: string[] = ['serve']): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...role], {
    env: { ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => (live.delete(child), resolve(code))));
  const base = role[0] === 'serve' ? `http://127.0.0.1:${port}` : '';
  if (base) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}:\n${out.slice(-3000)}`);
      try {
        if ((await fetch(`${base}/health/`, { signal: AbortSignal.timeout(5_000) })).ok) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${name} did not answer /health/ within 60 s:\n${out.slice(-3000)}`);
      }
      await sleep(200);
    }
  }
  return { name, base, child, output: () => out, exited };
}

/** SIGTERM (graceful), SIGKILL if that takes over 20 s. */
export async function stopProc(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
  await p.exited;
  clearTimeout(timer);
}

/** The process's log lines at error level or above (pino levels 50, 60), for assertion messages. */
export function errorLines(p: Proc): string {
  return p
    .output()
    .split('\n')
    .filter((l) => /"level":[56]0/.test(l) || /Error|error:/.test(l))
    .slice(-20)
    .join('\n');
}

/** Catalog reads in bench/run.ts's proportions (3 list : 2 detail : 1 search) over the seeded catalog. */
export async function shopperPaths(base: string): Promise<string[]> {
  const page = (await (await fetch(`${base}/api/products/?page_size=100`)).json()) as { results: { id: number }[] };
  const ids = page.results.map((p) => p.id);
  const words = ['dragon', 'lamp', 'vase', 'minia', 'gear', 'dragn'];
  const orderings = ['', '&ordering=price', '&ordering=-price', '&ordering=name'];
  const paths: string[] = [];
  for (let i = 0; i < 120; i++) {
    const k = i % 6;
    if (k < 3) paths.push(`/api/products/?page=${1 + (i % 3)}${orderings[i % orderings.length]}`);
    else if (k < 5) paths.push(`/api/products/${ids[(i * 7) % ids.length]}/`);
    else paths.push(`/api/products/search/?q=${words[i % words.length]}`);
  }
  return paths;
}

export interface Tally {
  sent: number;
  /** Responses by status. */
  statuses: Record<number, number>;
  /** Requests that got no response (refused, reset), by error code. */
  failures: Record<string, number>;
  /** The first few 5xx bodies, for assertion messages. */
  samples: string[];
  count(status: number): number;
  serverErrors(): number;
}

export function tally(): Tally {
  return {
    sent: 0,
    statuses: {},
    failures: {},
    samples: [],
    count(status) {
      return this.statuses[status] ?? 0;
    },
    serverErrors() {
      return Object.entries(this.statuses).reduce((n, [s, c]) => (Number(s) >= 500 ? n + c : n), 0);
    },
  };
}

/** One response into a tally; its body read so the connection is reused. */
export async function record(t: Tally, send: () => Promise<Response>): Promise<Response | undefined> {
  t.sent++;
  try {
    const res = await send();
    const body = await res.text();
    t.statuses[res.status] = (t.statuses[res.status] ?? 0) + 1;
    if (res.status >= 500 && t.samples.length < 5) t.samples.push(`${res.status} ${body.slice(0, 300)}`);
    return new Response(body, { status: res.status, headers: res.headers });
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    t.failures[code] = (t.failures[code] ?? 0) + 1;
    return undefined;
  }
}

export interface Load {
  tally: Tally;
  /** Stops sending; resolves once the requests under way have their answers. */
  stop(): Promise<Tally>;
}

/**
 * A steady, light shopper load: `connections` loops, each sending the next catalog read as soon
 * as the last one answered (plus `pauseMs`), to whichever base `pick` names.
 */
export function shopperLoad(pick: (i: number) => string, paths: string[], o: { connections?: number; pauseMs?: number; headers?: (i: number) => Record<string, string> } = {}): Load {
  const t = tally();
  let running = true;
  let n = 0;
  const loops = Array.from({ length: o.connections ?? 4 }, async () => {
    while (running) {
      const i = n++;
      await record(t, () => fetch(pick(i) + paths[i % paths.length]!, { headers: o.headers?.(i), signal: AbortSignal.timeout(30_000) }));
      if (o.pauseMs) await sleep(o.pauseMs);
    }
  });
  return {
    tally: t,
    async stop() {
      running = false;
      await Promise.all(loops);
      return t;
    },
  };
}

const ADDRESS = { name: 'Chaos Shopper', address: '1 Test Street', city: 'Portland', state: 'OR', postal_code: '97201', country: 'US' };

export interface Purchase {
  /** Paid and verified as an order. */
  paid: boolean;
  /** The step that did not answer as a shopper needs, and its status (0: no response). */
  failedAt?: string;
  status?: number;
  body?: string;
}

/** A guest's checkout, opened and not yet paid. */
export interface OpenCheckout {
  base: () => string;
  cookie: string;
  /** The guest's address (X-Forwarded-For), so each guest meets its own limits. */
  address: string;
  sessionId: string;
  url: string;
}

class StepFailed extends Error {
  constructor(readonly purchase: Purchase) {
    super(purchase.failedAt);
  }
}

async function step(c: { base: () => string; cookie: string; address: string }, t: Tally, name: string, path: string, init: RequestInit, expected: number): Promise<string> {
  const res = await record(t, () => fetch(c.base() + path, { ...init, redirect: 'manual', signal: AbortSignal.timeout(30_000), headers: { ...(init.headers as Record<string, string>), 'x-forwarded-for': c.address, ...(c.cookie ? { cookie: c.cookie } : {}) } }));
  if (!res) throw new StepFailed({ paid: false, failedAt: name, status: 0 });
  const session = res.headers.getSetCookie().find((x) => x.startsWith('sessionid='));
  if (session) c.cookie = session.split(';')[0]!;
  const body = await res.text();
  if (res.status !== expected) throw new StepFailed({ paid: false, failedAt: name, status: res.status, body: body.slice(0, 300) });
  return body;
}

const json = { 'content-type': 'application/json' };
let guests = 0;

/** A guest puts `quantity` of a product in a new cart and opens a checkout on the test provider. */
export async function openCheckout(base: string | (() => string), productId: number, email: string, t: Tally, quantity = 1): Promise<OpenCheckout | Purchase> {
  guests++;
  const c = { base: typeof base === 'string' ? () => base : base, cookie: '', address: `10.77.${(guests >> 8) & 255}.${guests & 255}` };
  try {
    await step(c, t, 'add to cart', '/api/cart/add/', { method: 'POST', headers: json, body: JSON.stringify({ product_id: productId, quantity }) }, 200);
    const body = await step(c, t, 'checkout', '/api/payments/create-checkout-session/', { method: 'POST', headers: json, body: JSON.stringify({ email, shipping_address: { ...ADDRESS, email } }) }, 200);
    const session = JSON.parse(body) as { checkout_session_id: string; checkout_url: string };
    return { ...c, sessionId: session.checkout_session_id, url: session.checkout_url };
  } catch (err) {
    if (err instanceof StepFailed) return err.purchase;
    throw err;
  }
}

/** Pays an open checkout on the test provider's page and verifies the order, as the storefront does. */
export async function pay(c: OpenCheckout, t: Tally): Promise<Purchase> {
  try {
    await step(c, t, 'pay', new URL(c.url).pathname, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=paid' }, 303);
    const verified = JSON.parse(await step(c, t, 'verify', `/api/payments/verify-checkout-session/?session_id=${encodeURIComponent(c.sessionId)}`, {}, 200)) as { status: string };
    return verified.status === 'success' ? { paid: true } : { paid: false, failedAt: 'verify', status: 200, body: JSON.stringify(verified) };
  } catch (err) {
    if (err instanceof StepFailed) return err.purchase;
    throw err;
  }
}

/** One guest buys `quantity` of a product on the test provider, as bench/checkout.ts's shoppers do. */
export async function purchase(base: string | (() => string), productId: number, email: string, t: Tally, quantity = 1): Promise<Purchase> {
  const c = await openCheckout(base, productId, email, t, quantity);
  return 'sessionId' in c ? pay(c, t) : c;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Stock of every product, to compare with after the scenario. */
export async function stockSnapshot(db: Kysely<DB>): Promise<Map<number, number>> {
  const rows = await db.selectFrom('products').select(['id', 'stock_quantity']).execute();
  return new Map(rows.map((r) => [Number(r.id), Number(r.stock_quantity)]));
}

/**
 * The order data checks: every unit of stock is on the shelf, held by an open checkout or in an
 * order; every order is whole (items, a payment, its checkout complete and pointing at it, totals
 * adding up); no checkout is complete without its order.
 */
export async function orderChecks(db: Kysely<DB>, before: Map<number, number>): Promise<Check[]> {
  const { rows: stock } = await sql<{ id: number; stock: number; held: number; sold: number }>`
    select p.id, p.stock_quantity as stock,
      coalesce((select sum(r.quantity) from stock_reservations r join checkouts c on c.id = r.checkout_id where r.product_id = p.id and c.status = 'open'), 0)::int as held,
      coalesce((select sum(i.quantity) from order_items i join orders o on o.id = i.order_id where i.product_id = p.id and o.status not in ('cancelled', 'refunded')), 0)::int as sold
    from products p`.execute(db);
  const off = stock.filter((r) => before.get(Number(r.id)) !== Number(r.stock) + Number(r.held) + Number(r.sold));
  const { rows: broken } = await sql<{ order_number: string; why: string }>`
    select o.order_number, case
        when not exists (select 1 from order_items i where i.order_id = o.id) then 'no items'
        when not exists (select 1 from payments p where p.order_id = o.id) then 'no payment'
        when not exists (select 1 from checkouts c where c.order_id = o.id and c.status = 'complete') then 'checkout not complete'
        when o.subtotal <> (select sum(i.total_price) from order_items i where i.order_id = o.id) then 'subtotal is not the items'
        when o.total_amount <> o.subtotal - o.discount_amount + o.shipping_cost + o.tax_amount then 'total does not add up'
      end as why
    from orders o`.execute(db);
  const halfOrders = broken.filter((b) => b.why);
  const { rows: orphans } = await sql<{ id: number }>`select id from checkouts where status = 'complete' and (order_id is null or not exists (select 1 from orders o where o.id = checkouts.order_id))`.execute(db);
  return [
    { name: 'stock accounted for', ok: off.length === 0, detail: `${off.length} products off: ${JSON.stringify(off.slice(0, 5))}` },
    { name: 'each order whole', ok: halfOrders.length === 0, detail: JSON.stringify(halfOrders.slice(0, 5)) },
    { name: 'no complete checkout without its order', ok: orphans.length === 0, detail: JSON.stringify(orphans.slice(0, 5)) },
  ];
}
