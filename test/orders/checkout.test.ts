// The purchase story through HTTP with the built-in test provider, on PGlite and PostgreSQL:
// checkout prices the cart on the server and holds its stock; paying makes one order; declining,
// lapsing or replacing a checkout gives the stock back; every refusal changes nothing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { shopper } from '../helpers/shopper.ts';

/** The test provider's form for a guest who pays (or declines) and gives an email. */
const PAID = 'outcome=paid&email=shopper%40example.com';
const DECLINED = 'outcome=failed&email=shopper%40example.com';

forEachBackend('checkout with the test provider', ({ db }) => {
  let app: FastifyInstance;
  let staff: TestUser;
  before(async () => {
    app = await testApp(db());
    staff = await signedIn(app, db(), { staff: true });
  });
  after(async () => {
    await app.close();
  });
  const d = () => db().db;
  const stock = async (id: number) => (await d().selectFrom('products').select('stock_quantity').where('id', '=', id).executeTakeFirstOrThrow()).stock_quantity;
  const checkouts = () => d().selectFrom('checkouts').select(['id', 'status']).orderBy('id').execute();
  const orderCount = async () => (await d().selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;

  test('a guest pays: server-side totals, stock held at checkout, one order, the cart emptied, tracked by number and email', async () => {
    const lamp = await f.product(d(), { name: 'Moon lamp', price: '24.50', weight: '650.00', stock_quantity: 5 });
    const vase = await f.product(d(), { name: 'Spiral vase', price: '12.25', weight: '400.00', stock_quantity: 3 });
    const g = shopper(app);
    await g.add(lamp.id, 2);
    await g.add(vase.id, 1);
    // Whatever totals a client sends are not read.
    const started = await g.checkout({ success_url: 'http://localhost:3000/checkout/success', total: '0.01', email: 'ada@example.com', shipping_address: { name: 'Ada Lovelace', address: '12 St James Sq', city: 'London', postal_code: 'SW1Y', country: 'GB' } });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.match(started.body.checkout_session_id, /^cs_test_/);
    assert.equal(started.body.checkout_url, `http://shop.test/api/payments/test-checkout/${started.body.checkout_session_id}/`);
    assert.equal(started.headers['cache-control'], 'private, no-store');
    assert.deepEqual([await stock(lamp.id), await stock(vase.id)], [3, 2], 'held as soon as the checkout starts');
    const held = await d().selectFrom('checkouts').selectAll().where('public_id', '=', started.body.checkout_session_id).executeTakeFirstOrThrow();
    // 2 × 24.50 + 12.25 = 61.25; under 100.00, so 5.00 + 0.50 per started kg of 1.70 kg = 6.00.
    assert.deepEqual([held.subtotal, held.shipping_cost, held.tax_amount, held.total_amount], ['61.25', '6.00', '0.00', '67.25']);

    const page = await app.inject({ method: 'GET', url: started.body.checkout_url.replace('http://shop.test', ''), headers: { host: 'shop.test' } });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.match(page.body, /Moon lamp/);
    assert.match(page.body, /\$67\.25/);

    const pending = await g.verify(started.body.checkout_session_id);
    assert.deepEqual(pending.body, { status: 'pending', message: 'Payment not completed.' });

    const paid = await g.pay(started.body.checkout_session_id, PAID);
    assert.equal(paid.statusCode, 303);
    assert.equal(paid.headers.location, `http://localhost:3000/checkout/success?session_id=${started.body.checkout_session_id}`);
    const again = await g.pay(started.body.checkout_session_id, PAID);
    assert.equal(again.statusCode, 303, 'paying twice is harmless');
    assert.equal(await orderCount(), 1);

    const verified = await g.verify(started.body.checkout_session_id);
    assert.equal(verified.status, 200);
    assert.equal(verified.body.status, 'success');
    assert.match(verified.body.order_number, /^[0-9A-F]{12}$/);
    assert.equal(verified.body.email, 'ada@example.com');
    assert.deepEqual([await stock(lamp.id), await stock(vase.id)], [3, 2], 'paid: the held stock is sold, not taken twice');
    const cart = await g.call('GET', '/api/cart/');
    assert.deepEqual(cart.body.items, [], 'the bought lines left the cart');

    const order = await d().selectFrom('orders').selectAll().where('id', '=', verified.body.order_id).executeTakeFirstOrThrow();
    assert.equal(order.status, 'processing');
    assert.equal(order.total_amount, '67.25');
    assert.equal(order.shipping_name, 'Ada Lovelace');
    const items = await d().selectFrom('order_items').selectAll().where('order_id', '=', order.id).orderBy('product_id').execute();
    assert.deepEqual(
      items.map((i) => [i.product_name, i.product_sku, i.unit_price, i.quantity, i.total_price, i.total_weight]),
      [
        ['Moon lamp', lamp.sku, '24.50', 2, '49.00', '1300.00'],
        ['Spiral vase', vase.sku, '12.25', 1, '12.25', '400.00'],
      ],
    );
    const payment = await d().selectFrom('payments').selectAll().where('order_id', '=', order.id).executeTakeFirstOrThrow();
    assert.deepEqual([payment.provider, payment.status, payment.amount], ['test', 'completed', '67.25']);

    const tracked = await getJson(app, '/api/orders/track/guest/', { method: 'POST', payload: { order_number: order.order_number.toLowerCase(), email: 'ADA@example.com' } });
    assert.equal(tracked.status, 200);
    assert.equal(tracked.body.status, 'processing');
    assert.deepEqual(tracked.body.items, [
      { product_name: 'Moon lamp', quantity: 2 },
      { product_name: 'Spiral vase', quantity: 1 },
    ]);
    const wrong = await getJson(app, '/api/orders/track/guest/', { method: 'POST', payload: { order_number: order.order_number, email: 'eve@example.com' } });
    assert.deepEqual([wrong.status, wrong.body], [404, { error: 'Order not found. Please check your order number and email.' }]);
    const missing = await getJson(app, '/api/orders/track/guest/', { method: 'POST', payload: { email: 'ada@example.com' } });
    assert.deepEqual([missing.status, missing.body], [400, { error: 'Order number and email are required' }]);
  });

  test('a signed-in customer pays with a promotion code and free shipping from 100.00; the code counts once the order exists', async () => {
    const user = await signedIn(app, db());
    await d().insertInto('addresses').values({ user_id: user.id, address_type: 'shipping', street_address: '1 Main St', city: 'Springfield', state: 'IL', postal_code: '62701', country: 'US', is_default: true }).execute();
    const now = Date.now();
    const promo = await d()
      .insertInto('promotion_codes')
      .values({ code: 'TENOFF', discount_type: 'percentage', discount_value: '10.00', usage_type: 'unlimited', valid_from: new Date(now - 3600_000).toISOString(), valid_until: new Date(now + 3600_000).toISOString() })
      .returning('id')
      .executeTakeFirstOrThrow();
    const printer = await f.product(d(), { price: '60.00', weight: '2500.00', stock_quantity: 4 });
    const s = shopper(app, user.headers);
    await s.add(printer.id, 2);
    const started = await s.checkout({ promotion_code: 'tenoff' });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const held = await d().selectFrom('checkouts').selectAll().where('public_id', '=', started.body.checkout_session_id).executeTakeFirstOrThrow();
    // 120.00 − 10% = 108.00; the item total is at least 100.00, so shipping is free.
    assert.deepEqual([held.subtotal, held.discount_amount, held.shipping_cost, held.total_amount], ['120.00', '12.00', '0.00', '108.00']);
    assert.equal(held.email, user.email);
    const use = await d().selectFrom('promotion_usages').selectAll().where('promotion_id', '=', promo.id).execute();
    assert.deepEqual(use.map((u) => [u.checkout_id, u.order_id, u.discount_amount]), [[held.id, null, '12.00']]);

    assert.equal((await s.pay(started.body.checkout_session_id, PAID)).statusCode, 303);
    const verified = await s.verify(started.body.checkout_session_id);
    const used = await d().selectFrom('promotion_usages').select('order_id').where('promotion_id', '=', promo.id).execute();
    assert.deepEqual(used, [{ order_id: verified.body.order_id }]);

    const mine = await getJson(app, '/api/orders/', { headers: user.headers });
    assert.equal(mine.status, 200);
    assert.equal(mine.body.count, 1);
    assert.equal(mine.body.page_size, 10);
    assert.equal(mine.body.total_pages, 1);
    assert.deepEqual(Object.keys(mine.body.results[0]).sort(), ['created_at', 'fulfillment_method', 'id', 'order_number', 'status', 'status_display', 'total_amount', 'total_items', 'tracking_number', 'updated_at']);
    assert.equal(mine.body.results[0].total_items, 2);
    const detail = await getJson(app, `/api/orders/${verified.body.order_id}/`, { headers: user.headers });
    assert.equal(detail.status, 200);
    assert.equal(detail.body.shipping_city, 'Springfield');
    assert.equal(detail.body.discount_amount, '12.00');
    assert.equal(detail.body.total_weight, 5000);
    assert.deepEqual(
      detail.body.status_history.map((h: { status: string; created_by_name: string }) => [h.status, h.created_by_name]),
      [
        ['processing', 'System'],
        ['pending', 'System'],
      ],
    );
    const other = await signedIn(app, db());
    assert.equal((await getJson(app, `/api/orders/${verified.body.order_id}/`, { headers: other.headers })).status, 403);
    assert.equal((await getJson(app, `/api/orders/track/id/${verified.body.order_id}/`, { headers: other.headers })).status, 404, 'no lookup of strangers’ orders by id');
    assert.equal((await getJson(app, `/api/orders/track/id/${verified.body.order_id}/`, { headers: user.headers })).status, 200);
    assert.equal((await getJson(app, '/api/orders/', { headers: other.headers })).body.count, 0);
    assert.equal((await getJson(app, '/api/orders/', { headers: staff.headers })).body.count, await orderCount(), 'staff see every order');
  });

  test('refusals change nothing: empty cart, sold out, inactive product, bad promotion code, foreign return URL', async () => {
    const before = { checkouts: (await checkouts()).length, orders: await orderCount() };
    const empty = await shopper(app).checkout();
    assert.deepEqual([empty.status, empty.body], [400, { error: 'Cart is empty' }]);

    const scarce = await f.product(d(), { name: 'Rare bust', stock_quantity: 2 });
    const plenty = await f.product(d(), { stock_quantity: 50 });
    const g = shopper(app);
    await g.add(plenty.id, 3);
    await g.add(scarce.id, 2);
    await d().updateTable('products').set({ stock_quantity: 1 }).where('id', '=', scarce.id).execute();
    const short = await g.checkout();
    assert.deepEqual([short.status, short.body], [400, { error: 'Only 1 of "Rare bust" left in stock' }]);
    assert.deepEqual([await stock(plenty.id), await stock(scarce.id)], [50, 1], 'nothing held when one line cannot be');

    await d().updateTable('products').set({ stock_quantity: 5 }).where('id', '=', scarce.id).execute();
    const badCode = await g.checkout({ promotion_code: 'NOPE' });
    assert.deepEqual([badCode.status, badCode.body], [400, { error: 'Invalid promotion code' }]);
    assert.deepEqual([await stock(plenty.id), await stock(scarce.id)], [50, 5]);

    const foreign = await g.checkout({ success_url: 'https://evil.example/steal' });
    assert.deepEqual([foreign.status, foreign.body.errors], [400, { success_url: ["success_url must be on the storefront's origin"] }]);

    await d().updateTable('products').set({ is_active: false }).where('id', '=', scarce.id).execute();
    const gone = await g.checkout();
    assert.deepEqual([gone.status, gone.body], [400, { error: '"Rare bust" is no longer available' }]);
    assert.equal(await stock(plenty.id), 50);
    assert.deepEqual({ checkouts: (await checkouts()).length, orders: await orderCount() }, before);

    const unknown = await g.verify('cs_test_nope');
    assert.deepEqual([unknown.status, unknown.body], [400, { error: 'Invalid payment session ID' }]);
    const noId = await g.call('GET', '/api/payments/verify-checkout-session/');
    assert.deepEqual([noId.status, noId.body], [400, { error: 'Session ID is required' }]);
    assert.equal((await g.pay('cs_test_nope', PAID)).statusCode, 404);
  });

  test('declined, replaced or lapsed checkouts give their stock back; a lapsed one cannot be paid', async () => {
    const item = await f.product(d(), { stock_quantity: 4 });
    const g = shopper(app);
    await g.add(item.id, 3);
    const first = await g.checkout();
    assert.equal(await stock(item.id), 1);
    const declined = await g.pay(first.body.checkout_session_id, DECLINED);
    assert.deepEqual([declined.statusCode, declined.headers.location], [303, 'http://localhost:3000/checkout/cancel']);
    assert.equal(await stock(item.id), 4);
    const failed = await g.verify(first.body.checkout_session_id);
    assert.deepEqual([failed.status, failed.body], [400, { status: 'failed', message: 'Payment failed or session expired.' }]);
    assert.equal((await g.pay(first.body.checkout_session_id, PAID)).statusCode, 400, 'a declined checkout cannot be paid');

    // Starting again replaces the open checkout of the same cart: stock is held once.
    const second = await g.checkout();
    const third = await g.checkout();
    assert.notEqual(second.body.checkout_session_id, third.body.checkout_session_id);
    assert.equal(await stock(item.id), 1);

    // Lapsed: the next checkout anywhere releases it.
    await d().updateTable('checkouts').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('public_id', '=', third.body.checkout_session_id).execute();
    const other = shopper(app);
    // Carts see stock net of what checkouts hold: 1 of 4 is free while the lapsed one holds 3.
    assert.equal((await other.add(item.id, 2)).status, 400);
    await other.add(item.id, 1);
    const taken = await other.checkout();
    assert.equal(taken.status, 200, JSON.stringify(taken.body));
    assert.equal(await stock(item.id), 3, 'the lapsed checkout’s 3 came back before this one took 1');
    assert.equal((await g.verify(third.body.checkout_session_id)).body.status, 'failed');
    const late = await g.pay(third.body.checkout_session_id, PAID);
    assert.deepEqual([late.statusCode, late.json()], [400, { error: 'This checkout has expired' }]);
    assert.equal(await stock(item.id), 3);
  });

  test('Idempotency-Key: the same key gives the same session and holds stock once, also when sent in parallel', async () => {
    const item = await f.product(d(), { stock_quantity: 10 });
    const g = shopper(app);
    await g.add(item.id, 2);
    const key = { 'idempotency-key': 'order-attempt-1' };
    const a = await g.checkout({}, key);
    const b = await g.checkout({}, key);
    assert.equal(a.status, 200);
    assert.deepEqual(b.body, a.body);
    assert.equal(await stock(item.id), 8);

    const h = shopper(app);
    await h.add(item.id, 1);
    const burst = await Promise.all(Array.from({ length: 6 }, () => h.checkout({}, { 'idempotency-key': 'burst' })));
    const ok = burst.filter((r) => r.status === 200);
    assert.ok(ok.length >= 1);
    assert.ok(burst.every((r) => r.status === 200 || r.status === 409), JSON.stringify(burst.map((r) => [r.status, r.body])));
    assert.equal(new Set(ok.map((r) => r.body.checkout_session_id)).size, 1);
    assert.equal(await stock(item.id), 7);
  });
});

forEachBackend('checkout under contention', ({ backend, db }) => {
  let app: FastifyInstance;
  before(async () => {
    app = await testApp(db());
  });
  after(async () => {
    await app.close();
  });

  test('200 shoppers check out the last 10 prints at once: exactly 10 paid orders, stock 0, never below', async () => {
    const n = backend === 'postgres' ? 200 : 60;
    const item = await f.product(db().db, { stock_quantity: 10 });
    const shoppers = Array.from({ length: n }, () => shopper(app));
    for (const s of shoppers) assert.equal((await s.add(item.id, 1)).status, 200);
    const started = await Promise.all(shoppers.map((s) => s.checkout()));
    const ok = started.filter((r) => r.status === 200);
    assert.equal(ok.length, 10, JSON.stringify(started.filter((r) => r.status !== 200 && r.status !== 400).map((r) => r.body)));
    assert.ok(started.every((r) => r.status === 200 || (r.status === 400 && /out of stock/.test(r.body.error))));
    const paid = await Promise.all(ok.map((r, i) => shoppers[i]!.pay(r.body.checkout_session_id, PAID)));
    assert.ok(paid.every((r) => r.statusCode === 303));
    const orders = await db().db.selectFrom('orders').select(['id', 'status']).execute();
    assert.equal(orders.length, 10);
    assert.ok(orders.every((o) => o.status === 'processing'));
    const left = await db().db.selectFrom('products').select('stock_quantity').where('id', '=', item.id).executeTakeFirstOrThrow();
    assert.equal(left.stock_quantity, 0);
  });

  test('a promotion code with one use left, used by 20 parallel checkouts, is used once', async () => {
    const now = Date.now();
    const code = await db()
      .db.insertInto('promotion_codes')
      .values({ code: 'LASTONE', discount_type: 'fixed', discount_value: '5.00', usage_type: 'limited', usage_limit: 1, usage_limit_per_user: 1, valid_from: new Date(now - 60_000).toISOString(), valid_until: new Date(now + 3600_000).toISOString() })
      .returning('id')
      .executeTakeFirstOrThrow();
    const item = await f.product(db().db, { stock_quantity: 100 });
    const shoppers = Array.from({ length: 20 }, () => shopper(app));
    for (const s of shoppers) await s.add(item.id, 1);
    const started = await Promise.all(shoppers.map((s) => s.checkout({ promotion_code: 'lastone' })));
    assert.equal(started.filter((r) => r.status === 200).length, 1, JSON.stringify(started.map((r) => r.body)));
    assert.ok(started.every((r) => r.status === 200 || r.status === 400));
    const uses = await db().db.selectFrom('promotion_usages').select('id').where('promotion_id', '=', code.id).execute();
    assert.equal(uses.length, 1);
    const left = await db().db.selectFrom('products').select('stock_quantity').where('id', '=', item.id).executeTakeFirstOrThrow();
    assert.equal(left.stock_quantity, 99, 'the 19 refused checkouts hold nothing');
  });
});
