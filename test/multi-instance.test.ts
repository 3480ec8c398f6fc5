// Several API instances on one PostgreSQL and one Redis, as DESIGN.md's production topology has
// them: two real `pasargad serve` processes, each also running BullMQ workers and the scheduler
// (JOBS_IN_PROCESS), answering requests spread over both. Proves that what one instance does the
// other sees at once: cached answers dropped on a write, rate limits and IP blocks counted
// together, tokens and guest sessions honoured and revoked everywhere, and each tick of a schedule
// run once however many schedulers there are.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { loadConfig, redisDatabase } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { seedCatalog } from '../src/db/seed.ts';
import { deleteMatching } from '../src/infra/cache/redis-store.ts';
import { postgresEnv, uniqueSchema } from './helpers/db.ts';
import { TEST_REDIS_URL, uniquePrefix } from './helpers/redis.ts';
import { startProc, stopProc, waitFor, type Proc } from './chaos/harness.ts';

const STAFF = { email: 'owner@multi.test', password: 'Owner-Pass-2026' };
const SEARCH_LIMIT = 40;
/** trim_jobs ticks this often in the test (a six-field cron pattern: seconds first). */
const TICK_S = 2;

const json = { 'content-type': 'application/json' };
/**
 * Every request as the load balancer forwards it: the shop's one origin, whichever instance
 * answers (cached answers are per origin, their links being absolute).
 */
