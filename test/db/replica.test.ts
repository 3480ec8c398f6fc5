// Read replicas against a real streaming replica (made by this file's setup with initdb and
// pg_basebackup, see helpers/pg-replica.ts): public catalog reads are answered by the replica;
// writes and the reads that follow a client's own write by the primary; and a write shows where
// it must, at once for the writer (even while the replica is held behind), after replay for
// everyone else, with no stale answer left in the response cache by the fill after the write.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, REPLICA_CATCH_UP_MS, type Database } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { TEST_SECRET } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { startReplicaPair, type ReplicaPair } from '../helpers/pg-replica.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('read replicas on a real streaming replica', () => {
  let pair: ReplicaPair | undefined;
  let database: Database | undefined;
  let app: FastifyInstance | undefined;
  let staff: TestUser;
  let customer: TestUser;
  let categoryId: number;
  let lamp: { id: number; name: string };
  let bust: { id: number };

  before(async () => {
    pair = await startReplicaPair();
    const env = { DATABASE_URL: pair.primaryUrl, DATABASE_REPLICA_URLS: pair.replicaUrl };
    database = await openDatabase(loadConfig({ ...env, SECRET_KEY: TEST_SECRET, LOG_LEVEL: 'silent' }));
    await migrate(database);
    app = await testApp(database, env);
    const d = database.db;
    categoryId = (await f.category(d, { name: 'Lamps' })).id;
    lamp = await f.product(d, { name: 'Moon Lamp', category_id: categoryId, price: '10.00', stock_quantity: 3, low_stock_threshold: 5 });
    bust = await f.product(d, { name: 'Dragon Bust', category_id: categoryId, price: '25.00' });
    staff = await signedIn(app, database, { staff: true });
    customer = await signedIn(app, database);
    await pair.caughtUp();
  });

  after(async () => {
    await app?.close();
    await database?.close();
    await pair?.stop();
  });

  /** Runs `fn` and returns how many statements each target ran meanwhile. */
  async function counted(fn: () => Promise<void>): Promise<{ primary: number; replica: number }> {
    const by = database!.stats.byTarget;
    const before = { primary: by.primary ?? 0, replica: by.replica0 ?? 0 };
    await fn();
    return { primary: (by.primary ?? 0) - before.primary, replica: (by.replica0 ?? 0) - before.replica };
  }

  const get = (url: string, who?: TestUser) => getJson(app!, url, who ? { headers: who.headers } : {});
  const send = (method: 'POST' | 'PATCH', url: string, who: TestUser, payload: object) => getJson(app!, url, { method, payload, headers: who.headers });
  const replicaPrice = async (id: number) => (await pair!.replica.query<{ price: string }>('select price::text from products where id = $1', [id])).rows[0]!.price;
  const priceIn = (page: { results: { id: number; price: string }[] }, id: number) => page.results.find((p) => p.id === id)?.price;

  test('public catalog reads are answered by the replica', async () => {
    const delta = await counted(async () => {
      for (const url of [
        '/api/products/',
        `/api/products/${lamp.id}/`,
        `/api/products/?category=${categoryId}`,
        '/api/products/featured/',
        '/api/products/categories/',
        `/api/products/categories/${categoryId}/`,
        '/api/products/search/?q=moon',
        `/api/products/${lamp.id}/reviews/`,
        '/api/promotions/active/',
        '/api/recommendations/trending/',
      ]) {
        const res = await get(url);
        assert.equal(res.status, 200, `${url}: ${JSON.stringify(res.body)}`);
      }
    });
    assert.ok(delta.replica >= 10, `the replica ran ${delta.replica} statements`);
    assert.equal(delta.primary, 0, 'the primary answered no catalog read');
    assert.equal((await get(`/api/products/${lamp.id}/`)).body.name, 'Moon Lamp');
  });

  test('writes and the reads that follow a client’s own write go to the primary', async () => {
    const delta = await counted(async () => {
      const login = await getJson(app!, '/api/users/auth/login/', { method: 'POST', payload: { email: customer.email, password: customer.password } });
      assert.equal(login.status, 200, JSON.stringify(login.body));
      assert.equal((await get('/api/users/profile/', customer)).status, 200);
      assert.equal((await send('POST', '/api/cart/add/', customer, { product_id: bust.id, quantity: 2 })).status, 200);
      const cart = await get('/api/cart/', customer);
      assert.equal(cart.status, 200);
      assert.equal(cart.body.items.length, 1);
      const low = await get('/api/products/low-stock/', staff);
      assert.equal(low.status, 200);
      assert.deepEqual(low.body.results.map((p: { id: number }) => p.id), [lamp.id]);
    });
    assert.ok(delta.primary > 0);
    assert.equal(delta.replica, 0, 'the replica answered none of them');
  });

  test('a staff edit is read back at once, and the cache fill after it stores the new price', async () => {
    await pair!.pauseReplay();
    try {
      const patched = await send('PATCH', `/api/products/${lamp.id}/`, staff, { price: '42.00' });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.equal(await replicaPrice(lamp.id), '10.00', 'the replica has not replayed the edit');

      // The edit invalidated the cached detail; the refill reads the primary.
      const delta = await counted(async () => {
        const res = await get(`/api/products/${lamp.id}/`);
        assert.equal(res.headers['x-cache'], 'MISS');
        assert.equal(res.body.price, '42.00');
        assert.equal(priceIn((await get('/api/products/')).body, lamp.id), '42.00');
      });
      assert.equal(delta.replica, 0);
      assert.ok(delta.primary > 0);

      // Past the catch-up window, with the replica still behind: the cached answers stay fresh...
      await sleep(REPLICA_CATCH_UP_MS + 200);
      const cached = await get(`/api/products/${lamp.id}/`);
      assert.equal(cached.headers['x-cache'], 'HIT');
      assert.equal(cached.body.price, '42.00');
      // ...while a new catalog read goes to the replica and shows what it has replayed so far: the
      // bounded staleness of lag-tolerant reads.
      const lagging = await counted(async () => {
        assert.equal(priceIn((await get('/api/products/?ordering=price')).body, lamp.id), '10.00');
      });
      assert.ok(lagging.replica > 0 && lagging.primary === 0);
    } finally {
      await pair!.resumeReplay();
    }

    // Once replayed, the replica's answers carry the edit.
    await pair!.caughtUp();
    const replayed = await counted(async () => {
      assert.equal(priceIn((await get('/api/products/?ordering=-price')).body, lamp.id), '42.00');
    });
    assert.ok(replayed.replica > 0 && replayed.primary === 0);
  });

  test('a new review is listed for its author at once, even with the replica behind', async () => {
    await sleep(REPLICA_CATCH_UP_MS + 200);
    assert.equal((await get(`/api/products/${bust.id}/reviews/`)).body.count, 0, 'cached: no reviews yet');
    await pair!.pauseReplay();
    try {
      const created = await send('POST', `/api/products/${bust.id}/reviews/`, customer, { rating: 5, review_text: 'Sharp detail' });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const delta = await counted(async () => {
        const list = await get(`/api/products/${bust.id}/reviews/`);
        assert.equal(list.body.count, 1);
        assert.equal(list.body.results[0].review_text, 'Sharp detail');
        assert.equal((await get(`/api/products/${bust.id}/`)).body.review_count, 1);
      });
      assert.equal(delta.replica, 0);
    } finally {
      await pair!.resumeReplay();
    }
  });
});
