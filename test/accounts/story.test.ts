// The whole shopper story through HTTP: a guest fills a cart and a wishlist, signs up, finds both
// merged into the account, signs out and in again on another device, and sees them still.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { getJson, testApp } from '../helpers/app.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

forEachBackend('shopper story', ({ db }) => {
  let app: FastifyInstance;
  before(async () => {
    app = await testApp(db());
  });
  after(async () => {
    await app.close();
  });

  test('guest → sign-up → merged cart and wishlist → sign-in elsewhere → still there', async () => {
    const cat = await f.category(db().db, { name: 'Dragons' });
    const dragon = await f.product(db().db, { name: 'Dragon', price: '24.50', stock_quantity: 5, category_id: cat.id });
    const lamp = await f.product(db().db, { name: 'Moon lamp', price: '39.99', stock_quantity: 3, category_id: cat.id });
    let cookie = '';
    const asGuest = async (method: string, url: string, payload?: unknown) => {
      const r = await getJson(app, url, { method: method as 'GET', headers: cookie ? { cookie } : {}, ...(payload ? { payload: payload as object } : {}) });
      if (r.headers['set-cookie']) cookie = String(r.headers['set-cookie']).split(';')[0]!;
      return r;
    };

    await asGuest('POST', '/api/cart/add/', { product_id: dragon.id, quantity: 2 });
    await asGuest('POST', '/api/wishlist/add/', { product_id: lamp.id });
    assert.match(cookie, /^sessionid=[a-z0-9]{32}$/);

    const password = 'Dragon-Hoard-77';
    const signUp = await getJson(app, '/api/users/auth/register/', {
      method: 'POST',
      headers: { cookie },
      payload: { email: 'maker@example.com', username: 'maker', first_name: 'Maker', last_name: 'One', password, password_confirm: password },
    });
    assert.equal(signUp.status, 201);
    const auth = { authorization: `Bearer ${signUp.body.tokens.access}` };
    const cart = await getJson(app, '/api/cart/', { headers: auth });
    assert.deepEqual(cart.body.items.map((i: { product: { name: string }; quantity: number }) => [i.product.name, i.quantity]), [['Dragon', 2]]);
    assert.equal(cart.body.total_price, '49.00');
    const wishlist = await getJson(app, '/api/wishlist/', { headers: auth });
    assert.deepEqual(wishlist.body.items.map((i: { product: { name: string } }) => i.product.name), ['Moon lamp']);

    // The guest's own lists are gone: the same cookie without a token starts empty.
    const guestCart = await asGuest('GET', '/api/cart/');
    assert.deepEqual(guestCart.body.items, []);

    // The user adds more, then signs in on another device (no cookie) and sees it all.
    await getJson(app, '/api/wishlist/move-to-cart/' + lamp.id + '/', { method: 'POST', headers: auth, payload: { quantity: 1 } });
    await getJson(app, '/api/users/auth/logout/', { method: 'POST', payload: { refresh: signUp.body.tokens.refresh } });
    const login = await getJson(app, '/api/users/auth/login/', { method: 'POST', payload: { email: 'Maker@Example.com', password } });
    assert.equal(login.status, 200);
    const elsewhere = await getJson(app, '/api/cart/', { headers: { authorization: `Bearer ${login.body.access}` } });
    assert.deepEqual(elsewhere.body.items.map((i: { product: { name: string }; quantity: number }) => [i.product.name, i.quantity]), [['Dragon', 2], ['Moon lamp', 1]]);
    assert.equal(elsewhere.body.total_price, '88.99');

    // A second guest session merged at sign-in adds quantities, capped by stock.
    cookie = '';
    await asGuest('POST', '/api/cart/add/', { product_id: dragon.id, quantity: 4 });
    await asGuest('POST', '/api/wishlist/add/', { product_id: dragon.id });
    const again = await getJson(app, '/api/users/auth/login/', { method: 'POST', headers: { cookie }, payload: { email: 'maker@example.com', password } });
    const merged = await getJson(app, '/api/cart/', { headers: { authorization: `Bearer ${again.body.access}` } });
    assert.deepEqual(merged.body.items.map((i: { product: { name: string }; quantity: number }) => [i.product.name, i.quantity]), [['Dragon', 5], ['Moon lamp', 1]]);
    const wl = await getJson(app, '/api/wishlist/', { headers: { authorization: `Bearer ${again.body.access}` } });
    assert.deepEqual(wl.body.items.map((i: { product: { name: string } }) => i.product.name), ['Dragon']);
  });
});
