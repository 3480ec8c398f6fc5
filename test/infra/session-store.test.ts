// One contract suite for every key-value store implementation: the embedded database (PGlite and
// PostgreSQL) and Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DatabaseKeyValueStore } from '../../src/infra/cache/database-store.ts';
import { RedisKeyValueStore } from '../../src/infra/cache/redis-store.ts';
import { StoreUnavailableError, type KeyValueStore } from '../../src/infra/cache/store.ts';
import { openRedis } from '../../src/infra/redis.ts';
import { openTestDatabase, type BackendName } from '../helpers/db.ts';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

function contract(name: string, open: () => Promise<{ store: KeyValueStore; done: () => Promise<void> }>) {
  describe(`key-value store contract [${name}]`, () => {
    let store: KeyValueStore;
    let done: () => Promise<void>;
    before(async () => {
      ({ store, done } = await open());
    });
    after(async () => {
      await done();
    });

    test('get of a missing key is null; set then get returns the value; set overwrites', async () => {
      assert.equal(await store.get('missing'), null);
      await store.set('k1', 'one', 60);
      assert.equal(await store.get('k1'), 'one');
      await store.set('k1', 'uno ✓ {"json":true}', 60);
      assert.equal(await store.get('k1'), 'uno ✓ {"json":true}');
    });

    test('delete removes; deleting a missing key is fine', async () => {
      await store.set('k2', 'two', 60);
      await store.delete('k2');
      assert.equal(await store.get('k2'), null);
      await store.delete('k2');
    });

    test('entries expire after their TTL', async () => {
      await store.set('short', 'x', 1);
      assert.equal(await store.get('short'), 'x');
      await sleep(2_100);
      assert.equal(await store.get('short'), null);
    });

    test('add sets only when absent or expired', async () => {
      assert.equal(await store.add('once', 'first', 60), true);
      assert.equal(await store.add('once', 'second', 60), false);
      assert.equal(await store.get('once'), 'first');
      await store.set('lapsing', 'old', 1);
      await sleep(2_100);
      assert.equal(await store.add('lapsing', 'new', 60), true);
      assert.equal(await store.get('lapsing'), 'new');
    });

    test('clear removes the entries under a prefix, or all of them', async () => {
      await store.set('session:a', '1', 60);
      await store.set('session:b_%', '2', 60);
      await store.set('revoked:c', '3', 60);
      assert.equal(await store.clear('session:'), 2);
      assert.equal(await store.get('session:a'), null);
      assert.equal(await store.get('revoked:c'), '3');
      assert.ok((await store.clear()) >= 1);
      assert.equal(await store.get('revoked:c'), null);
    });

    test('of 20 concurrent adds of one key exactly one wins', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.add('race', String(i), 60)));
      assert.equal(results.filter(Boolean).length, 1);
    });
  });
}

for (const backend of ['pglite', 'postgres'] as BackendName[]) {
  contract(`database ${backend}`, async () => {
    const database = await openTestDatabase(backend);
    return { store: new DatabaseKeyValueStore(database, 'session'), done: () => database.drop() };
  });
}

contract('redis', async () => {
  const prefix = uniquePrefix();
  const store = new RedisKeyValueStore(openRedis({ kind: 'server', url: TEST_REDIS_URL }, { keyPrefix: prefix }), 'session');
  return {
    store,
    done: async () => {
      await store.close();
      await dropPrefix(prefix);
    },
  };
});

test('stores keep to their own names: the same key in two stores are two entries', async () => {
  const database = await openTestDatabase('pglite');
  try {
    const a = new DatabaseKeyValueStore(database, 'session');
    const b = new DatabaseKeyValueStore(database, 'default');
    await a.set('same', 'a', 60);
    await b.set('same', 'b', 60);
    assert.equal(await a.get('same'), 'a');
    assert.equal(await b.get('same'), 'b');
    await a.set('gone', 'x', 1);
    await sleep(1_100);
    assert.equal(await a.purgeExpired(), 1);
  } finally {
    await database.drop();
  }
});

for (const target of [
  { kind: 'server', url: 'redis://127.0.0.1:1/2' },
  // A Cluster no node of which answers queues commands itself, outside any node's commandTimeout.
  { kind: 'cluster', nodes: [{ host: '127.0.0.1', port: 1 }], auth: { username: undefined, password: undefined, tls: false }, prefix: 'session:' },
] as const) {
  test(`an unreachable Redis (${target.kind}) is a StoreUnavailableError, not a hang`, async () => {
    const store = new RedisKeyValueStore(openRedis(target, { commandTimeoutMs: 500 }), 'session');
    try {
      const started = Date.now();
      const failed = assert.rejects(store.get('x'), StoreUnavailableError);
      await Promise.race([failed, sleep(5_000, undefined, { ref: false }).then(() => assert.fail('still waiting after 5 s'))]);
      assert.ok(Date.now() - started < 2_000);
    } finally {
      await store.close();
    }
  });
}
