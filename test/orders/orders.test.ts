// Orders after the sale: staff move them along the contract's transitions (with their side
// effects), illegal moves change nothing, filters and statistics, public tracking.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../src/db/database.ts';
import type { OrderStatus } from '../../src/db/schema.ts';
import { insertOrder } from '../../src/modules/orders/orders.repository.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

/** An order placed and paid, as a checkout leaves it (the stock already taken). */
async function placed(db: Db, userId: number | null, items: { id: number; name: string; sku: string; quantity: number; price?: string }[], o: { status?: OrderStatus; total?: string; email?: string } = {}) {
  return db.transaction().execute(async (trx) => {
    const id = await insertOrder(trx, {
      order: { user_id: userId, session_key: null, checkout_id: null, status: o.status ?? 'processing', subtotal: o.total ?? '20.00', total_amount: o.total ?? '20.00', promotion_id: null, shipping_email: o.email ?? 'buyer@example.com', shipping_name: 'Buyer' },
      lines: items.map((i) => ({ product_id: i.id, name: i.name, sku: i.sku, price: i.price ?? '10.00', weight: '100.00', quantity: i.quantity })),
      history: [{ status: 'pending', notes: 'Order placed' }, ...(o.status === 'pending' ? [] : [{ status: (o.status ?? 'processing') as OrderStatus, notes: '' }])],
    });
    return trx.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  });
}

