// The window counters under the rate limits: exact counts, windows that reset, a turn of the
// event loop's requests sent to Redis in one script call, and leases that never let more through.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { MemoryCounter, RedisCounter } from '../../src/infra/limits/counter.ts';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix();
const client = new Redis(TEST_REDIS_URL, { keyPrefix: prefix, lazyConnect: true });
before(() => client.connect());
after(async () => {
  client.disconnect();
  await dropPrefix(prefix);
});

test('in process: counts each window, at once, and starts a window afresh once it has passed', async () => {
  const counter = new MemoryCounter();
  const windows = [
    { prefix: 'a:', durationMs: 60_000, points: 10 },
    { prefix: 'b:', durationMs: 50, points: 10 },
  ];
  assert.deepEqual(counter.hit(windows, 'x').map((c) => c.count), [1, 1]);
  assert.deepEqual(counter.hit(windows, 'y').map((c) => c.count), [1, 1], 'each caller counts on their own');
  const second = counter.hit(windows, 'x');
  assert.deepEqual(second.map((c) => c.count), [2, 2]);
  assert.ok(second[0]!.resetMs > 59_000 && second[0]!.resetMs <= 60_000);
  await sleep(60);
  assert.deepEqual(counter.hit(windows, 'x').map((c) => c.count), [3, 1]);
  counter.close();
});

/** Counts the script calls the counter makes (keys per call). */
function spyOnCalls(c: Redis): number[] {
  const calls: number[] = [];
  const target = c as unknown as { pasargadHits: (...a: unknown[]) => Promise<number[]> };
  const hits = target.pasargadHits.bind(c);
  target.pasargadHits = (n: unknown, ...args: unknown[]) => (calls.push(n as number), hits(n, ...args));
  return calls;
}

test('Redis: 300 concurrent requests of 4 windows each give exact counts in one script call, and a lease serves the next ones', async () => {
  const counter = new RedisCounter(client);
  const calls = spyOnCalls(client);
  const windows = ['x', 'y', 'z', 'w'].map((key) => ({ prefix: `t:${key}:`, durationMs: 60_000, points: 1000 }));
  const results = await Promise.all(Array.from({ length: 300 }, () => counter.hit(windows, 'ip')));
  // Every request saw its own count: 1..300 once each, in every window.
  for (let w = 0; w < 4; w++) {
    assert.deepEqual(results.map((r) => r[w]!.count).sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i + 1));
  }
  assert.ok(results.every((r) => r.every((c) => c.resetMs > 59_000 && c.resetMs <= 60_000)));
  // One call of four keys (same-key hits go as one), not 1,200 calls.
  assert.deepEqual(calls, [4]);
  // 700 remained after the batch: the lease took 700/16 = 43 more, counted in Redis at once.
  // The key is `prefix + caller`, as in earlier releases, so old and new instances count together
  // during a rolling deploy (only a Cluster puts the caller in braces).
  assert.equal(await client.get('t:x:ip'), '343');
  const ttl = await client.pttl('t:x:ip');
  assert.ok(ttl > 59_000 && ttl <= 60_000);
  // The next 43 requests are answered here, at once, with the counts Redis reserved.
  const leased = Array.from({ length: 43 }, () => counter.hit(windows, 'ip'));
  assert.ok(leased.every((r) => Array.isArray(r)), 'no round trip while the lease lasts');
  assert.deepEqual((leased as { count: number }[][]).map((r) => r[0]!.count), Array.from({ length: 43 }, (_, i) => 301 + i));
  assert.deepEqual(calls, [4]);
  const next = await counter.hit(windows, 'ip');
  assert.equal(next[0]!.count, 344, 'the lease used up, Redis counts again');
  assert.deepEqual(calls, [4, 4]);
  counter.close();
});

test('Redis: many callers at once go in calls of at most 512 keys', async () => {
  const counter = new RedisCounter(client);
  const calls = spyOnCalls(client);
  const window = [{ prefix: 't:many:', durationMs: 60_000, points: 5 }];
  const results = await Promise.all(Array.from({ length: 600 }, (_, i) => counter.hit(window, `ip${i}`)));
  assert.ok(results.every((r) => r[0]!.count === 1));
  assert.deepEqual(calls, [512, 88]);
  counter.close();
});

test('Redis: near the limit nothing is leased, and a lease never outlives its window', async () => {
  const counter = new RedisCounter(client);
  const calls = spyOnCalls(client);
  const small = [{ prefix: 't:small:', durationMs: 60_000, points: 16 }];
  // 16 - 1 remaining is under one share: every hit goes to Redis.
  for (let i = 1; i <= 18; i++) assert.equal((await counter.hit(small, 'a'))[0]!.count, i);
  assert.equal(calls.length, 18);
  assert.equal(await client.get('t:small:a'), '18');

  const short = [{ prefix: 't:short:', durationMs: 150, points: 100_000 }];
  assert.equal((await counter.hit(short, 'a'))[0]!.count, 1);
  assert.equal(await client.get('t:short:a'), '1025', 'a full lease of 1024');
  const local = counter.hit(short, 'a');
  assert.ok(Array.isArray(local) && local[0]!.count === 2);
  await sleep(200);
  const fresh = counter.hit(short, 'a');
  assert.ok(!Array.isArray(fresh), 'the lease ended with the window');
  assert.equal((await fresh)[0]!.count, 1);
  counter.close();
});

test('Redis: two instances with leases let exactly the limit through, however hits interleave', async () => {
  const other = new Redis(TEST_REDIS_URL, { keyPrefix: prefix, lazyConnect: true });
  await other.connect();
  after(() => other.disconnect());
  const [a, b] = [new RedisCounter(client), new RedisCounter(other)];
  const window = [{ prefix: 't:exact:', durationMs: 60_000, points: 500 }];
  let allowed = 0;
  // Waves of uneven size on both instances, so leases are granted, used and refused along the way.
  for (let wave = 0; wave < 40; wave++) {
    const hits = [...Array.from({ length: 1 + (wave % 7) * 3 }, () => a.hit(window, 'ip')), ...Array.from({ length: 1 + (wave % 5) * 4 }, () => b.hit(window, 'ip'))];
    for (const r of await Promise.all(hits)) if (r[0]!.count <= 500) allowed++;
  }
  // Both keep hitting after the limit, so whatever either leased has been handed out.
  assert.equal(allowed, 500);
  a.close();
  b.close();
});

test('Redis: a key left without an expiry gets one; while Redis is away the insurance counter answers at once', async () => {
  const counter = new RedisCounter(client);
  await client.set('t:stuck', '7');
  const [c] = await counter.hit([{ prefix: 't:', durationMs: 10_000, points: 5 }], 'stuck');
  assert.equal(c!.count, 8);
  assert.ok(c!.resetMs > 9_000 && c!.resetMs <= 10_000);
  const ended = new Promise((resolve) => client.once('end', resolve));
  client.disconnect();
  await ended;
  const offline = counter.hit([{ prefix: 't:', durationMs: 10_000, points: 5 }], 'stuck');
  assert.ok(Array.isArray(offline), 'answered without waiting');
  assert.equal(offline[0]!.count, 1, 'counted in process');
  counter.close();
});
