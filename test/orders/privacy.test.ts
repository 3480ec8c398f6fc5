// What a customer sees of other people in their orders (issue 20): the staff member who moved an
// order is named, never shown by email, also when their name is blank; staff still see who it was.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { insertOrder } from '../../src/modules/orders/orders.repository.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

forEachBackend('order privacy', ({ db }) => {
  let app: FastifyInstance;
  let nameless: TestUser;
  let named: TestUser;
  let customer: TestUser;
  before(async () => {
    app = await testApp(db());
    nameless = await signedIn(app, db(), { staff: true, first_name: '', last_name: '' });
    named = await signedIn(app, db(), { staff: true, first_name: 'Sam', last_name: 'Staff' });
    customer = await signedIn(app, db());
  });
  after(async () => {
    await app.close();
  });
  const d = () => db().db;

  test('a staff member with a blank name shows as "Staff" to the customer, never by email; staff see who it was', async () => {
    const p = await f.product(d());
    const id = await d().transaction().execute((trx) =>
      insertOrder(trx, {
        order: { user_id: customer.id, session_key: null, checkout_id: null, status: 'processing', subtotal: '10.00', total_amount: '10.00', promotion_id: null, shipping_email: customer.email, shipping_name: 'Buyer' },
        lines: [{ product_id: p.id, name: p.name, sku: p.sku, price: '10.00', weight: '100.00', quantity: 1 }],
        history: [{ status: 'pending', notes: 'Order placed' }, { status: 'processing', notes: '' }],
      }),
    );
    assert.equal((await getJson(app, `/api/orders/${id}/status/`, { method: 'PATCH', payload: { status: 'shipped', notes: 'On its way' }, headers: nameless.headers })).status, 200);
    assert.equal((await getJson(app, `/api/orders/${id}/status/`, { method: 'PATCH', payload: { status: 'delivered' }, headers: named.headers })).status, 200);

    const mine = await getJson(app, `/api/orders/${id}/`, { headers: customer.headers });
    assert.equal(mine.status, 200);
    const names = mine.body.status_history.map((h: { status: string; created_by_name: string }) => [h.status, h.created_by_name]);
    assert.deepEqual(names, [['delivered', 'Sam Staff'], ['shipped', 'Staff'], ['processing', 'System'], ['pending', 'System']]);
    const text = JSON.stringify(mine.body);
    for (const staff of [nameless, named]) assert.ok(!text.includes(staff.email), `the customer's order does not show ${staff.email}`);

    const asStaff = await getJson(app, `/api/orders/${id}/`, { headers: named.headers });
    assert.equal(asStaff.body.status_history[1].created_by_name, nameless.email, 'staff still see which colleague it was');
  });
});