forEachBackend('orders', ({ db }) => {
  let app: FastifyInstance;
  let staff: TestUser;
  let customer: TestUser;
  before(async () => {
    app = await testApp(db());
    staff = await signedIn(app, db(), { staff: true, first_name: 'Sam', last_name: 'Staff' });
    customer = await signedIn(app, db());
  });
  after(async () => {
    await app.close();
  });
  const d = () => db().db;
  const stock = async (id: number) => (await d().selectFrom('products').select('stock_quantity').where('id', '=', id).executeTakeFirstOrThrow()).stock_quantity;
  const move = (id: number, body: object, who: TestUser | null = staff, method: 'PATCH' | 'PUT' = 'PATCH') =>
    getJson(app, `/api/orders/${id}/status/`, { method, payload: body, headers: who ? who.headers : {} });

  test('staff move an order along its transitions: ship with a tracking number, deliver, refund; times stamped once; history newest first', async () => {
    const p = await f.product(d(), { stock_quantity: 8 });
    const order = await placed(d(), customer.id, [{ id: p.id, name: p.name, sku: p.sku, quantity: 2 }]);
    const shipped = await move(order.id, { status: 'shipped', notes: 'Left the workshop', tracking_number: '1Z999AA10123456784', estimated_delivery: '2026-12-04' });
    assert.equal(shipped.status, 200, JSON.stringify(shipped.body));
    assert.equal(shipped.body.status, 'shipped');
    assert.equal(shipped.body.status_display, 'Shipped');
    assert.equal(shipped.body.tracking_number, '1Z999AA10123456784');
    assert.equal(shipped.body.estimated_delivery, '2026-12-04');
    assert.ok(shipped.body.shipped_at);
    assert.deepEqual(shipped.body.status_history[0], { ...shipped.body.status_history[0], status: 'shipped', notes: 'Left the workshop', created_by: staff.id, created_by_name: 'Sam Staff' });

    const tracked = await getJson(app, '/api/orders/track/1Z999AA10123456784/');
    assert.equal(tracked.status, 200);
    assert.deepEqual(Object.keys(tracked.body).sort(), ['created_at', 'delivered_at', 'estimated_delivery', 'items', 'order_number', 'shipped_at', 'status', 'status_display', 'tracking_number']);
    assert.equal(tracked.body.status, 'shipped');
    const unknown = await getJson(app, '/api/orders/track/NOPE123/');
    assert.deepEqual([unknown.status, unknown.body.message], [404, 'Order not found with this tracking number']);

    const delivered = await move(order.id, { status: 'delivered' }, staff, 'PUT');
    assert.equal(delivered.body.status, 'delivered');
    assert.ok(delivered.body.delivered_at);
    assert.equal(delivered.body.shipped_at, shipped.body.shipped_at);
    const refunded = await move(order.id, { status: 'refunded', notes: 'Broken in transit' });
    assert.equal(refunded.body.status, 'refunded');
    assert.equal(await stock(p.id), 8, 'a refund does not restock (§3)');
    assert.deepEqual(
      refunded.body.status_history.map((h: { status: string }) => h.status),
      ['refunded', 'delivered', 'shipped', 'processing', 'pending'],
    );
  });

  test('illegal and unknown transitions are 400 and change nothing; customers and strangers cannot move orders', async () => {
    const order = await placed(d(), customer.id, []);
    const illegal = await move(order.id, { status: 'delivered' });
    assert.equal(illegal.status, 400);
    assert.deepEqual(illegal.body.errors, { status: ["Cannot transition from 'processing' to 'delivered'"] });
    const unknown = await move(order.id, { status: 'zzz' });
    assert.deepEqual([unknown.status, unknown.body.errors], [400, { status: ['"zzz" is not a valid choice.'] }]);
    const same = await move(order.id, { status: 'processing' });
    assert.equal(same.status, 400);
    const nothing = await move(order.id, {}, staff, 'PUT');
    assert.equal(nothing.status, 200, 'PUT without a status changes nothing');
    assert.equal((await move(order.id, { status: 'shipped' }, customer)).status, 403);
    assert.equal((await move(order.id, { status: 'shipped' }, null)).status, 401);
    assert.equal((await move(999_999, { status: 'shipped' })).status, 404);
    const row = await d().selectFrom('orders').selectAll().where('id', '=', order.id).executeTakeFirstOrThrow();
    assert.equal(row.status, 'processing');
    const history = await d().selectFrom('order_status_history').select('status').where('order_id', '=', order.id).execute();
    assert.equal(history.length, 2);
  });

  test('cancelling restocks; reopening takes the stock again, or is refused when it is gone', async () => {
    const p = await f.product(d(), { stock_quantity: 10 });
    const order = await placed(d(), customer.id, [{ id: p.id, name: p.name, sku: p.sku, quantity: 2 }]);
    assert.equal((await move(order.id, { status: 'cancelled' })).body.status, 'cancelled');
    assert.equal(await stock(p.id), 12, 'restocked (observed 10 → 12 in the original)');
    assert.equal((await move(order.id, { status: 'pending' })).body.status, 'pending');
    assert.equal(await stock(p.id), 10);
    assert.equal((await move(order.id, { status: 'cancelled' })).status, 200);
    await d().updateTable('products').set({ stock_quantity: 1 }).where('id', '=', p.id).execute();
    const refused = await move(order.id, { status: 'pending' });
    assert.equal(refused.status, 400);
    assert.match(refused.body.errors.status[0], /only 1 of/);
    assert.equal(await stock(p.id), 1);
    assert.equal((await d().selectFrom('orders').select('status').where('id', '=', order.id).executeTakeFirstOrThrow()).status, 'cancelled');
  });

  test('the order list: own orders only, filters, ordering, the orders paginator, bad filters are 400', async () => {
    const buyer = await signedIn(app, db());
    const a = await placed(d(), buyer.id, [], { total: '15.00', email: 'first@example.com' });
    const b = await placed(d(), buyer.id, [], { total: '150.00', status: 'pending' });
    await placed(d(), customer.id, [], { total: '99.00' });
    const list = (query: string, who: TestUser = buyer) => getJson(app, `/api/orders/${query}`, { headers: who.headers });
    assert.deepEqual((await list('')).body.results.map((o: { id: number }) => o.id), [b.id, a.id]);
    assert.deepEqual((await list('?status=pending')).body.results.map((o: { id: number }) => o.id), [b.id]);
    assert.deepEqual((await list('?status=pending&status=processing')).body.count, 2);
    assert.deepEqual((await list('?min_total=100')).body.results.map((o: { id: number }) => o.id), [b.id]);
    assert.deepEqual((await list('?ordering=total_amount')).body.results.map((o: { id: number }) => o.id), [a.id, b.id]);
    assert.deepEqual((await list('?search=FIRST@')).body.results.map((o: { id: number }) => o.id), [a.id]);
    assert.deepEqual((await list(`?search=${b.order_number}`)).body.results.map((o: { id: number }) => o.id), [b.id]);
    const paged = await list('?page_size=1&page=2');
    assert.deepEqual([paged.body.count, paged.body.page_size, paged.body.total_pages, paged.body.results.length], [2, 1, 2, 1]);
    assert.match(paged.body.previous, /page_size=1/);
    const bad = await list('?status=foo');
    assert.deepEqual([bad.status, bad.body.errors], [400, { status: ['Select a valid choice. foo is not one of the available choices.'] }]);
    assert.equal((await list('?created_after=yesterday')).status, 400);
    assert.equal((await list('?min_total=abc')).status, 400);
    assert.equal((await list('?page=9')).status, 404);
    assert.equal((await getJson(app, '/api/orders/')).status, 401);
  });

  test('statistics for staff: counts, revenue of paid orders, per status and day', async () => {
    const s = await getJson(app, '/api/orders/statistics/?days=30', { headers: staff.headers });
    assert.equal(s.status, 200);
    const rows = await d().selectFrom('orders').select(['status', 'total_amount']).execute();
    assert.equal(s.body.total_orders, rows.length);
    const paid = rows.filter((r) => !['pending', 'cancelled', 'refunded'].includes(r.status));
    const revenue = paid.reduce((sum, r) => sum + Math.round(Number(r.total_amount) * 100), 0) / 100;
    assert.equal(s.body.total_revenue, revenue);
    assert.equal(s.body.average_order_value, paid.length ? Math.round((revenue / paid.length) * 100) / 100 : 0);
    assert.equal(s.body.orders_by_status.reduce((n: number, r: { count: number }) => n + r.count, 0), rows.length);
    assert.match(s.body.orders_by_day[0].day, /^\d{4}-\d{2}-\d{2}$/);
    assert.equal((await getJson(app, '/api/orders/statistics/', { headers: customer.headers })).status, 403);
    assert.equal((await getJson(app, '/api/orders/statistics/?days=0', { headers: staff.headers })).status, 400);
  });
});
