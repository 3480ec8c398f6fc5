// How long an instance may serve an old entry from its own memory after another instance's write,
// when Redis was busy at the moment of the write (issue 20). A busy Redis (here a real one stopped
// with SIGSTOP, as a slow command or a fork stops it) keeps every connection open: the writer's tag
// bump outlives CACHE_TIMEOUT_MS, so the writer gives up and publishes nothing, while Redis makes
// the bump once it runs again. The reader's subscription never broke, so nothing told it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { Cache, jsonCodec } from '../../src/infra/cache/cache.ts';
import { RemoteStore } from '../../src/infra/cache/remote.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn } from '../helpers/auth.ts';
import { openTestDatabase } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { delayProxy, waitFor, within } from '../helpers/net.ts';
import { uniquePrefix } from '../helpers/redis.ts';
import { startPausableRedis, type PausableRedis } from '../helpers/redis-servers.ts';

let redis: PausableRedis;
before(async () => {
  redis = await startPausableRedis();
});
after(async () => {
  await redis.stop();
});

const SYNC_MS = 500;

function store(prefix: string, port = redis.port): Cache<unknown> {
  const remote = new RemoteStore({ target: { kind: 'server', url: `redis://127.0.0.1:${port}/1` }, name: 'default', keyPrefix: prefix, timeoutMs: 100, compressThreshold: 1024, restMs: 300 });
  return new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20, remote, syncMs: SYNC_MS });
}

/** What a request gets: the copy in memory (the hot path), else a lookup through Redis. */
async function read(c: Cache<unknown>, key: string): Promise<unknown> {
  return c.peek(key) ?? (await c.get(key));
}

/** Milliseconds from now until `check` holds, or Infinity if it still does not after `capMs`. */
async function timeUntil(check: () => Promise<boolean>, capMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < capMs) {
    if (await check()) return Date.now() - start;
    await sleep(50);
  }
  return Infinity;
}

const shown = (ms: number, cap: string) => (ms === Infinity ? `over ${cap} (still)` : `${ms} ms`);

test('Redis slow for the writer only: its tag bump times out, Redis makes it late, and the other instance stops serving its copy within the sync interval', async (t) => {
  const proxy = await delayProxy(redis.port);
  const prefix = uniquePrefix();
  const [a, b] = [store(prefix, proxy.port), store(prefix)];
  try {
    await within('both stores subscribed', Promise.all([a.ready(), b.ready()]));
    await a.set('item:1', 'old', { ttl: 600, tags: ['product:1'] });
    assert.equal(await read(b, 'item:1'), 'old');
    assert.equal(b.peek('item:1'), 'old', 'b holds it in memory');

    proxy.setDelay(400);
    await a.invalidateTags(['product:1']); // gives up after CACHE_TIMEOUT_MS; Redis gets it 400 ms later
    proxy.setDelay(0);
    const stale = await timeUntil(async () => (await read(b, 'item:1')) !== 'old', 15_000);
    t.diagnostic(`b served the old entry for ${shown(stale, '15 s')} after a's bump gave up (Redis made it 400 ms later)`);
    assert.ok(stale <= 400 + 2 * SYNC_MS + 300, `b served the old entry for ${stale} ms (bound: the delay, a sync interval, a round trip)`);
    // The writer retries what it could not announce and caches again; the entry is gone everywhere.
    const back = await timeUntil(async () => a.available, 10_000);
    t.diagnostic(`a cached again after ${shown(back, '10 s')}`);
    assert.ok(back < 10_000, 'a caches again once Redis answers it in time');
    assert.equal(await a.get('item:1'), undefined);
    assert.equal(await b.get('item:1'), undefined);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await proxy.close();
  }
});

test('Redis busy for everyone (SIGSTOP) during a write: no instance serves the old entry once it runs again', async (t) => {
  const prefix = uniquePrefix();
  const [a, b] = [store(prefix), store(prefix)];
  try {
    await within('both stores subscribed', Promise.all([a.ready(), b.ready()]));
    await a.set('item:2', 'old', { ttl: 600, tags: ['product:2'] });
    assert.equal(await read(b, 'item:2'), 'old');
    redis.pause();
    const bumped = a.invalidateTags(['product:2']);
    await sleep(400);
    redis.resume();
    await bumped;
    const stale = await timeUntil(async () => (await read(b, 'item:2')) !== 'old', 15_000);
    t.diagnostic(`b served the old entry for ${shown(stale, '15 s')} after Redis ran again`);
    assert.ok(stale <= 2 * SYNC_MS + 300, `stale for ${stale} ms`);
    await waitFor('a to cache again', () => a.available, 10_000, 50);
  } finally {
    redis.resume();
    await Promise.all([a.close(), b.close()]);
  }
});

test('a reader that cannot get an answer from a busy Redis in time drops its copies: it never serves them past the outage', async () => {
  const prefix = uniquePrefix();
  const [a, b] = [store(prefix), store(prefix)];
  try {
    await within('both stores subscribed', Promise.all([a.ready(), b.ready()]));
    await a.set('item:3', 'v', { ttl: 600, tags: ['product:3'] });
    assert.equal(await read(b, 'item:3'), 'v');
    redis.pause();
    // Nothing asks Redis on b's hot path; its periodic check times out and drops its memory.
    const dropped = await timeUntil(async () => b.peek('item:3') === undefined, 3_000);
    assert.ok(dropped <= 2 * SYNC_MS + 300, `b kept serving from memory for ${dropped} ms of a Redis that does not answer`);
  } finally {
    redis.resume();
    await Promise.all([a.close(), b.close()]);
  }
});

test('through the API: a staff price change on an instance Redis is slow for shows on the other within the bound', async (t) => {
  const database = await openTestDatabase('postgres');
  const proxy = await delayProxy(redis.port);
  const prefix = uniquePrefix();
  const env = { CACHE_TIMEOUT_MS: '100', CACHE_SYNC_MS: String(SYNC_MS) };
  let a: FastifyInstance | undefined;
  let b: FastifyInstance | undefined;
  try {
    a = await testApp(database, { ...env, REDIS_URL: `redis://127.0.0.1:${proxy.port}` }, { cacheKeyPrefix: prefix });
    b = await testApp(database, { ...env, REDIS_URL: redis.url }, { cacheKeyPrefix: prefix });
    const staff = await signedIn(a, database, { staff: true });
    const p = await f.product(database.db, { price: '10.00' });
    const url = `/api/products/${p.id}/`;
    await getJson(a, url);
    await waitFor('b to serve the product page from its memory', async () => (await getJson(b!, url)).headers['x-cache'] === 'HIT', 10_000, 50);

    proxy.setDelay(400);
    const patched = await within('the PATCH to answer', getJson(a, url, { method: 'PATCH', headers: staff.headers, payload: { price: '12.00' } }));
    proxy.setDelay(0);
    assert.equal(patched.status, 200);
    const stale = await timeUntil(async () => (await getJson(b!, url)).body.price === '12.00', 15_000);
    t.diagnostic(`b answered the old price for ${shown(stale, '15 s')} after the PATCH's answer`);
    assert.ok(stale <= 3 * SYNC_MS + 1000, `b answered the old price for ${stale} ms`);
  } finally {
    proxy.setDelay(0);
    await Promise.all([a?.close(), b?.close()]);
    await proxy.close();
    await database.drop();
  }
});
