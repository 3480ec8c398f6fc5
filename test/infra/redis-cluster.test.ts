// The production Redis topologies, for real: a Redis Cluster of three masters and a master with a
// replica behind a Sentinel, each started on loopback ports by the setup. The shop is configured
// for them by environment alone (REDIS_CLUSTER_NODES, REDIS_SENTINELS) and runs its caches,
// sessions, limits, blocks and queues on them, as two instances sharing one Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.ts';
import { BullJobQueue } from '../../src/infra/jobs/bullmq-queue.ts';
import { openQueue } from '../../src/infra/jobs/runtime.ts';
import type { Limits } from '../../src/infra/limits/limits.ts';
import { openLimits } from '../../src/infra/limits/open.ts';
import { openSessionStore } from '../../src/infra/cache/stores.ts';
import { testApp, getJson } from '../helpers/app.ts';
import { signedIn } from '../helpers/auth.ts';
import { openTestDatabase, TEST_SECRET } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { within } from '../helpers/net.ts';
import { failover, startRedisCluster, startRedisSentinel, type RedisServers } from '../helpers/redis-servers.ts';
import { assertWriteShowsOnOther, heardFromOther } from '../helpers/two-instances.ts';

type TestDatabase = Awaited<ReturnType<typeof openTestDatabase>>;

const anonymous = (ip: string) => ({ ip, userId: null, staff: false });

/** Counts the checks that passed. */
async function allowed(checks: Promise<{ allowed: boolean }>[]): Promise<number> {
  return (await Promise.all(checks)).filter((v) => v.allowed).length;
}

/**
 * What both topologies must do, with two app instances `a` and `b` on one Redis: answers cached
 * by one served by the other and dropped on a write made on either; sessions shared.
 */
function sharedInstances(ctx: () => { a: FastifyInstance; b: FastifyInstance; database: TestDatabase }) {
  test('an answer cached by one instance is a hit on the other; a write on one shows on the other’s next read', async () => {
    const { a, b, database } = ctx();
    await assertWriteShowsOnOther(a, b, database);
  });

  test('a guest cart made on one instance is the same cart on the other (the session store)', async () => {
    const { a, b, database } = ctx();
    const p = await f.product(database.db, { stock_quantity: 10 });
    const added = await a.inject({ method: 'POST', url: '/api/cart/add/', payload: { product_id: p.id, quantity: 2 } });
    assert.equal(added.statusCode, 200);
    const cookie = String(added.headers['set-cookie']).split(';')[0]!;
    const cart = await getJson(b, '/api/cart/', { headers: { cookie } });
    assert.equal(cart.status, 200);
    assert.deepEqual(
      cart.body.items.map((i: { product: { id: number }; quantity: number }) => [i.product.id, i.quantity]),
      [[p.id, 2]],
    );
  });
}

