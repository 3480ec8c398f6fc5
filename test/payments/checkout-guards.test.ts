// Checkout guards from issue 20, on PGlite and PostgreSQL with the built-in test provider: a hold
// whose provider session could not be saved is given back at once; an Idempotency-Key reused with
// another request is refused; return URLs are checked and normalised when the checkout is made and
// the redirect after paying never fails; the test payment page asks a guest without an email for
// one, so guest tracking finds the order.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { shopper } from '../helpers/shopper.ts';

/** A shopper with a browser's cookie jar. */
forEachBackend('checkout guards', ({ db }) => {
  let app: FastifyInstance;
  before(async () => {
    app = await testApp(db());
  });
  after(async () => {
    await app.close();
  });
  const d = () => db().db;
  const stock = async (id: number) => (await d().selectFrom('products').select('stock_quantity').where('id', '=', id).executeTakeFirstOrThrow()).stock_quantity;

  test('a hold whose provider session id could not be saved is given back at once, stock and code use', async () => {
    const item = await f.product(d(), { stock_quantity: 5 });
    const promo = await d()
      .insertInto('promotion_codes')
      .values({ code: `SAVE${Date.now()}`, discount_type: 'fixed', discount_value: '1.00', usage_type: 'unlimited', valid_from: new Date(Date.now() - 60_000).toISOString(), valid_until: new Date(Date.now() + 3_600_000).toISOString() })
      .returningAll()
      .executeTakeFirstOrThrow();
    // A first checkout owns a session id; the provider then hands the same id out again, so
    // saving it on the second checkout fails (a unique violation) after its hold committed.
    const first = shopper(app);
    await first.add(item.id, 1);
    const opened = await first.checkout();
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    const provider = app.payments.provider;
    const original = provider.createSession.bind(provider);
    provider.createSession = async () => ({ id: opened.body.checkout_session_id, url: 'http://shop.test/x' });
    try {
      const g = shopper(app);
      await g.add(item.id, 2);
      const r = await g.checkout({ promotion_code: promo.code });
      assert.ok(r.status >= 500, `refused: ${r.status} ${JSON.stringify(r.body)}`);
    } finally {
      provider.createSession = original;
    }
    assert.equal(await stock(item.id), 4, 'only the first checkout holds stock');
    const held = await d().selectFrom('checkouts').select(['status']).where('status', '=', 'open').where('public_id', 'is', null).execute();
    assert.equal(held.length, 0, 'no open checkout without a session');
    const uses = await d().selectFrom('promotion_usages').select('id').where('promotion_id', '=', promo.id).execute();
    assert.equal(uses.length, 0, 'the code use was given back');
  });

  test('an open checkout whose session was never saved (the process died) is released long before CHECKOUT_TTL', async () => {
    const item = await f.product(d(), { stock_quantity: 5 });
    const g = shopper(app);
    await g.add(item.id, 2);
    const r = await g.checkout();
    assert.equal(r.status, 200);
    // As if the process had died between the hold's commit and saving the session id.
    await d().updateTable('checkouts').set({ public_id: null, checkout_url: '', created_at: new Date(Date.now() - 10 * 60_000).toISOString() }).where('public_id', '=', r.body.checkout_session_id).execute();
    assert.equal(await stock(item.id), 3);
    const other = shopper(app);
    await other.add((await f.product(d())).id, 1);
    assert.equal((await other.checkout()).status, 200);
    assert.equal(await stock(item.id), 5, 'released by the next checkout’s sweep');
  });

  test('Idempotency-Key: the same key with another body is 422 and changes nothing; with the same body it replays', async () => {
    const item = await f.product(d(), { stock_quantity: 10 });
    const g = shopper(app);
    await g.add(item.id, 2);
    const key = { 'idempotency-key': 'attempt-fingerprint' };
    const body = { success_url: 'http://localhost:3000/checkout/success', email: 'a@example.com' };
    const a = await g.checkout(body, key);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const same = await g.checkout({ email: 'a@example.com', success_url: 'http://localhost:3000/checkout/success' }, key);
    assert.deepEqual([same.status, same.body], [200, a.body], 'the same request (keys in another order) replays');
    const other = await g.checkout({ ...body, email: 'b@example.com' }, key);
    assert.equal(other.status, 422, JSON.stringify(other.body));
    assert.match(other.body.error, /Idempotency-Key/);
    const code = await g.checkout({ ...body, promotion_code: 'NOPE' }, key);
    assert.equal(code.status, 422);
    assert.equal(await stock(item.id), 8, 'held once');
    // Another caller's key is another key: it makes its own checkout.
    const h = shopper(app);
    await h.add(item.id, 1);
    assert.equal((await h.checkout({ ...body, email: 'c@example.com' }, key)).status, 200);
  });

  test('Idempotency-Key: a replay after the checkout was paid (the cart now empty) answers the same session, not "Cart is empty"', async () => {
    const item = await f.product(d(), { stock_quantity: 10 });
    const g = shopper(app);
    await g.add(item.id, 1);
    const key = { 'idempotency-key': 'paid-then-replayed' };
    const body = { email: 'replay@example.com' };
    const a = await g.checkout(body, key);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal((await g.pay(a.body.checkout_session_id)).statusCode, 303);
    assert.equal((await g.call('GET', '/api/cart/')).body.items.length, 0, 'the bought line left the cart');
    const again = await g.checkout(body, key);
    assert.deepEqual([again.status, again.body], [200, a.body], 'the same request, the same answer');
    assert.equal((await g.checkout({ email: 'other@example.com' }, key)).status, 422, 'another request with the key is still refused');
    assert.deepEqual((await g.checkout(body)).body, { error: 'Cart is empty' }, 'without the key it is a new checkout of an empty cart');
    assert.equal(await d().selectFrom('orders').select('id').where('shipping_email', '=', 'replay@example.com').execute().then((r) => r.length), 1, 'one order');
  });

  test('Idempotency-Key: a signed-in user replaying with another identity (another user’s token) is not the same request', async () => {
    const item = await f.product(d(), { stock_quantity: 10 });
    const u = await signedIn(app, db());
    const g = shopper(app, u.headers);
    await g.add(item.id, 1);
    const key = { 'idempotency-key': 'user-key' };
    const a = await g.checkout({}, key);
    assert.equal(a.status, 200);
    // The guest cookie the user's browser also holds does not change who the user is.
    assert.deepEqual((await g.checkout({}, key)).body, a.body);
    assert.equal((await g.checkout({ fulfillment_method: 'pickup' }, key)).status, 422);
  });

  test('return URLs: control characters are a 400 field error; other characters are encoded; the redirect after paying never fails', async () => {
    const item = await f.product(d(), { stock_quantity: 10 });
    const g = shopper(app);
    await g.add(item.id, 1);
    for (const bad of ['http://localhost:3000/ok\r\nSet-Cookie: x=1', 'http://localhost:3000/ok\n', 'http://localhost:3000/\u0000x', 'http://localhost:3000/a\tb']) {
      const r = await g.checkout({ success_url: bad });
      assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.status}`);
      assert.equal(r.body.message, 'Bad request. Please check your input.');
      assert.ok(Array.isArray(r.body.errors?.success_url), JSON.stringify(r.body));
      const c = await g.checkout({ cancel_url: bad });
      assert.ok(Array.isArray(c.body.errors?.cancel_url), JSON.stringify(c.body));
    }
    const foreign = await g.checkout({ success_url: 'https://evil.example/steal' });
    assert.deepEqual(foreign.body.errors, { success_url: ["success_url must be on the storefront's origin"] });
    const junk = await g.checkout({ cancel_url: 'not a url' });
    assert.deepEqual(junk.body.errors, { cancel_url: ['Enter a valid URL.'] });
    assert.equal(await stock(item.id), 10, 'nothing held by a refused checkout');

    const r = await g.checkout({ success_url: 'http://localhost:3000/danke/ü?x=€&s={CHECKOUT_SESSION_ID}', cancel_url: 'http://localhost:3000/zurück' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const row = await d().selectFrom('checkouts').select(['success_url', 'cancel_url']).where('public_id', '=', r.body.checkout_session_id).executeTakeFirstOrThrow();
    assert.equal(row.success_url, 'http://localhost:3000/danke/%C3%BC?x=%E2%82%AC&s={CHECKOUT_SESSION_ID}');
    assert.equal(row.cancel_url, 'http://localhost:3000/zur%C3%BCck');
    const paid = await g.pay(r.body.checkout_session_id, 'outcome=paid&email=a%40example.com');
    assert.equal(paid.statusCode, 303, paid.body);
    assert.equal(paid.headers.location, `http://localhost:3000/danke/%C3%BC?x=%E2%82%AC&s=${r.body.checkout_session_id}`);

    // A checkout stored before this check (raw bytes in its URLs) still redirects.
    const h = shopper(app);
    await h.add(item.id, 1);
    const old = await h.checkout();
    await d().updateTable('checkouts').set({ success_url: 'http://localhost:3000/ok\r\nX: ü?session_id={CHECKOUT_SESSION_ID}' }).where('public_id', '=', old.body.checkout_session_id).execute();
    const redirected = await h.pay(old.body.checkout_session_id, 'outcome=paid&email=a%40example.com');
    assert.equal(redirected.statusCode, 303, redirected.body);
    assert.doesNotMatch(String(redirected.headers.location), /[\r\n\u0080-\uffff]/);
    assert.equal((await d().selectFrom('checkouts').select('status').where('public_id', '=', old.body.checkout_session_id).executeTakeFirstOrThrow()).status, 'complete');
  });

  test('the test payment page asks a guest without an email for one; the order carries it and guest tracking finds it', async () => {
    const item = await f.product(d(), { stock_quantity: 10 });
    const g = shopper(app);
    await g.add(item.id, 1);
    const r = await g.checkout();
    assert.equal(r.status, 200);
    const page = await g.page(r.body.checkout_session_id);
    assert.match(page.body, /<input[^>]*type="email"[^>]*name="email"[^>]*required/);
    const missing = await g.pay(r.body.checkout_session_id);
    assert.equal(missing.statusCode, 400, 'paying without an email is refused');
    const bad = await g.pay(r.body.checkout_session_id, 'outcome=paid&email=nope');
    assert.equal(bad.statusCode, 400);
    const paid = await g.pay(r.body.checkout_session_id, `outcome=paid&email=${encodeURIComponent(' Guest@Example.com ')}`);
    assert.equal(paid.statusCode, 303, paid.body);
    const order = await d().selectFrom('orders').select(['order_number', 'shipping_email', 'billing_email']).orderBy('id', 'desc').executeTakeFirstOrThrow();
    assert.deepEqual([order.shipping_email, order.billing_email], ['Guest@Example.com', 'Guest@Example.com']);
    const tracked = await g.call('POST', '/api/orders/track/guest/', { order_number: order.order_number, email: 'guest@example.com' });
    assert.equal(tracked.status, 200, JSON.stringify(tracked.body));
    const verified = await g.call('GET', `/api/payments/verify-checkout-session/?session_id=${r.body.checkout_session_id}`);
    assert.equal(verified.body.email, 'Guest@Example.com');

    // A checkout that has an email is not asked again.
    const h = shopper(app);
    await h.add(item.id, 1);
    const withEmail = await h.checkout({ email: 'known@example.com' });
    assert.doesNotMatch((await h.page(withEmail.body.checkout_session_id)).body, /name="email"/);
    assert.equal((await h.pay(withEmail.body.checkout_session_id)).statusCode, 303);
  });
});
