import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import type { Ctx } from '../../src/infra/http/context.ts';
import { mergeGuestCart } from '../../src/modules/cart/cart.service.ts';

/** A guest: keeps the sessionid cookie the server hands out, like a browser. */
function guest(app: FastifyInstance) {
  let cookie = '';
  const call = async (method: string, url: string, payload?: unknown) => {
    const r = await getJson(app, url, { method: method as 'GET', headers: cookie ? { cookie } : {}, ...(payload === undefined ? {} : { payload: payload as object }) });
    const set = r.headers['set-cookie'];
    if (set) cookie = String(Array.isArray(set) ? set[0] : set).split(';')[0]!;
    return r;
  };
  return { call, cookie: () => cookie, sessionKey: () => cookie.split('=')[1] ?? '' };
}

forEachBackend('cart', ({ backend, db }) => {
  let app: FastifyInstance;
  before(async () => {
    app = await testApp(db());
  });
  after(async () => {
    await app.close();
  });
  const lines = async (cartId: number) => db().db.selectFrom('cart_items').selectAll().where('cart_id', '=', cartId).orderBy('id').execute();

  test('a guest gets a sessionid cookie and an empty cart; the cookie brings the same cart back', async () => {
    const g = guest(app);
    const first = await g.call('GET', '/api/cart/');
    assert.equal(first.status, 200);
    const set = String(first.headers['set-cookie']);
    assert.match(set, /^sessionid=[a-z0-9]{32}; Max-Age=1209600; Path=\/; HttpOnly; SameSite=Lax$/);
    assert.match(String(first.headers.vary), /Cookie/);
    assert.equal(first.headers['cache-control'], 'private, no-store');
    assert.deepEqual(first.body.items, []);
    assert.equal(first.body.total_items, 0);
    assert.equal(first.body.total_price, '0.00');
    assert.equal(first.body.total_weight, '0.00');
    const again = await g.call('GET', '/api/cart/');
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.headers['set-cookie'], undefined, 'a live session is not re-sent on every request');
    const forged = await getJson(app, '/api/cart/', { headers: { cookie: 'sessionid=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } });
    assert.notEqual(forged.body.id, first.body.id, 'an unknown session key gets a fresh session, never someone else’s');
  });

  test('catalog reads never start a session', async () => {
    const r = await getJson(app, '/api/products/');
    assert.equal(r.headers['set-cookie'], undefined);
  });

  test('add, add more, update, remove, clear; totals are exact decimals from SQL', async () => {
    const g = guest(app);
    const cat = await f.category(db().db);
    const cheap = await f.product(db().db, { price: '0.10', weight: '0.35', stock_quantity: 100, category_id: cat.id });
    const pricey = await f.product(db().db, { price: '19.99', weight: '150.00', stock_quantity: 5, category_id: cat.id });
    let r = await g.call('POST', '/api/cart/add/', { product_id: cheap.id, quantity: 3 });
    assert.equal(r.status, 200);
    r = await g.call('POST', '/api/cart/add/', { product_id: pricey.id, quantity: 3 });
    r = await g.call('POST', '/api/cart/add/', { product_id: cheap.id, quantity: 4 });
    assert.equal(r.body.items.length, 2);
    const [a, b] = r.body.items;
    assert.deepEqual([a.product.id, a.quantity, a.total_price, a.total_weight], [cheap.id, 7, '0.70', '2.45']);
    assert.deepEqual([b.product.id, b.quantity, b.total_price, b.total_weight], [pricey.id, 3, '59.97', '450.00']);
    assert.equal(r.body.total_items, 10);
    assert.equal(r.body.total_price, '60.67');
    assert.equal(r.body.total_weight, '452.45');
    assert.deepEqual(Object.keys(a.product).sort(), ['average_rating', 'category_name', 'id', 'is_featured', 'is_in_stock', 'main_image', 'name', 'price', 'review_count']);
    r = await g.call('PUT', `/api/cart/items/${b.id}/`, { quantity: 5 });
    assert.equal(r.body.total_price, '100.65');
    r = await g.call('PUT', `/api/cart/items/${a.id}/`, { quantity: 0 });
    assert.deepEqual(r.body.items.map((i: { id: number }) => i.id), [b.id]);
    r = await g.call('DELETE', `/api/cart/items/${b.id}/remove/`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.items, []);
    await g.call('POST', '/api/cart/add/', { product_id: cheap.id, quantity: 1 });
    r = await g.call('DELETE', '/api/cart/clear/');
    assert.equal(r.status, 200);
    assert.equal(r.body.total_items, 0);
    assert.equal((await g.call('DELETE', '/api/cart/clear/')).status, 200, 'clear is idempotent');
    assert.equal((await g.call('POST', '/api/cart/clear/')).status, 405);
    assert.equal((await g.call('PATCH', `/api/cart/items/${b.id}/`, { quantity: 1 })).status, 405);
  });

  test('every refused add or update answers in the contract shape and leaves the cart unchanged', async () => {
    const g = guest(app);
    const cat = await f.category(db().db);
    const p = await f.product(db().db, { stock_quantity: 4, category_id: cat.id });
    const inactive = await f.product(db().db, { is_active: false, category_id: cat.id });
    const soldOut = await f.product(db().db, { stock_quantity: 0, category_id: cat.id });
    const start = await g.call('POST', '/api/cart/add/', { product_id: p.id, quantity: 3 });
    const cartId = start.body.id;
    const itemId = start.body.items[0].id;
    const before = await lines(cartId);
    const cases: [string, string, unknown, number, unknown][] = [
      ['POST', '/api/cart/add/', { product_id: p.id }, 400, { quantity: ['This field is required.'] }],
      ['POST', '/api/cart/add/', { product_id: p.id, quantity: 0 }, 400, { quantity: ['Ensure this value is greater than or equal to 1.'] }],
      ['POST', '/api/cart/add/', { product_id: p.id, quantity: -2 }, 400, { quantity: ['Ensure this value is greater than or equal to 1.'] }],
      ['POST', '/api/cart/add/', { product_id: p.id, quantity: 'lots' }, 400, { quantity: ['A valid integer is required.'] }],
      ['POST', '/api/cart/add/', { quantity: 1 }, 400, { product_id: ['This field is required.'] }],
      ['POST', '/api/cart/add/', { product_id: 987654, quantity: 1 }, 400, { product_id: ['Product not found'] }],
      ['POST', '/api/cart/add/', { product_id: inactive.id, quantity: 1 }, 400, { product_id: ['Product not found'] }],
      ['POST', '/api/cart/add/', { product_id: soldOut.id, quantity: 1 }, 400, { product_id: ['Product is out of stock'] }],
      ['POST', '/api/cart/add/', { product_id: p.id, quantity: 2 }, 400, { error: 'Cannot add 2 more items. Only 1 available.' }],
      ['POST', '/api/cart/add/', { product_id: p.id, quantity: 5 }, 400, { non_field_errors: ['Only 4 items available in stock'] }],
      ['PUT', `/api/cart/items/${itemId}/`, { quantity: 5 }, 400, { error: 'Only 4 items available in stock' }],
      ['PUT', `/api/cart/items/${itemId}/`, { quantity: -1 }, 400, { quantity: ['Ensure this value is greater than or equal to 0.'] }],
      ['PUT', `/api/cart/items/${itemId}/`, {}, 400, { quantity: ['This field is required.'] }],
      ['PUT', '/api/cart/items/999999/', { quantity: 1 }, 404, { error: true, message: 'Not found.', status_code: 404, code: 'not_found' }],
      ['DELETE', '/api/cart/items/999999/remove/', undefined, 404, { error: true, message: 'Not found.', status_code: 404, code: 'not_found' }],
      ['PUT', '/api/cart/items/abc/', { quantity: 1 }, 404, { error: true, message: 'Not found.', status_code: 404, code: 'not_found' }],
    ];
    for (const [method, url, payload, status, body] of cases) {
      const r = await g.call(method, url, payload);
      assert.equal(r.status, status, `${method} ${url} ${JSON.stringify(payload)}`);
      assert.deepEqual(r.body, body, `${method} ${url} ${JSON.stringify(payload)}`);
    }
    const badJson = await app.inject({ method: 'POST', url: '/api/cart/add/', headers: { cookie: g.cookie(), 'content-type': 'application/json' }, payload: '{"product_id":' });
    assert.equal(badJson.statusCode, 400);
    assert.equal(badJson.json().error, true);
    assert.deepEqual(await lines(cartId), before);
  });

  test('50 parallel adds of one product to one cart: one line with the exact quantity; over stock, the excess is refused', async () => {
    const user = await signedIn(app, db());
    const p = await f.product(db().db, { stock_quantity: 40 });
    const results = await Promise.all(
      Array.from({ length: 50 }, () => getJson(app, '/api/cart/add/', { method: 'POST', headers: user.headers, payload: { product_id: p.id, quantity: 1 } })),
    );
    assert.equal(results.filter((r) => r.status === 200).length, 40);
    assert.equal(results.filter((r) => r.status === 400).length, 10);
    const cart = await getJson(app, '/api/cart/', { headers: user.headers });
    assert.equal(cart.body.items.length, 1);
    assert.equal(cart.body.items[0].quantity, 40);
    const carts = await db().db.selectFrom('carts').select('id').where('user_id', '=', user.id).execute();
    assert.equal(carts.length, 1, 'racing first requests made one cart');
  });

  test('one user can never read or change another user’s cart lines', async () => {
    const a = await signedIn(app, db());
    const b = await signedIn(app, db());
    const p = await f.product(db().db, { stock_quantity: 10 });
    const added = await getJson(app, '/api/cart/add/', { method: 'POST', headers: a.headers, payload: { product_id: p.id, quantity: 2 } });
    const itemId = added.body.items[0].id;
    assert.equal((await getJson(app, `/api/cart/items/${itemId}/`, { method: 'PUT', headers: b.headers, payload: { quantity: 9 } })).status, 404);
    assert.equal((await getJson(app, `/api/cart/items/${itemId}/remove/`, { method: 'DELETE', headers: b.headers })).status, 404);
    const g = guest(app);
    assert.equal((await g.call('PUT', `/api/cart/items/${itemId}/`, { quantity: 9 })).status, 404);
    const bCart = await getJson(app, '/api/cart/', { headers: b.headers });
    assert.deepEqual(bCart.body.items, []);
    assert.notEqual(bCart.body.id, added.body.id);
    const aCart = await getJson(app, '/api/cart/', { headers: a.headers });
    assert.equal(aCart.body.items[0].quantity, 2);
  });

  if (backend === 'postgres') {
    test('a sign-in merge picked as a deadlock victim is run again, as every other write of the lock order is [postgres]', async () => {
      const d = db().db;
      const p = await f.product(d, { stock_quantity: 10 });
      const user = await f.user(d);
      const userCart = await d.insertInto('carts').values({ user_id: user.id, session_key: null }).returning('id').executeTakeFirstOrThrow();
      await d.insertInto('cart_items').values({ cart_id: userCart.id, product_id: p.id, quantity: 1 }).execute();
      const key = 'mergeretry000000000000000000000a';
      const guestCart = await d.insertInto('carts').values({ user_id: null, session_key: key }).returning('id').executeTakeFirstOrThrow();
      await d.insertInto('cart_items').values({ cart_id: guestCart.id, product_id: p.id, quantity: 2 }).execute();
      // A write that takes the user's line and then the guest cart: the other way round from the merge.
      let locked!: () => void;
      const lockedNow = new Promise<void>((r) => (locked = r));
      let go!: () => void;
      const going = new Promise<void>((r) => (go = r));
      const other = d.transaction().execute(async (trx) => {
        await trx.updateTable('cart_items').set({ quantity: 1 }).where('cart_id', '=', userCart.id).where('product_id', '=', p.id).execute();
        locked();
        await going;
        await trx.selectFrom('carts').select('id').where('id', '=', guestCart.id).forNoKeyUpdate().execute();
      });
      await lockedNow;
      const ctx = { database: db(), events: app.events, caches: app.caches, requestId: 't', media: () => null } as unknown as Ctx;
      const merge = mergeGuestCart(ctx, key, Number(user.id));
      await new Promise((r) => setTimeout(r, 300)); // the merge holds the guest cart and waits for the user's line
      go();
      const [merged, done] = await Promise.allSettled([merge, other]);
      assert.equal(done.status, 'fulfilled', `the other write: ${(done as PromiseRejectedResult).reason}`);
      assert.equal(merged.status, 'fulfilled', `the merge: ${(merged as PromiseRejectedResult).reason}`);
      assert.deepEqual((await lines(Number(userCart.id))).map((l) => l.quantity), [3], 'merged once');
      assert.equal((await d.selectFrom('carts').select('id').where('id', '=', guestCart.id).execute()).length, 0);
    });
  }

  test('merge/: needs a user; adds the guest lines, capped by stock; deletes the guest cart; unknown keys change nothing', async () => {
    const user = await signedIn(app, db());
    const g = guest(app);
    const cat = await f.category(db().db);
    const both = await f.product(db().db, { stock_quantity: 10, category_id: cat.id });
    const guestOnly = await f.product(db().db, { stock_quantity: 10, category_id: cat.id });
    await getJson(app, '/api/cart/add/', { method: 'POST', headers: user.headers, payload: { product_id: both.id, quantity: 9 } });
    await g.call('POST', '/api/cart/add/', { product_id: both.id, quantity: 3 });
    await g.call('POST', '/api/cart/add/', { product_id: guestOnly.id, quantity: 2 });
    assert.equal((await getJson(app, '/api/cart/merge/', { method: 'POST', payload: { session_key: g.sessionKey() } })).status, 401);
    const missing = await getJson(app, '/api/cart/merge/', { method: 'POST', headers: user.headers, payload: {} });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, { error: 'Session key required' });
    const unknown = await getJson(app, '/api/cart/merge/', { method: 'POST', headers: user.headers, payload: { session_key: 'nosuchsessionkey' } });
    assert.equal(unknown.status, 200);
    assert.deepEqual(unknown.body.items.map((i: { quantity: number }) => i.quantity), [9]);
    const merged = await getJson(app, '/api/cart/merge/', { method: 'POST', headers: user.headers, payload: { session_key: g.sessionKey() } });
    assert.equal(merged.status, 200);
    assert.deepEqual(merged.body.items.map((i: { product: { id: number }; quantity: number }) => [i.product.id, i.quantity]), [[both.id, 10], [guestOnly.id, 2]]);
    const guestCarts = await db().db.selectFrom('carts').select('id').where('session_key', '=', g.sessionKey()).execute();
    assert.equal(guestCarts.length, 0);
    const twice = await getJson(app, '/api/cart/merge/', { method: 'POST', headers: user.headers, payload: { session_key: g.sessionKey() } });
    assert.equal(twice.body.total_items, 12, 'merging again adds nothing');
  });

  test('extreme values: huge totals stay exact, huge quantities are refused cleanly, booleans and nulls are not numbers', async () => {
    const user = await signedIn(app, db());
    const call = (method: string, url: string, payload?: unknown) => getJson(app, url, { method: method as 'GET', headers: user.headers, ...(payload === undefined ? {} : { payload: payload as object }) });
    const dear = await f.product(db().db, { price: '99999999.99', stock_quantity: 2147483647 });
    const big = await call('POST', '/api/cart/add/', { product_id: dear.id, quantity: 1_000_000 });
    assert.equal(big.status, 200);
    assert.equal(big.body.total_price, '99999999990000.00');
    const itemId = big.body.items[0].id;
    await db().db.updateTable('cart_items').set({ quantity: 2147483000 }).where('id', '=', itemId).execute();
    const over = await call('POST', '/api/cart/add/', { product_id: dear.id, quantity: 1_000_000 });
    assert.equal(over.status, 400);
    assert.deepEqual(over.body, { error: 'Cannot add 1000000 more items. Only 647 available.' });
    const cart = await call('GET', '/api/cart/');
    assert.equal(cart.status, 200);
    assert.equal(cart.body.total_price, '214748299978525170.00');
    for (const quantity of [true, null, '0x10', ' ']) {
      const r = await call('POST', '/api/cart/add/', { product_id: dear.id, quantity });
      assert.equal(r.status, 400, JSON.stringify(quantity));
      assert.deepEqual(r.body, { quantity: ['A valid integer is required.'] }, JSON.stringify(quantity));
    }
    assert.equal((await call('POST', '/api/cart/add/', { product_id: dear.id, quantity: 1e300 })).status, 400);
  });

  test('a line whose product was taken off sale cannot be raised; it can be removed', async () => {
    const user = await signedIn(app, db());
    const p = await f.product(db().db, { stock_quantity: 10 });
    const added = await getJson(app, '/api/cart/add/', { method: 'POST', headers: user.headers, payload: { product_id: p.id, quantity: 1 } });
    await db().db.updateTable('products').set({ is_active: false }).where('id', '=', p.id).execute();
    const url = `/api/cart/items/${added.body.items[0].id}/`;
    const raise = await getJson(app, url, { method: 'PUT', headers: user.headers, payload: { quantity: 3 } });
    assert.equal(raise.status, 400);
    assert.deepEqual(raise.body, { error: 'Product is no longer available' });
    const zero = await getJson(app, url, { method: 'PUT', headers: user.headers, payload: { quantity: 0 } });
    assert.deepEqual(zero.body.items, []);
  });

  test('signing in replaces the guest session: the old cookie no longer names anything', async () => {
    const g = guest(app);
    const p = await f.product(db().db, { stock_quantity: 10 });
    await g.call('POST', '/api/cart/add/', { product_id: p.id, quantity: 1 });
    const old = g.cookie();
    const user = await signedIn(app, db());
    const login = await getJson(app, '/api/users/auth/login/', { method: 'POST', headers: { cookie: old }, payload: { email: user.email, password: user.password } });
    assert.equal(login.status, 200);
    const fresh = String(login.headers['set-cookie']).split(';')[0]!;
    assert.match(fresh, /^sessionid=[a-z0-9]{32}$/);
    assert.notEqual(fresh, old);
    assert.equal(await app.sessions.exists(old.split('=')[1]!), false);
    const merged = await getJson(app, '/api/cart/merge/', { method: 'POST', headers: user.headers, payload: { session_key: old.split('=')[1] } });
    assert.equal(merged.body.total_items, 1, 'merged once at sign-in; the dead key merges nothing more');
  });

  test('price changes show in the cart at once: totals follow the product', async () => {
    const user = await signedIn(app, db());
    const p = await f.product(db().db, { price: '10.00', stock_quantity: 10 });
    await getJson(app, '/api/cart/add/', { method: 'POST', headers: user.headers, payload: { product_id: p.id, quantity: 3 } });
    await db().db.updateTable('products').set({ price: '12.34' }).where('id', '=', p.id).execute();
    const cart = await getJson(app, '/api/cart/', { headers: user.headers });
    assert.equal(cart.body.total_price, '37.02');
  });
});
