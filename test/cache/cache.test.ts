// One contract suite for a cache store, run in memory alone (embedded) and with Redis behind an
// in-process L1 (production); then what only the Redis form has: several instances, compression,
// outages.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Cache, jsonCodec } from '../../src/infra/cache/cache.ts';
import { RemoteStore } from '../../src/infra/cache/remote.ts';
import { waitFor, within } from '../helpers/net.ts';
import { dropPrefix, uniquePrefix } from '../helpers/redis.ts';
import { tcpProxy } from '../helpers/tcp-proxy.ts';

const REDIS = 'redis://127.0.0.1:6379/1';

function remote(prefix: string, url = REDIS, log?: { warn: (o: object, m: string) => void; info: (o: object, m: string) => void }) {
  return new RemoteStore({ target: { kind: 'server', url }, name: 'default', keyPrefix: prefix, timeoutMs: 200, compressThreshold: 1024, log, restMs: 300 });
}

function contract(kind: string, open: () => Promise<{ cache: Cache<unknown>; done: () => Promise<void> }>) {
  describe(`cache store contract [${kind}]`, () => {
    let cache: Cache<unknown>;
    let done: () => Promise<void>;
    before(async () => {
      ({ cache, done } = await open());
    });
    after(() => done());

    test('get of a missing key is undefined; set then get; entries expire after their TTL', async () => {
      assert.equal(await cache.get('none'), undefined);
      await cache.set('a:1', { n: 1 }, { ttl: 60 });
      assert.deepEqual(await cache.get('a:1'), { n: 1 });
      await cache.set('a:short', 'x', { ttl: 1 });
      await sleep(1_100);
      assert.equal(await cache.get('a:short'), undefined);
    });

    test('getOrSet loads once and then serves; 20 concurrent misses run the loader once', async () => {
      let runs = 0;
      const loader = async () => {
        runs++;
        await sleep(50);
        return { loaded: runs };
      };
      const results = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('stampede:1', loader, { ttl: 60 })));
      assert.equal(runs, 1);
      assert.ok(results.every((r) => (r as { loaded: number }).loaded === 1));
      assert.deepEqual(await cache.getOrSet('stampede:1', loader, { ttl: 60 }), { loaded: 1 });
      assert.equal(runs, 1);
    });

    test('tags a value names once made (shows): stored under them, dropped by them; a load that raced a write to one is answered, not stored', async () => {
      const showsIds = (v: unknown) => (v as number[]).map((id) => `card:${id}`);
      const load = (ids: number[]) => cache.getOrSet('page:1', async () => ids, { ttl: 60, tags: ['lists'], shows: showsIds });
      assert.deepEqual(await load([1, 2]), [1, 2]);
      // With Redis a tag this instance never saw is asked once, then trusted on the next load.
      if ((await cache.get('page:1')) === undefined) assert.deepEqual(await load([1, 2]), [1, 2]);
      assert.deepEqual(await cache.get('page:1'), [1, 2], 'stored');
      await cache.invalidateTags(['card:3']);
      assert.deepEqual(await cache.get('page:1'), [1, 2], 'a product it does not show leaves it');
      await cache.invalidateTags(['card:2']);
      assert.equal(await cache.get('page:1'), undefined, 'a product it shows drops it');

      // The write lands after the loader read its rows and before the value is stored.
      let runs = 0;
      const raced = await cache.getOrSet(
        'page:2',
        async () => {
          runs++;
          await cache.invalidateTags(['card:7']);
          return [7];
        },
        { ttl: 60, shows: showsIds },
      );
      assert.deepEqual(raced, [7], 'the caller still gets its answer');
      assert.equal(await cache.get('page:2'), undefined, 'but it is not stored: it may predate the write');
      await cache.getOrSet('page:2', async () => (runs++, [7]), { ttl: 60, shows: showsIds });
      if ((await cache.get('page:2')) === undefined) await cache.getOrSet('page:2', async () => (runs++, [7]), { ttl: 60, shows: showsIds });
      assert.deepEqual(await cache.get('page:2'), [7], 'the next load is stored');
    });

    test('a tag drops exactly the entries made under it', async () => {
      await cache.set('p:1', 'one', { ttl: 60, tags: ['product:1', 'products'] });
      await cache.set('p:2', 'two', { ttl: 60, tags: ['product:2', 'products'] });
      await cache.set('c:1', 'cat', { ttl: 60, tags: ['categories'] });
      await cache.invalidateTags(['product:1']);
      assert.equal(await cache.get('p:1'), undefined);
      assert.equal(await cache.get('p:2'), 'two');
      await cache.invalidateTags(['products']);
      assert.equal(await cache.get('p:2'), undefined);
      assert.equal(await cache.get('c:1'), 'cat');
    });

    test("invalidate takes the seed's patterns: exact keys, key families, other prefixes", async () => {
      await cache.set('product_list:a', 1, { ttl: 60 });
      await cache.set('product_list:b', 2, { ttl: 60 });
      await cache.set('product:42', 3, { ttl: 60 });
      await cache.set('detail:42', 4, { ttl: 60, tags: ['product:42'] });
      await cache.set('featured_products', 5, { ttl: 60 });
      await cache.set('user:7:cart', 6, { ttl: 60 });
      await cache.set('user:8:cart', 7, { ttl: 60 });
      await cache.invalidate(['product_list:*', 'product:42', 'featured_products', 'user:7:*']);
      for (const k of ['product_list:a', 'product_list:b', 'product:42', 'detail:42', 'featured_products', 'user:7:cart']) assert.equal(await cache.get(k), undefined, k);
      assert.equal(await cache.get('user:8:cart'), 7);
    });

    test('a load that raced an invalidation is never served', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const slow = cache.getOrSet('race:1', async () => {
        await gate;
        return 'old';
      }, { ttl: 60, tags: ['race'] });
      await sleep(20);
      await cache.invalidateTags(['race']);
      release();
      assert.equal(await slow, 'old', 'the caller that loaded gets its value');
      assert.equal(await cache.get('race:1'), undefined, 'but nobody after it');
    });

    test('wrap caches a function by its arguments, under its key family', async () => {
      let calls = 0;
      const featured = cache.wrap(async (page: number) => {
        calls++;
        return { page };
      }, { keyPrefix: 'featured_fn', ttl: 60 });
      assert.deepEqual(await featured(1), { page: 1 });
      assert.deepEqual(await featured(1), { page: 1 });
      assert.deepEqual(await featured(2), { page: 2 });
      assert.equal(calls, 2);
      await cache.invalidate(['featured_fn:*']);
      await featured(1);
      assert.equal(calls, 3);
    });

    test('clear empties the store; stats count hits and misses', async () => {
      await cache.set('s:1', 1, { ttl: 60 });
      await cache.get('s:1');
      await cache.get('s:missing');
      const stats = await cache.stats();
      assert.ok(stats.hits >= 1 && stats.misses >= 1);
      assert.ok(stats.hitRate > 0 && stats.hitRate < 1);
      assert.ok(stats.keys >= 1 && stats.memoryBytes > 0);
      await cache.clear();
      assert.equal(await cache.get('s:1'), undefined);
    });
  });
}