describe('on a Redis Cluster of three masters', () => {
  let cluster: RedisServers;
  let database: TestDatabase;
  let config: Config;
  let a: FastifyInstance;
  let b: FastifyInstance;
  /** One plain connection per master, to see where keys landed. */
  let nodes: Redis[];
  before(async () => {
    cluster = await startRedisCluster(3);
    nodes = cluster.ports.map((port) => new Redis({ port, host: '127.0.0.1' }));
    database = await openTestDatabase('postgres');
    const env = { REDIS_CLUSTER_NODES: cluster.addresses.join(',') };
    config = loadConfig({ SECRET_KEY: TEST_SECRET, LOG_LEVEL: 'silent', ...env });
    [a, b] = [await testApp(database, env), await testApp(database, env)];
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    for (const n of nodes ?? []) n.disconnect();
    await database?.drop();
    await cluster?.stop();
  });

  /** Keys under `pattern` on each master. */
  async function keysPerNode(pattern: string): Promise<string[][]> {
    return Promise.all(nodes.map(async (n) => (await n.keys(pattern)).sort()));
  }

  test('the configuration puts every Redis user on the cluster, stores apart by prefix', () => {
    assert.equal(a.caches.api.backend, 'redis');
    assert.equal(a.jobs.kind, 'bullmq');
    assert.deepEqual([config.redis.default, config.redis.session, config.redis.api].map((t) => t?.kind === 'cluster' && t.prefix), ['default:', 'session:', 'api:']);
  });

  sharedInstances(() => ({ a, b, database }));

  test('cache: set and get over every master; invalidation by tag, by pattern (SCAN on each master) and by exact keys reaches the other instance', async () => {
    const [x, y] = [a.caches.default, b.caches.default];
    for (let i = 0; i < 60; i++) await x.set(`item:${i}`, { i }, { ttl: 300, tags: [i % 2 ? 'odd' : 'even'] });
    const spread = await keysPerNode('default:item:*');
    assert.ok(spread.every((keys) => keys.length > 0), `the entries lie on every master: ${spread.map((k) => k.length)}`);
    assert.equal(spread.flat().length, 60, 'the store’s own prefix: nothing in database 1');
    for (let i = 0; i < 60; i++) assert.deepEqual(await y.get(`item:${i}`), { i }, 'b reads a’s entries (and now holds them)');

    // By tag: a counter bump, told to b.
    let told = heardFromOther(b, 'default', 'tags');
    await x.invalidateTags(['odd']);
    await told;
    assert.equal(await y.get('item:1'), undefined);
    assert.deepEqual(await y.get('item:2'), { i: 2 });

    // By pattern: SCAN on each master deletes keys from all three.
    told = heardFromOther(b, 'default', 'prefix');
    await x.invalidate(['item:2*']);
    await told;
    assert.deepEqual(await keysPerNode('default:item:2*'), [[], [], []]);
    for (const k of ['item:2', 'item:20', 'item:28']) assert.equal(await y.get(k), undefined, k);
    assert.deepEqual(await y.get('item:30'), { i: 30 });

    // Exact keys in different slots, one command each.
    told = heardFromOther(b, 'default', 'keys');
    await x.invalidate(['item:30', 'item:40', 'item:50']);
    await told;
    for (const k of ['item:30', 'item:40', 'item:50']) assert.equal(await y.get(k), undefined, k);
    assert.deepEqual(await y.get('item:32'), { i: 32 });

    // A whole store, and only that store (the api store holds the answers of the tests above).
    const api = (await keysPerNode('api:*')).flat().length;
    assert.ok(api > 0);
    await x.clear();
    assert.deepEqual(await keysPerNode('default:*'), [[], [], []]);
    assert.equal((await keysPerNode('api:*')).flat().length, api, 'the api store keeps its entries');
  });

  test('session store: entries over every master, cleared by prefix', async () => {
    const store = openSessionStore(config, database);
    try {
      for (let i = 0; i < 30; i++) await store.set(`s:${i}`, `v${i}`, 60);
      assert.equal(await store.add('s:1', 'other', 60), false);
      assert.equal(await store.get('s:7'), 'v7');
      assert.ok((await keysPerNode('session:s:*')).every((keys) => keys.length > 0));
      assert.equal(await store.clear('s:'), 30);
      assert.equal(await store.get('s:7'), null);
    } finally {
      await store.close();
    }
  });

  describe('limits shared by two instances', () => {
    let x: Limits;
    let y: Limits;
    before(async () => {
      const limited = loadConfig({ SECRET_KEY: TEST_SECRET, REDIS_CLUSTER_NODES: cluster.addresses.join(','), RATE_LIMIT_ANON: '100/hour', RATE_LIMIT_BURST: '10000/minute', RATE_LIMIT_SUSTAINED: '10000/day', LOGIN_FREE_FAILURES: '2' });
      [x, y] = [openLimits(limited), openLimits(limited)];
      await within('both limiters to be ready on the Cluster', Promise.all([x.ready, y.ready]), 30_000);
    });
    after(async () => {
      await Promise.all([x?.close(), y?.close()]);
    });

    test('500 concurrent checks from one address over both: exactly 100 pass', async () => {
      const ip = '203.0.113.7';
      assert.equal(await allowed(Array.from({ length: 500 }, (_, i) => Promise.resolve((i % 2 ? x : y).check(anonymous(ip))))), 100);
    });

    // Each instance sees enough requests to use up the hits it leased (see counter.ts).
    test('many addresses in one batch (their keys in many slots): each gets exactly its limit', async () => {
      const ips = Array.from({ length: 20 }, (_, i) => `198.51.100.${i + 1}`);
      const checks = ips.flatMap((ip) => Array.from({ length: 300 }, (_, i) => ({ ip, p: Promise.resolve((i % 2 ? x : y).check(anonymous(ip))) })));
      const results = await Promise.all(checks.map(async ({ ip, p }) => ({ ip, ok: (await p).allowed })));
      for (const ip of ips) assert.equal(results.filter((r) => r.ip === ip && r.ok).length, 100, ip);
      assert.ok(x.redisReady && y.redisReady, 'counted in Redis, not by the insurance limiters');
    });

    test('a block made on one is known to the other at once; sign-in backoff is shared', async () => {
      await x.blocks.block('192.0.2.9', 'test', 60);
      for (let i = 0; i < 50 && !y.blocks.get('192.0.2.9'); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(y.blocks.get('192.0.2.9')?.reason, 'test');
      assert.equal(await y.unblock('192.0.2.9'), true);
      // A wrong password as the sign-in route settles it; the wait an attempt is told, given back.
      const fail = async (l: Limits, ip: string) => {
        const a = await l.loginAttempt(ip, 'who@example.com');
        if (a.wait === 0) await l.loginFailed(a);
      };
      const waitOf = async (l: Limits, ip: string) => {
        const a = await l.loginAttempt(ip, 'who@example.com');
        await l.loginAbandoned(a);
        return a.wait;
      };
      for (let i = 0; i < 3; i++) await fail(i % 2 ? x : y, '192.0.2.10');
      assert.ok((await waitOf(x, '192.0.2.10')) >= 1);
      assert.ok((await waitOf(y, '192.0.2.10')) >= 1, 'the other instance makes that address wait too');
      // Keyed by account and address since 0d890e9: a stranger's few failures lock nobody out elsewhere.
      assert.equal(await waitOf(y, '192.0.2.11'), 0, 'another address is not made to wait');
    });
  });

  test('queues: BullMQ under a hash-tagged prefix; a job added twice on two instances runs once', async () => {
    const ran: string[] = [];
    const [qa, qb] = [openQueue(config, database, { prefix: 'q1:' }), openQueue(config, database, { prefix: 'q1:' })];
    assert.ok(qa instanceof BullJobQueue);
    const workers: { stop(graceMs?: number): Promise<void> }[] = [];
    const done = new Promise<void>((resolve) => {
      const handlers = {
        check_low_stock: async (job: { id: string }) => {
          ran.push(job.id);
          resolve();
        },
      };
      workers.push(qa.work(handlers, { queues: ['products'], concurrency: 2 }), qb.work(handlers, { queues: ['products'], concurrency: 2 }));
    });
    try {
      await qa.add('check_low_stock', {}, { jobId: 'once' });
      await qb.add('check_low_stock', {}, { jobId: 'once' });
      await within('the job to run on one of the two workers', done, 30_000);
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(ran, ['once']);
      const keys = (await keysPerNode('{q1:bull}:products:*')).flat();
      assert.ok(keys.length > 0 && (await keysPerNode('{q1:bull}:*')).filter((k) => k.length).length === 1, 'every key of the queue in one slot');
      assert.equal((await qa.stats()).find((s) => s.queue === 'products')?.completed, 1);
    } finally {
      await Promise.all(workers.map((w) => w.stop(5_000)));
      await Promise.all([qa.close(), qb.close()]);
    }
  });
});

describe('behind a Sentinel (a master and a replica)', () => {
  let servers: RedisServers;
  let database: TestDatabase;
  let a: FastifyInstance;
  let b: FastifyInstance;
  before(async () => {
    servers = await startRedisSentinel('shop');
    database = await openTestDatabase('postgres');
    const env = { REDIS_SENTINELS: servers.addresses.join(','), REDIS_SENTINEL_NAME: 'shop', RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_ANON: '1000/hour', RATE_LIMIT_BURST: '1000/minute' };
    [a, b] = [await testApp(database, env), await testApp(database, env)];
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await database?.drop();
    await servers?.stop();
  });

  test('every Redis user connects through the Sentinel', () => {
    assert.equal(a.caches.api.backend, 'redis');
    assert.equal(a.jobs.kind, 'bullmq');
    assert.ok(a.limits?.redisReady && b.limits?.redisReady);
  });

  sharedInstances(() => ({ a, b, database }));

  test('after a failover the instances follow the new master: caching, invalidation and limits work on', async () => {
    const [master, replica, sentinel] = servers.ports as [number, number, number];
    await failover(sentinel, replica, 'shop');
    const staff = await signedIn(a, database, { staff: true });
    const p = await f.product(database.db, { price: '30.00' });
    const url = `/api/products/${p.id}/`;
    // The first commands may meet the old master (now a replica, read-only) until ioredis hears.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      await getJson(a, url);
      if ((await getJson(b, url)).headers['x-cache'] === 'HIT' && a.caches.api.available && b.caches.api.available) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal((await getJson(b, url)).headers['x-cache'], 'HIT');
    const told = heardFromOther(b);
    assert.equal((await getJson(a, url, { method: 'PATCH', headers: staff.headers, payload: { price: '31.00' } })).status, 200);
    await told;
    assert.equal((await getJson(b, url)).body.price, '31.00');
    const writes = new Redis({ port: replica, host: '127.0.0.1' });
    try {
      assert.match(await writes.info('replication'), /role:master/);
      assert.match(await writes.info('keyspace'), /db3:keys=[1-9]/, 'the api store’s entries are on the new master');
      assert.ok(master !== replica);
    } finally {
      writes.disconnect();
    }
    // Counted in the new master and shared: b's count includes a's hit (and the lease a took).
    assert.ok(a.limits!.redisReady && b.limits!.redisReady);
    const first = await a.limits!.check(anonymous('203.0.113.50'));
    const second = await b.limits!.check(anonymous('203.0.113.50'));
    assert.equal(first.remaining, 999);
    assert.ok(second.remaining < 998, `b counted after a: ${second.remaining} left`);
  });
});