const ORIGIN = { 'x-forwarded-host': 'shop.test', 'x-forwarded-proto': 'https' };
function call(base: string, path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
  // Bounded: an instance that accepts and never answers fails the test with the path, not hangs it.
  return fetch(base + path, { signal: AbortSignal.timeout(30_000), ...init, headers: { ...ORIGIN, ...init.headers } });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('several API instances on one PostgreSQL and Redis', { timeout: 120_000 }, () => {
  const schema = uniqueSchema();
  const prefix = uniquePrefix();
  // The email outbox (order confirmations).
  const dataDir = mkdtempSync(join(tmpdir(), 'pasargad-multi-'));
  const env = postgresEnv(schema, {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    // The instances take databases 0 (jobs) to 3 of this server, whatever database it names.
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    JOBS_IN_PROCESS: 'true',
    SCHEDULE_TRIM_JOBS: `*/${TICK_S} * * * * *`,
    STAFF_EMAIL: STAFF.email,
    STAFF_PASSWORD: STAFF.password,
    // The test's own requests come from loopback: every tier high, except the one limit under
    // test. Limited clients are told apart by X-Forwarded-For, from loopback as a trusted proxy.
    TRUSTED_PROXIES: '127.0.0.1',
    RATE_LIMIT_ALLOWLIST: '',
    RATE_LIMIT_ANON: '100000/hour',
    RATE_LIMIT_USER: '100000/hour',
    RATE_LIMIT_BURST: '100000/minute',
    RATE_LIMIT_SUSTAINED: '1000000/day',
    RATE_LIMIT_STAFF: '100000/hour',
    RATE_LIMIT_ROUTES: `search=${SEARCH_LIMIT}/minute`,
    RATE_LIMIT_BLOCK_AFTER: '10',
    DATA_DIR: dataDir,
  });
  let a: Proc | undefined;
  let b: Proc | undefined;
  const A = () => a!.base;
  const B = () => b!.base;

  before(async () => {
    const database = await openDatabase(loadConfig(env));
    try {
      await migrate(database);
      await seedCatalog(database, { products: 60, seed: 7 });
    } finally {
      await database.close();
    }
    // Started together, as a deployment starts its instances: both create the staff account.
    const started = await Promise.allSettled([startProc('A', env), startProc('B', env)]);
    [a, b] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  });

  after(async () => {
    await Promise.all([a, b].map((i) => (i ? stopProc(i) : undefined)));
    const database = await openDatabase(loadConfig(env));
    await sql.raw(`drop schema if exists ${schema} cascade`).execute(database.db);
    await database.close();
    // Jobs in database 0, the cache stores in 1 and 3, sessions and limits in 2.
    for (const db of [0, 1, 2, 3]) {
      const client = new Redis(redisDatabase(TEST_REDIS_URL, db));
      await deleteMatching(client, prefix);
      client.disconnect();
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function login(base: string, email: string, password: string): Promise<{ access: string; refresh: string }> {
    const r = await call(base, '/api/users/auth/login/', { method: 'POST', headers: json, body: JSON.stringify({ email, password }) });
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()) as { access: string; refresh: string };
  }

  async function get<T = { price: string }>(base: string, path: string): Promise<{ cache: string | null; body: T }> {
    const r = await call(base, path);
    assert.equal(r.status, 200, `${base}${path}: ${r.status}`);
    return { cache: r.headers.get('x-cache'), body: (await r.json()) as T };
  }
  type Page = { results: { id: number; price: string }[] };

  test('a staff price change through one instance is served by the other at once, though both had the answers cached', async () => {
    const staff = await login(A(), STAFF.email, STAFF.password);
    // Newest first: the list keeps its order whatever the price.
    const list = '/api/products/';
    const product = (await get<Page>(A(), list)).body.results[3]!;
    const detail = `/api/products/${product.id}/`;
    // Cached on both first, in Redis and in each one's memory. A store that met a slow Redis
    // command while its process was starting rests for 2 s (the database answers meanwhile), so
    // this waits for hits rather than assuming them.
    const deadline = Date.now() + 15_000;
    for (const base of [A(), B()]) {
      while ((await get(base, list)).cache !== 'HIT' || (await get(base, detail)).cache !== 'HIT') {
        if (Date.now() > deadline) assert.fail(`${base} never served from its cache:\n${[a!, b!].map((i) => i.output().split('\n').filter((l) => /"level":[456]0/.test(l)).join('\n')).join('\n')}`);
        await sleep(200);
      }
    }

    for (const [writer, reader, price] of [
      [A(), B(), '1234.56'],
      [B(), A(), '2345.67'],
    ] as const) {
      const r = await call(writer, detail, { method: 'PATCH', headers: { ...json, authorization: `Bearer ${staff.access}` }, body: JSON.stringify({ price }) });
      assert.equal(r.status, 200, await r.text());
      // The very next read on the other instance: no stale copy from its memory or from Redis.
      const seen = await get(reader, detail);
      assert.equal(seen.body.price, price, `${reader} still served ${seen.body.price}`);
      assert.equal(seen.cache, 'MISS');
      const listed = (await get<Page>(reader, list)).body.results;
      assert.equal(listed.find((p) => p.id === product.id)?.price, price, 'the list shows the new price');
      // And the fresh answer is shared again: the writer now hits what the reader cached.
      const again = await get(writer, detail);
      assert.equal(again.body.price, price);
      assert.equal(again.cache, 'HIT');
    }
  });

  test(`a limit of ${SEARCH_LIMIT} per minute lets exactly ${SEARCH_LIMIT} through with requests spread over both; the block that follows holds on both`, async () => {
    const client = { 'x-forwarded-for': '198.51.100.7' };
    const statuses: Record<string, number[]> = { A: [], B: [] };
    // Pairs at once, one to each instance, three times the limit in all.
    for (let i = 0; i < (SEARCH_LIMIT * 3) / 2; i++) {
      const [ra, rb] = await Promise.all([A(), B()].map((base) => call(base, '/api/products/search/?q=dragon', { headers: client })));
      statuses.A!.push(ra!.status);
      statuses.B!.push(rb!.status);
      await Promise.all([ra!.arrayBuffer(), rb!.arrayBuffer()]);
    }
    const all = [...statuses.A!, ...statuses.B!];
    const ok = all.filter((s) => s === 200).length;
    assert.equal(ok, SEARCH_LIMIT, `allowed ${ok}: A ${statuses.A!.join(' ')} | B ${statuses.B!.join(' ')}`);
    assert.ok(statuses.A!.includes(200) && statuses.B!.includes(200), 'both instances served part of the limit');
    assert.ok(statuses.A!.includes(429) || statuses.B!.includes(429), 'refused with 429 past the limit');
    assert.deepEqual([...new Set(all)].filter((s) => ![200, 429, 403].includes(s)), [], 'nothing but 200, 429 and 403');
    // Ten refusals block the address for both instances, on any route.
    for (const base of [A(), B()]) {
      const r = await call(base, '/api/products/', { headers: client });
      assert.equal(r.status, 403, `${base} still serves a blocked address`);
    }
    // Another client is not affected.
    const other = await call(B(), '/api/products/search/?q=dragon', { headers: { 'x-forwarded-for': '198.51.100.8' } });
    assert.equal(other.status, 200);
  });

  test('a guest cart and sign-in tokens work on either instance; a logged-out session’s refresh tokens are refused on the other', async () => {
    const products = (await get<Page>(A(), '/api/products/?ordering=-price')).body.results;
    const add = await call(A(), `/api/cart/add/`, { method: 'POST', headers: json, body: JSON.stringify({ product_id: products[0]!.id, quantity: 1 }) });
    assert.equal(add.status, 200);
    const cookie = add.headers.get('set-cookie')!.split(';')[0]!;
    assert.match(cookie, /^sessionid=/);
    const more = await call(B(), `/api/cart/add/`, { method: 'POST', headers: { ...json, cookie }, body: JSON.stringify({ product_id: products[1]!.id, quantity: 2 }) });
    assert.equal(more.status, 200);
    const guestCart = (await (await call(A(), `/api/cart/`, { headers: { cookie } })).json()) as { total_items: number };
    assert.equal(guestCart.total_items, 3, 'one guest cart, whichever instance is asked');

    // Signing up on B takes over the guest cart; the tokens work on A.
    const signUp = await call(B(), `/api/users/auth/register/`, {
      method: 'POST',
      headers: { ...json, cookie },
      body: JSON.stringify({ email: 'shopper@multi.test', username: 'shopper', first_name: 'Sam', last_name: 'Shopper', password: 'Shopper-Pass-9', password_confirm: 'Shopper-Pass-9' }),
    });
    assert.equal(signUp.status, 201, await signUp.clone().text());
    const first = ((await signUp.json()) as { tokens: { access: string; refresh: string } }).tokens;
    const bearer = (access: string) => ({ ...json, authorization: `Bearer ${access}` });
    const profile = await call(A(), `/api/users/profile/`, { headers: bearer(first.access) });
    assert.equal(profile.status, 200);
    assert.equal(((await profile.json()) as { email: string }).email, 'shopper@multi.test');
    const userCart = (await (await call(A(), `/api/cart/`, { headers: bearer(first.access) })).json()) as { total_items: number };
    assert.equal(userCart.total_items, 3);

    // Checked out on A, paid on the test provider's page as B serves it, verified on A.
    const session = await call(A(), `/api/payments/create-checkout-session/`, { method: 'POST', headers: bearer(first.access), body: '{}' });
    assert.equal(session.status, 200, await session.clone().text());
    const { checkout_session_id: id, checkout_url: url } = (await session.json()) as { checkout_session_id: string; checkout_url: string };
    assert.ok(url.startsWith('https://shop.test/api/payments/test-checkout/'), url);
    const paid = await call(B(), new URL(url).pathname, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=paid', redirect: 'manual' });
    assert.equal(paid.status, 303);
    const verified = (await (await call(A(), `/api/payments/verify-checkout-session/?session_id=${encodeURIComponent(id)}`)).json()) as { status: string; order_number?: string };
    assert.equal(verified.status, 'success');

    // Refresh on A rotates; the sign-in session is shared, so the token it replaced still works on
    // B, as the storefront expects (8e4d3cc: until the session ends, REFRESH_REUSE_DETECTION off).
    const rotated = await call(A(), `/api/users/auth/refresh/`, { method: 'POST', headers: json, body: JSON.stringify({ refresh: first.refresh }) });
    assert.equal(rotated.status, 200);
    const second = (await rotated.json()) as { access: string; refresh: string };
    const replay = await call(B(), `/api/users/auth/refresh/`, { method: 'POST', headers: json, body: JSON.stringify({ refresh: first.refresh }) });
    assert.equal(replay.status, 200, 'the session is known on the other instance');
    // Logged out on B: the session ends, and every refresh token of it is refused on A.
    const logout = await call(B(), `/api/users/auth/logout/`, { method: 'POST', headers: json, body: JSON.stringify({ refresh: second.refresh }) });
    assert.equal(logout.status, 200);
    for (const refresh of [second.refresh, first.refresh]) {
      const loggedOut = await call(A(), `/api/users/auth/refresh/`, { method: 'POST', headers: json, body: JSON.stringify({ refresh }) });
      assert.equal(loggedOut.status, 401, 'a logged-out session’s refresh token is refused on the other instance');
    }
  });

  test(`each tick of a schedule runs once, though both instances run a scheduler and workers (every ${TICK_S} s here)`, async () => {
    // Let at least four ticks complete (however long the tests above took on a busy machine),
    // then stop both (running jobs finish) so that the runs counted below are all there were.
    const watcher = new Redis(redisDatabase(TEST_REDIS_URL, 0));
    try {
      await waitFor('four ticks completed', async () => (await watcher.zrange(`${prefix}bull:default:completed`, '0', '-1')).filter((id) => id.includes('trim_jobs')).length >= 4, 60_000);
    } finally {
      watcher.disconnect();
    }
    await Promise.all([stopProc(a!), stopProc(b!)]);

    // What the workers did: the handler's log line, from either process.
    const runs = (i: Proc) => i.output().split('\n').filter((l) => l.includes('"finished jobs trimmed"')).length;
    const [runsA, runsB] = [runs(a!), runs(b!)];
    // What the schedulers enqueued: one job per tick, named by the tick's time.
    const redis = new Redis(redisDatabase(TEST_REDIS_URL, 0));
    try {
      const completed = await redis.zrange(`${prefix}bull:default:completed`, '0', '-1');
      const failed = await redis.zrange(`${prefix}bull:default:failed`, '0', '-1');
      assert.deepEqual(failed, [], 'no job failed');
      const ticks = completed.filter((id) => id.includes('trim_jobs')).map((id) => Number(/(\d{13})$/.exec(id)?.[1]));
      ticks.sort((x, y) => x - y);
      assert.ok(ticks.length >= 4, `ticks ran: ${ticks.length}`);
      assert.ok(ticks.every((t) => t % (TICK_S * 1000) === 0), `jobs named by their ticks: ${completed.join(', ')}`);
      // BullMQ adds a tick's job when the previous one starts, so a worker late by a whole
      // period (a loaded machine) skips a tick; what must never happen is one tick twice.
      for (let i = 1; i < ticks.length; i++) assert.ok(ticks[i]! - ticks[i - 1]! >= TICK_S * 1000, `one job per tick: ${ticks.join(', ')}`);
      assert.equal(runsA + runsB, ticks.length, `the handler ran once per tick (A ${runsA}, B ${runsB}, ticks ${ticks.length})`);
    } finally {
      redis.disconnect();
    }
    assert.equal(await a!.exited, 0, 'A stopped cleanly');
    assert.equal(await b!.exited, 0, 'B stopped cleanly');
  });
});