contract('memory', async () => ({ cache: new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20 }), done: async () => {} }));

contract('redis + L1', async () => {
  const prefix = uniquePrefix();
  const cache = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20, remote: remote(prefix) });
  await within('the store to subscribe to Redis', cache.ready());
  return {
    cache,
    done: async () => {
      await cache.close();
      await dropPrefix(prefix, REDIS);
    },
  };
});

test('memory is bounded by bytes: the least recently used go first', async () => {
  const cache = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 20_000 });
  for (let i = 0; i < 50; i++) await cache.set(`big:${i}`, 'x'.repeat(1_000), { ttl: 60 });
  const stats = await cache.stats();
  assert.ok(stats.memoryBytes <= 20_000, String(stats.memoryBytes));
  assert.ok(stats.evictions > 30);
  assert.equal(await cache.get('big:0'), undefined);
  assert.equal(await cache.get('big:49'), 'x'.repeat(1_000));
});

describe('several instances sharing Redis', () => {
  const prefix = uniquePrefix();
  let a: Cache<unknown>;
  let b: Cache<unknown>;
  before(async () => {
    a = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20, remote: remote(prefix) });
    b = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20, remote: remote(prefix) });
    await within('both stores to subscribe to Redis', Promise.all([a.ready(), b.ready()]));
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await dropPrefix(prefix, REDIS);
  });

  test('what one instance stores the other reads; an invalidation on one reaches the other’s memory', async () => {
    await a.set('shared:1', { v: 1 }, { ttl: 60, tags: ['product:9'] });
    assert.deepEqual(await b.get('shared:1'), { v: 1 });
    assert.deepEqual(b.peek('shared:1'), { v: 1 }, 'now held in b’s own memory');
    const heard = within('b to hear a’s invalidation', new Promise<void>((resolve) => b.onInvalidation(() => resolve())), 10_000);
    await a.invalidateTags(['product:9']);
    await heard;
    assert.equal(b.peek('shared:1'), undefined);
    assert.equal(await b.get('shared:1'), undefined);
  });

  test('a tag one instance names as it stores a value is dropped by the other’s write, also when the write raced the load', async () => {
    const shows = (v: unknown) => [`card:${v as number}`];
    // a knows card:41 (it loaded once); b writes it while a's next load of another page runs.
    await a.getOrSet('pg:41', async () => 41, { ttl: 60, shows });
    await a.getOrSet('pg:41', async () => 41, { ttl: 60, shows });
    assert.equal(await b.get('pg:41'), 41, 'stored once a knew the tag, and shared');
    const heard = within('a to hear b’s invalidation', new Promise<void>((resolve) => a.onInvalidation((_m, own) => (own ? undefined : resolve()))), 10_000);
    const made = await a.getOrSet(
      'pg:41b',
      async () => {
        await b.invalidateTags(['card:41']);
        await heard;
        return 41;
      },
      { ttl: 60, shows },
    );
    assert.equal(made, 41);
    assert.equal(await a.get('pg:41b'), undefined, 'not stored: the write came while it was made');
    assert.equal(await a.get('pg:41'), undefined, 'the older page is dropped on a');
    assert.equal(await b.get('pg:41'), undefined, 'and on b');
  });

  test('concurrent bumps of one tag, answered and heard out of order, drop that tag’s entries only; counters that went back drop everything', async () => {
    await a.set('keep:1', 'k', { ttl: 60, tags: ['quiet'] });
    await a.set('busy:1', 'd', { ttl: 60, tags: ['busy'] });
    assert.equal(a.peek('keep:1'), 'k');
    for (let round = 0; round < 5; round++) await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).invalidateTags(['busy'])));
    // Every message on its way has arrived once a's epoch has caught up with Redis's.
    const internals = a as unknown as { epoch: number; opts: { remote: RemoteStore } };
    await waitFor('a to hear every bump', async () => internals.epoch === (await internals.opts.remote.epoch()), 5_000, 20);
    assert.equal(a.peek('keep:1'), 'k', 'an entry of another tag stays in memory');
    assert.equal(await a.get('busy:1'), undefined);

    // Redis emptied (a restart without persistence): the next bump starts the counters again.
    await dropPrefix(prefix, REDIS);
    const heard = within('a to hear b’s bump', new Promise<void>((resolve) => a.onInvalidation((_m, own) => (own ? undefined : resolve()))), 10_000);
    await b.invalidateTags(['busy']);
    await heard;
    assert.equal(a.peek('keep:1'), undefined, 'a version below the one known, from a bump behind the epoch heard: every copy dropped');
  });

  test('large values are stored compressed', async () => {
    const text = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ id: i, name: `Dragon miniature ${i}`, price: '19.99' })));
    const before = (await a.stats()).rawBytes;
    await a.set('big:1', text, { ttl: 60 });
    const s = await a.stats();
    assert.ok(s.rawBytes - before > 10_000);
    assert.ok(s.storedBytes < s.rawBytes / 3, `${s.storedBytes} of ${s.rawBytes}`);
    assert.equal(await b.get('big:1'), text);
  });
});

