// The window counters under the rate limits: exact counts, windows that reset, and a turn of the
// event loop's requests sent to Redis in one script call.
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
    { prefix: 'a:', durationMs: 60_000 },
    { prefix: 'b:', durationMs: 50 },
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

test('Redis: 300 concurrent requests of 4 windows each give exact counts, in a handful of script calls', async () => {
  const counter = new RedisCounter(client);
  const calls: number[] = [];
  const hits = (client as unknown as { pasargadHits: (...a: unknown[]) => Promise<number[]> }).pasargadHits.bind(client);
  (client as unknown as { pasargadHits: unknown }).pasargadHits = (n: number, ...args: unknown[]) => (calls.push(n), hits(n, ...args));
  const windows = ['x', 'y', 'z', 'w'].map((key) => ({ prefix: `t:${key}:`, durationMs: 60_000 }));
  const results = await Promise.all(Array.from({ length: 300 }, () => counter.hit(windows, 'ip')));
  // Every request saw its own count: 1..300 once each, in every window.
  for (let w = 0; w < 4; w++) {
    assert.deepEqual(results.map((r) => r[w]!.count).sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i + 1));
  }
  assert.ok(results.every((r) => r.every((c) => c.resetMs > 59_000 && c.resetMs <= 60_000)));
  // 1,200 keys in calls of at most 512: three calls, not 1,200.
  assert.deepEqual(calls, [512, 512, 176]);
  assert.equal(await client.get('t:x:ip'), '300');
  const ttl = await client.pttl('t:x:ip');
  assert.ok(ttl > 59_000 && ttl <= 60_000);
  counter.close();
});

test('Redis: a key left without an expiry gets one; while Redis is away the insurance counter answers at once', async () => {
  const counter = new RedisCounter(client);
  await client.set('t:stuck', '7');
  const [c] = await counter.hit([{ prefix: 't:', durationMs: 10_000 }], 'stuck');
  assert.equal(c!.count, 8);
  assert.ok(c!.resetMs > 9_000 && c!.resetMs <= 10_000);
  const ended = new Promise((resolve) => client.once('end', resolve));
  client.disconnect();
  await ended;
  const offline = counter.hit([{ prefix: 't:', durationMs: 10_000 }], 'stuck');
  assert.ok(Array.isArray(offline), 'answered without waiting');
  assert.equal(offline[0]!.count, 1, 'counted in process');
  counter.close();
});
