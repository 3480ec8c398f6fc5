import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

forEachBackend('wishlist', ({ db }) => {
  let app: FastifyInstance;
  before(async () => {
    app = await testApp(db());
  });
  after(async () => {
    await app.close();
  });

  test('add (201, then 200 when already there), list newest first, remove by product, clear', async () => {
    const u = await signedIn(app, db());
    const call = (method: string, url: string, payload?: unknown) => getJson(app, url, { method: method as 'GET', headers: u.headers, ...(payload === undefined ? {} : { payload: payload as object }) });
    const cat = await f.category(db().db);
    const [p1, p2] = [await f.product(db().db, { category_id: cat.id }), await f.product(db().db, { category_id: cat.id })];
    const empty = await call('GET', '/api/wishlist/');
    assert.equal(empty.status, 200);
    assert.deepEqual(Object.keys(empty.body).sort(), ['created_at', 'id', 'items', 'total_items', 'updated_at']);
    const added = await call('POST', '/api/wishlist/add/', { product_id: p1.id });
    assert.equal(added.status, 201);
    assert.equal(added.body.message, 'Product added to wishlist');
    assert.equal(added.body.item.product.id, p1.id);
    assert.deepEqual(Object.keys(added.body.item).sort(), ['added_at', 'created_at', 'id', 'product']);
    const dup = await call('POST', '/api/wishlist/add/', { product_id: p1.id });
    assert.equal(dup.status, 200);
    assert.deepEqual(dup.body, { message: 'Product already in wishlist' });
    await call('POST', '/api/wishlist/add/', { product_id: String(p2.id) });
    const list = await call('GET', '/api/wishlist/');
    assert.equal(list.body.total_items, 2);
    assert.deepEqual(list.body.items.map((i: { product: { id: number } }) => i.product.id), [p2.id, p1.id]);
    const removed = await call('DELETE', `/api/wishlist/remove/${p1.id}/`);
    assert.deepEqual(removed.body, { message: 'Product removed from wishlist' });
    const again = await call('DELETE', `/api/wishlist/remove/${p1.id}/`);
    assert.equal(again.status, 404);
    assert.deepEqual(again.body, { error: 'Product not in wishlist' });
    const cleared = await call('POST', '/api/wishlist/clear/');
    assert.deepEqual(cleared.body, { message: 'Wishlist cleared' });
    assert.equal((await call('GET', '/api/wishlist/')).body.total_items, 0);
  });

  test('bad input: missing or malformed id is 400, unknown or inactive product 404; nothing is added', async () => {
    const u = await signedIn(app, db());
    const inactive = await f.product(db().db, { is_active: false });
    const cases: [unknown, number, unknown][] = [
      [{}, 400, { error: 'Product ID is required' }],
      [{ product_id: '' }, 400, { error: 'Product ID is required' }],
      [{ product_id: 'abc' }, 400, { error: 'A valid integer is required.' }],
      [{ product_id: -4 }, 400, { error: 'A valid integer is required.' }],
      [{ product_id: 1.5 }, 400, { error: 'A valid integer is required.' }],
      [{ product_id: 987654 }, 404, { error: 'Product not found' }],
      [{ product_id: inactive.id }, 404, { error: 'Product not found' }],
    ];
    for (const [payload, status, body] of cases) {
      for (const url of ['/api/wishlist/add/', '/api/wishlist/items/']) {
        const r = await getJson(app, url, { method: 'POST', headers: u.headers, payload: payload as object });
        assert.equal(r.status, status, `${url} ${JSON.stringify(payload)}`);
        assert.deepEqual(r.body, body);
      }
    }
    assert.equal((await getJson(app, '/api/wishlist/', { headers: u.headers })).body.total_items, 0);
  });

  test('move-to-cart adds to the cart with the cart’s checks and takes the item off the wishlist', async () => {
    const u = await signedIn(app, db());
    const p = await f.product(db().db, { stock_quantity: 2 });
    await getJson(app, '/api/wishlist/add/', { method: 'POST', headers: u.headers, payload: { product_id: p.id } });
    const over = await getJson(app, `/api/wishlist/move-to-cart/${p.id}/`, { method: 'POST', headers: u.headers, payload: { product_id: p.id, quantity: 3 } });
    assert.equal(over.status, 400);
    assert.deepEqual(over.body, { non_field_errors: ['Only 2 items available in stock'] });
    assert.equal((await getJson(app, '/api/wishlist/', { headers: u.headers })).body.total_items, 1, 'a refused move keeps the item');
    const moved = await getJson(app, `/api/wishlist/move-to-cart/${p.id}/`, { method: 'POST', headers: u.headers, payload: { product_id: p.id, quantity: 2 } });
    assert.equal(moved.status, 200);
    assert.equal(moved.body.items[0].quantity, 2);
    assert.equal((await getJson(app, '/api/wishlist/', { headers: u.headers })).body.total_items, 0);
  });

  test('the storefront’s paths: POST items/ answers with the item, DELETE items/{id}/, DELETE the wishlist clears it', async () => {
    const u = await signedIn(app, db());
    const p = await f.product(db().db);
    const item = await getJson(app, '/api/wishlist/items/', { method: 'POST', headers: u.headers, payload: { product_id: p.id } });
    assert.equal(item.status, 201);
    assert.equal(item.body.product.id, p.id);
    const same = await getJson(app, '/api/wishlist/items/', { method: 'POST', headers: u.headers, payload: { product_id: p.id } });
    assert.equal(same.status, 200);
    assert.equal(same.body.id, item.body.id);
    const del = await app.inject({ method: 'DELETE', url: `/api/wishlist/items/${item.body.id}/`, headers: u.headers });
    assert.equal(del.statusCode, 204);
    assert.equal((await getJson(app, `/api/wishlist/items/${item.body.id}/`, { method: 'DELETE', headers: u.headers })).status, 404);
    await getJson(app, '/api/wishlist/items/', { method: 'POST', headers: u.headers, payload: { product_id: p.id } });
    const cleared = await getJson(app, '/api/wishlist/', { method: 'DELETE', headers: u.headers });
    assert.deepEqual(cleared.body, { message: 'Wishlist cleared' });
    assert.equal((await getJson(app, '/api/wishlist/', { headers: u.headers })).body.total_items, 0);
  });

  test('every item carries added_at: when it was added (ISO), on the wishlist, add/ and items/ answers', async () => {
    const u = await signedIn(app, db());
    const [p1, p2] = [await f.product(db().db), await f.product(db().db)];
    const t0 = Date.now();
    const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
    const check = (item: { added_at?: unknown; created_at: string }, what: string) => {
      assert.equal(typeof item.added_at, 'string', `${what}: added_at`);
      assert.match(item.added_at as string, iso, what);
      assert.equal(item.added_at, item.created_at, `${what}: the row's creation time`);
      const at = Date.parse(item.added_at as string);
      assert.ok(at >= t0 - 5_000 && at <= Date.now() + 5_000, `${what}: ${String(item.added_at)} is now`);
    };
    const added = await getJson(app, '/api/wishlist/add/', { method: 'POST', headers: u.headers, payload: { product_id: p1.id } });
    check(added.body.item, 'add/');
    const created = await getJson(app, '/api/wishlist/items/', { method: 'POST', headers: u.headers, payload: { product_id: p2.id } });
    assert.equal(created.status, 201);
    check(created.body, 'items/ 201');
    const again = await getJson(app, '/api/wishlist/items/', { method: 'POST', headers: u.headers, payload: { product_id: p1.id } });
    assert.equal(again.status, 200);
    check(again.body, 'items/ 200');
    assert.equal(again.body.added_at, added.body.item.added_at, 'the first time it was added, not now');
    const list = (await getJson(app, '/api/wishlist/', { headers: u.headers })).body;
    assert.equal(list.items.length, 2);
    for (const item of list.items) {
      assert.deepEqual(Object.keys(item).sort(), ['added_at', 'created_at', 'id', 'product']);
      check(item, 'GET wishlist');
    }
  });

  test('a deactivated product leaves every wishlist it is on, and comes back when reactivated', async () => {
    const staff = await signedIn(app, db(), { staff: true });
    const [a, b] = [await signedIn(app, db()), await signedIn(app, db())];
    const [kept, retired] = [await f.product(db().db), await f.product(db().db)];
    for (const u of [a, b]) {
      for (const p of [kept, retired]) await getJson(app, '/api/wishlist/add/', { method: 'POST', headers: u.headers, payload: { product_id: p.id } });
    }
    assert.equal((await getJson(app, `/api/products/${retired.id}/`, { method: 'DELETE', headers: staff.headers })).status, 204);
    for (const u of [a, b]) {
      const w = (await getJson(app, '/api/wishlist/', { headers: u.headers })).body;
      assert.deepEqual(w.items.map((i: { product: { id: number } }) => i.product.id), [kept.id]);
      assert.equal(w.total_items, 1);
    }
    assert.equal((await getJson(app, `/api/products/${retired.id}/`, { method: 'PATCH', headers: staff.headers, payload: { is_active: true } })).status, 200);
    assert.equal((await getJson(app, '/api/wishlist/', { headers: a.headers })).body.total_items, 2);
  });

  test('one user can never see or change another user’s wishlist', async () => {
    const a = await signedIn(app, db());
    const b = await signedIn(app, db());
    const p = await f.product(db().db);
    const item = await getJson(app, '/api/wishlist/items/', { method: 'POST', headers: a.headers, payload: { product_id: p.id } });
    assert.equal((await getJson(app, `/api/wishlist/items/${item.body.id}/`, { method: 'DELETE', headers: b.headers })).status, 404);
    assert.equal((await getJson(app, `/api/wishlist/remove/${p.id}/`, { method: 'DELETE', headers: b.headers })).status, 404);
    await getJson(app, '/api/wishlist/clear/', { method: 'POST', headers: b.headers });
    assert.equal((await getJson(app, '/api/wishlist/', { headers: b.headers })).body.total_items, 0);
    assert.equal((await getJson(app, '/api/wishlist/', { headers: a.headers })).body.total_items, 1);
  });
});