test('tag versions are one MGET, tag bumps one transaction and, on a single Redis server, exact keys one DEL (per-key DELs are for a Cluster)', async () => {
  const prefix = uniquePrefix();
  const store = remote(prefix);
  // What Redis itself is sent by the connection that names this store's keys (other tests share the server).
  const base = new Redis(REDIS, { lazyConnect: true });
  const monitor = await base.monitor();
  const probe = new Redis(REDIS);
  const sent: { source: string; command: string }[] = [];
  const ours = new Set<string>();
  let recording = false;
  // MONITOR reports commands in the order Redis ran them, a little later: once a marker sent after
  // the store's last command is reported, so is everything the store sent.
  const marker = `end-of-${prefix}`;
  let markerSeen = false;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const command = String(args[0]).toLowerCase();
    if (command === 'echo' && args[1] === marker) markerSeen = true;
    if (!recording || command === 'subscribe') return;
    sent.push({ source, command });
    if (args.slice(1).some((a) => String(a).startsWith(prefix))) ours.add(source);
  });
  try {
    await store.subscribe(() => {}, () => {});
    await within('the store to subscribe to Redis', store.ready);
    recording = true;
    assert.deepEqual(await store.tagVersions(['a', 'b', 'c']), [0, 0, 0]);
    assert.deepEqual(await store.bumpTags(['a', 'b']), { tags: { a: 1, b: 1 }, epoch: 1 });
    await store.del(['x', 'y', 'z']);
    await probe.echo(marker);
    await waitFor('MONITOR to report the marker', () => markerSeen, 5_000, 20);
    const seen = sent.filter((c) => ours.has(c.source)).map((c) => c.command);
    assert.deepEqual(seen, ['mget', 'multi', 'incr', 'expire', 'incr', 'expire', 'incr', 'expire', 'exec', 'publish', 'del'], 'the epoch counted in the same transaction');
  } finally {
    monitor.disconnect();
    base.disconnect();
    probe.disconnect();
    await store.close();
    await dropPrefix(prefix, REDIS);
  }
});

