// A flash sale with one shared promotion code, on two production instances (PostgreSQL + Redis):
// 100 guests each fill a cart, check out with the code and pay on the built-in test provider, all
// at once and spread over both instances, while shoppers keep reading the catalog. Checkout locks
// products then the code; paying inserts the order (its foreign key takes a key-share lock on the
// code) then its items (key-share on the products): with FOR UPDATE locks those two orders
// deadlocked and the stuck connections drained the pools (issue 20). Nothing may answer 5xx and the
// books must balance to the unit: orders = payments = buyers, stock and code usage exact.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { loadConfig, redisDatabase } from '../../src/config.ts';
import { openDatabase } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { deleteMatching } from '../../src/infra/cache/redis-store.ts';
import { postgresEnv, uniqueSchema } from '../helpers/db.ts';
import { TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { errorLines, record, shopperLoad, startProc, stopProc, tally, type Proc, type Tally } from './harness.ts';

const BUYERS = Number(process.env.FLASH_SALE_BUYERS ?? 100);
const PRODUCTS = 6;
const STOCK = 1000;
const CODE = 'FLASH20';
/** The longest any one request may take before the test calls it stuck. */
const REQUEST_BOUND_MS = 60_000;

const json = { 'content-type': 'application/json' };

interface Buyer {
  n: number;
  cookie: string;
  address: string;
  lines: { product: number; quantity: number }[];
  paid: boolean;
  failedAt?: string;
}

describe('flash sale: 100 buyers, one shared promotion code, two production instances on PostgreSQL and Redis', { timeout: 300_000 }, () => {
  const schema = uniqueSchema();
  const prefix = uniquePrefix();
  const dataDir = mkdtempSync(join(tmpdir(), 'pasargad-flash-'));
  const env = postgresEnv(schema, {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    NODE_ENV: 'production',
    ALLOW_TEST_PAYMENTS: 'true',
    LOG_LEVEL: 'warn',
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    JOBS_IN_PROCESS: 'true',
    RATE_LIMIT_ENABLED: 'false',
    TRUSTED_PROXIES: '127.0.0.1',
    DEMO_PRODUCTS: '0',
    DATA_DIR: dataDir,
  });
  let a: Proc | undefined;
  let b: Proc | undefined;
  let productIds: number[] = [];
  let promotionId = 0;

  before(async () => {
    const database = await openDatabase(loadConfig(env));
    try {
      await migrate(database);
      const cat = await database.db.insertInto('categories').values({ name: 'Flash', description: '' }).returning('id').executeTakeFirstOrThrow();
      for (let i = 0; i < PRODUCTS; i++) {
        const p = await database.db
          .insertInto('products')
          .values({ name: `Flash print ${i}`, description: '', price: `${10 + i}.00`, category_id: cat.id, sku: `FLASH-${i}`, stock_quantity: STOCK, weight: '200.00', material: 'PLA', print_time: 60, is_active: true })
          .returning('id')
          .executeTakeFirstOrThrow();
        productIds.push(Number(p.id));
      }
      const promo = await database.db
        .insertInto('promotion_codes')
        .values({
          code: CODE,
          discount_type: 'percentage',
          discount_value: '20.00',
          // Exactly one use per buyer: a hold leaked or counted twice (a replaced checkout, a retried
          // transaction) turns the last buyers away, and the test fails.
          usage_type: 'limited',
          usage_limit: BUYERS,
          usage_limit_per_user: 1,
          valid_from: new Date(Date.now() - 86_400_000).toISOString(),
          valid_until: new Date(Date.now() + 86_400_000).toISOString(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      promotionId = Number(promo.id);
    } finally {
      await database.close();
    }
    const started = await Promise.allSettled([startProc('A', env), startProc('B', env)]);
    [a, b] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  });

  after(async () => {
    await Promise.all([a, b].map((i) => stopProc(i)));
    const database = await openDatabase(loadConfig(env));
    await sql.raw(`drop schema if exists ${schema} cascade`).execute(database.db);
    await database.close();
    for (const db of [0, 1, 2, 3]) {
      const client = new Redis(redisDatabase(TEST_REDIS_URL, db));
      await deleteMatching(client, prefix);
      client.disconnect();
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** One step of a buyer's purchase on instance `base`; the cookie jar is the buyer's. */
  async function step(t: Tally, buyer: Buyer, base: string, name: string, path: string, init: RequestInit, expected: number): Promise<string | undefined> {
    const res = await record(t, () =>
      fetch(base + path, {
        ...init,
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_BOUND_MS),
        headers: { ...(init.headers as Record<string, string>), 'x-forwarded-for': buyer.address, ...(buyer.cookie ? { cookie: buyer.cookie } : {}) },
      }),
    );
    if (!res) {
      buyer.failedAt = `${name}: no answer within ${REQUEST_BOUND_MS} ms`;
      return undefined;
    }
    const session = res.headers.getSetCookie().find((x) => x.startsWith('sessionid='));
    if (session) buyer.cookie = session.split(';')[0]!;
    const body = await res.text();
    if (res.status !== expected) {
      buyer.failedAt = `${name}: ${res.status} ${body.slice(0, 200)}`;
      return undefined;
    }
    return body;
  }

  async function buy(t: Tally, buyer: Buyer): Promise<void> {
    // Every step alternates instance, as a load balancer without affinity would send them.
    const on = (k: number) => ((buyer.n + k) % 2 === 0 ? a! : b!).base;
    for (const [k, l] of buyer.lines.entries()) {
      if ((await step(t, buyer, on(k), 'add to cart', '/api/cart/add/', { method: 'POST', headers: json, body: JSON.stringify({ product_id: l.product, quantity: l.quantity }) }, 200)) === undefined) return;
    }
    const email = `buyer${buyer.n}@flash.test`;
    const started = await step(t, buyer, on(1), 'checkout', '/api/payments/create-checkout-session/', {
      method: 'POST',
      headers: { ...json, 'idempotency-key': `flash-${buyer.n}` },
      body: JSON.stringify({ promotion_code: CODE, email, shipping_address: { name: `Buyer ${buyer.n}`, address: '1 Sale Street', city: 'Portland', state: 'OR', postal_code: '97201', country: 'US', email } }),
    }, 200);
    if (started === undefined) return;
    const session = JSON.parse(started) as { checkout_session_id: string; checkout_url: string };
    if ((await step(t, buyer, on(2), 'pay', new URL(session.checkout_url).pathname, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=paid' }, 303)) === undefined) return;
    const verified = await step(t, buyer, on(3), 'verify', `/api/payments/verify-checkout-session/?session_id=${encodeURIComponent(session.checkout_session_id)}`, {}, 200);
    if (verified === undefined) return;
    buyer.paid = (JSON.parse(verified) as { status: string }).status === 'success';
    if (!buyer.paid) buyer.failedAt = `verify: ${verified}`;
  }

  test('every buyer pays, no request answers 5xx, orders = payments, stock and code usage exact', async () => {
    // Each buyer takes 2-4 of the products in its own order, so carts overlap in every way.
    const buyers: Buyer[] = Array.from({ length: BUYERS }, (_, n) => {
      const count = 2 + (n % 3);
      const picked = Array.from({ length: count }, (_, k) => productIds[(n * 5 + k * (1 + (n % 4))) % PRODUCTS]!);
      return { n, cookie: '', address: `10.20.${n >> 8}.${n & 255}`, lines: [...new Set(picked)].map((product, k) => ({ product, quantity: 1 + ((n + k) % 3) })), paid: false };
    });
    const t = tally();
    // Shoppers keep reading the catalog through both instances: a drained pool shows as 503s here.
    const readers = shopperLoad((i) => (i % 2 ? a! : b!).base, ['/api/products/', `/api/products/${productIds[0]}/`, '/api/products/?ordering=price'], { connections: 4, pauseMs: 20 });
    const t0 = Date.now();
    await Promise.all(buyers.map((buyer) => buy(t, buyer)));
    const seconds = (Date.now() - t0) / 1000;
    const reads = await readers.stop();

    const failed = buyers.filter((x) => !x.paid);
    const report = `buyers ${BUYERS}, paid ${BUYERS - failed.length} in ${seconds.toFixed(1)} s; buyer requests ${t.sent}: ${JSON.stringify(t.statuses)} (no answer: ${JSON.stringify(t.failures)}); catalog reads ${reads.sent}: ${JSON.stringify(reads.statuses)}`;
    console.log(`flash sale: ${report}`);
    assert.equal(t.serverErrors(), 0, `no buyer request answers 5xx: ${report}\n${t.samples.join('\n')}\nA: ${errorLines(a!)}\nB: ${errorLines(b!)}`);
    assert.deepEqual(t.failures, {}, `every buyer request is answered: ${report}`);
    assert.equal(reads.serverErrors(), 0, `no catalog read answers 5xx: ${report}\n${reads.samples.join('\n')}`);
    assert.equal(failed.length, 0, `every buyer paid: ${report}\n${failed.slice(0, 5).map((x) => `buyer ${x.n}: ${x.failedAt}`).join('\n')}`);

    const database = await openDatabase(loadConfig(env));
    try {
      const db = database.db;
      const count = async (q: string) => Number((await sql<{ n: string }>`${sql.raw(q)}`.execute(db)).rows[0]!.n);
      assert.equal(await count(`select count(*) as n from orders`), BUYERS, 'one order per buyer');
      assert.equal(await count(`select count(*) as n from payments where status = 'completed'`), BUYERS, 'one payment per order');
      assert.equal(await count(`select count(*) as n from orders where status = 'processing' and promotion_id = ${promotionId}`), BUYERS, 'every order paid, with the code');
      assert.equal(await count(`select count(*) as n from promotion_usages where promotion_id = ${promotionId}`), BUYERS, 'the code used exactly once per buyer');
      assert.equal(await count(`select count(*) as n from promotion_usages where promotion_id = ${promotionId} and order_id is not null`), BUYERS, 'every use tied to its order');
      assert.equal(await count(`select count(*) as n from checkouts where status = 'open'`), 0, 'no checkout left holding stock');
      const bought = new Map<number, number>();
      for (const buyer of buyers) for (const l of buyer.lines) bought.set(l.product, (bought.get(l.product) ?? 0) + l.quantity);
      const stock = await db.selectFrom('products').select(['id', 'stock_quantity']).orderBy('id').execute();
      assert.deepEqual(
        stock.map((p) => [Number(p.id), p.stock_quantity]),
        productIds.map((id) => [id, STOCK - (bought.get(id) ?? 0)]),
        'stock is exactly what was bought off it',
      );
      const off = await count(`select count(*) as n from orders where total_amount <> subtotal - discount_amount + shipping_cost + tax_amount or discount_amount <= 0`);
      assert.equal(off, 0, 'every order discounted and adding up');
    } finally {
      await database.close();
    }
  });
});