test('a write made while Redis was out of reach is applied when it returns: no instance serves the old entry', async () => {
  const proxy = await tcpProxy(6379);
  const prefix = uniquePrefix();
  const a = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20, remote: remote(prefix, `redis://127.0.0.1:${proxy.port}/1`) });
  const b = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20, remote: remote(prefix) });
  try {
    await within('both stores to subscribe to Redis', Promise.all([a.ready(), b.ready()]));
    await a.set('item:1', 'v0', { ttl: 60, tags: ['product:1'] });
    assert.equal(await b.get('item:1'), 'v0');
    await proxy.cut();
    await sleep(50);
    await a.invalidateTags(['product:1']); // the write's bump cannot reach Redis
    await proxy.restore();
    const deadline = Date.now() + 10_000;
    while (!a.available && Date.now() < deadline) {
      await a.get('poke');
      await sleep(100);
    }
    assert.ok(a.available, 'a is back');
    await sleep(100);
    assert.equal(await a.get('item:1'), undefined);
    assert.equal(await b.get('item:1'), undefined, 'b, which never lost Redis, heard the late bump');
  } finally {
    await Promise.all([a.close(), b.close()]);
    await proxy.close();
    await dropPrefix(prefix, REDIS);
  }
});

test('a concurrent miss joins a load only if no write happened since it started', async () => {
  const cache = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20 });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const first = cache.getOrSet('join:1', async () => {
    await gate;
    return 'before the write';
  }, { ttl: 60, tags: ['t'] });
  await sleep(10);
  await cache.invalidateTags(['t']);
  const second = cache.getOrSet('join:1', async () => 'after the write', { ttl: 60, tags: ['t'] });
  release();
  assert.equal(await first, 'before the write');
  assert.equal(await second, 'after the write');
  assert.equal(await cache.get('join:1'), 'after the write');
});

test('an entry Redis holds in another format is a miss, not an error', async () => {
  const prefix = uniquePrefix();
  const cache = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20, remote: remote(prefix) });
  const raw = new (await import('ioredis')).Redis(REDIS);
  try {
    await within('the store to subscribe to Redis', cache.ready());
    await cache.set('odd:1', { ok: true }, { ttl: 60 });
    const other = new Cache({ name: 'default', codec: { ...jsonCodec, decode: () => { throw new Error('old format'); } }, memoryBytes: 1 << 20, remote: remote(prefix) });
    await within('the other store to subscribe to Redis', other.ready());
    assert.equal(await other.getOrSet('odd:1', async () => ({ fresh: true }), { ttl: 60 }).then((v) => JSON.stringify(v)), '{"fresh":true}');
    await other.close();
  } finally {
    raw.disconnect();
    await cache.close();
    await dropPrefix(prefix, REDIS);
  }
});

test('Redis down: the loader answers, nothing throws, the outage is logged once; the cache heals when Redis returns', async () => {
  const proxy = await tcpProxy(6379);
  const prefix = uniquePrefix();
  const logged: string[] = [];
  const log = { warn: (_o: object, m: string) => logged.push(`warn ${m}`), info: (_o: object, m: string) => logged.push(`info ${m}`) };
  const cache = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20, remote: remote(prefix, `redis://127.0.0.1:${proxy.port}/1`, log) });
  try {
    await within('the store to subscribe to Redis', cache.ready());
    let loads = 0;
    const load = async () => ++loads;
    assert.equal(await cache.getOrSet('k:1', load, { ttl: 60 }), 1);
    assert.equal(await cache.getOrSet('k:1', load, { ttl: 60 }), 1, 'served from the cache');
    await proxy.cut();
    await sleep(50); // the lost connection is noticed
    for (let i = 0; i < 20; i++) await cache.getOrSet('k:1', load, { ttl: 60 });
    assert.ok(loads > 1, 'with Redis gone the database answers (no stale memory copy is trusted)');
    assert.equal(logged.filter((l) => l.startsWith('warn')).length, 1, logged.join('\n'));
    await proxy.restore();
    const deadline = Date.now() + 10_000;
    let healed = false;
    while (!healed && Date.now() < deadline) {
      await sleep(200);
      const before = loads;
      await cache.getOrSet('k:2', load, { ttl: 60 });
      const again = loads;
      await cache.getOrSet('k:2', load, { ttl: 60 });
      healed = loads === again && again > before;
    }
    assert.ok(healed, 'caching again once Redis is back');
    assert.ok(logged.some((l) => l.startsWith('info')), logged.join('\n'));
  } finally {
    await cache.close();
    await proxy.close();
    await dropPrefix(prefix, REDIS);
  }
});

test('closing the store is not an outage: nothing is logged', async () => {
  const prefix = uniquePrefix();
  const logged: string[] = [];
  const log = { warn: (_o: object, m: string) => logged.push(`warn ${m}`), info: (_o: object, m: string) => logged.push(`info ${m}`) };
  const cache = new Cache({ name: 'default', codec: jsonCodec, memoryBytes: 1 << 20, remote: remote(prefix, REDIS, log) });
  await within('the store to subscribe to Redis', cache.ready());
  await cache.getOrSet('k:1', async () => 1, { ttl: 60 });
  await cache.close();
  await sleep(100); // the subscriber's close event
  assert.deepEqual(logged, []);
  await dropPrefix(prefix, REDIS);
});
