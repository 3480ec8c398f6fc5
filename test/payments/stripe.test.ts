// Checkout through Stripe with no network: the official `stripe` package talks to a small Stripe
// API double on loopback (the requests it sends are checked), and webhooks are signed with the
// package's own test-header helper and verified by its own code.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import Stripe from 'stripe';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

const WEBHOOK_SECRET = 'whsec_test_secret_for_signing_only';

interface FakeSession {
  id: string;
  object: 'checkout.session';
  url: string;
  status: 'open' | 'complete' | 'expired';
  payment_status: 'unpaid' | 'paid';
  payment_intent: string | null;
  amount_total: number;
  customer_email: string | null;
  customer_details: unknown;
  metadata: Record<string, string>;
}

/** What the Stripe API does for the calls the shop makes; `status` forces errors. */
function stripeDouble() {
  const sessions = new Map<string, FakeSession>();
  const requests: { method: string; path: string; form: URLSearchParams; idempotencyKey?: string }[] = [];
  let n = 0;
  let failWith: number | undefined;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const path = req.url!.split('?')[0]!;
      requests.push({ method: req.method!, path, form, idempotencyKey: req.headers['idempotency-key'] as string | undefined });
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${n}` });
        res.end(JSON.stringify(json));
      };
      if (failWith) return send(failWith, { error: { type: failWith === 401 ? 'invalid_request_error' : 'api_error', message: 'Invalid API Key provided' } });
      if (req.method === 'POST' && path === '/v1/coupons') return send(200, { id: `coupon_${++n}`, object: 'coupon', amount_off: Number(form.get('amount_off')) });
      if (req.method === 'POST' && path === '/v1/checkout/sessions') {
        let total = 0;
        for (let i = 0; form.has(`line_items[${i}][quantity]`); i++) total += Number(form.get(`line_items[${i}][price_data][unit_amount]`)) * Number(form.get(`line_items[${i}][quantity]`));
        const id = `cs_test_${++n}`;
        const metadata = Object.fromEntries([...form].filter(([k]) => k.startsWith('metadata[')).map(([k, v]) => [k.slice(9, -1), v]));
        const s: FakeSession = { id, object: 'checkout.session', url: `https://checkout.stripe.com/c/pay/${id}`, status: 'open', payment_status: 'unpaid', payment_intent: null, amount_total: total, customer_email: form.get('customer_email'), customer_details: null, metadata };
        sessions.set(id, s);
        return send(200, s);
      }
      const m = /^\/v1\/checkout\/sessions\/([^/]+)(\/expire)?$/.exec(path);
      const s = m && sessions.get(m[1]!);
      if (!s) return send(404, { error: { type: 'invalid_request_error', message: 'No such checkout.session' } });
      if (m[2]) s.status = 'expired';
      return send(200, s);
    });
  });
  return {
    sessions,
    requests,
    fail: (status?: number) => (failWith = status),
    listen: () => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The session as Stripe sends it in a webhook once paid. */
function paid(s: FakeSession, intent: string): FakeSession {
  return {
    ...s,
    status: 'complete',
    payment_status: 'paid',
    payment_intent: intent,
    customer_details: { email: 'grace@example.com', name: 'Grace Hopper', phone: null, address: { line1: '1 Navy Way', line2: null, city: 'Arlington', state: 'VA', postal_code: '22201', country: 'US' } },
  };
}

forEachBackend('payments through Stripe', ({ db }) => {
  const fake = stripeDouble();
  const signer = new Stripe('sk_test_signing_only');
  let app: FastifyInstance;
  let fakePort = 0;
  before(async () => {
    const port = (fakePort = await fake.listen());
    app = await testApp(db(), { STRIPE_SECRET_KEY: 'sk_test_123', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET }, { stripeApi: { host: '127.0.0.1', port, protocol: 'http' } });
  });
  after(async () => {
    await app.close();
    await fake.close();
  });
  const d = () => db().db;
  const stock = async (id: number) => (await d().selectFrom('products').select('stock_quantity').where('id', '=', id).executeTakeFirstOrThrow()).stock_quantity;
  const orders = () => d().selectFrom('orders').selectAll().orderBy('id').execute();

  let nextEvent = 0;
  const event = (type: string, object: unknown, id = `evt_${++nextEvent}_${Date.now()}`) => JSON.stringify({ id, object: 'event', api_version: '2024-06-20', created: 1, type, data: { object } });
  const deliver = (payload: string, signature = signer.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET })) =>
    app.inject({ method: 'POST', url: '/api/payments/stripe-webhook/', headers: { 'content-type': 'application/json', 'stripe-signature': signature }, payload });

  async function checkout(productId: number, quantity: number) {
    let cookie = '';
    const add = await app.inject({ method: 'POST', url: '/api/cart/add/', payload: { product_id: productId, quantity } });
    cookie = String(add.headers['set-cookie']).split(';')[0]!;
    const r = await getJson(app, '/api/payments/create-checkout-session/', { method: 'POST', payload: {}, headers: { cookie } });
    return { ...r, cookie };
  }

  test('a checkout opens a Stripe Checkout Session priced in cents, with shipping, metadata, expiry and an idempotency key', async () => {
    const p = await f.product(d(), { name: 'Dragon', price: '19.99', weight: '300.00', stock_quantity: 5 });
    const r = await checkout(p.id, 2);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(r.body.checkout_url, /^https:\/\/checkout\.stripe\.com\//, 'the storefront only follows Stripe URLs');
    const sent = fake.requests.filter((q) => q.path === '/v1/checkout/sessions').at(-1)!;
    assert.equal(sent.form.get('mode'), 'payment');
    assert.equal(sent.form.get('line_items[0][price_data][unit_amount]'), '1999');
    assert.equal(sent.form.get('line_items[0][quantity]'), '2');
    assert.equal(sent.form.get('line_items[1][price_data][product_data][name]'), 'Shipping');
    assert.equal(sent.form.get('line_items[1][price_data][unit_amount]'), '550');
    assert.equal(sent.form.get('success_url'), 'http://localhost:3000/checkout/success?session_id={CHECKOUT_SESSION_ID}');
    assert.equal(sent.form.get('shipping_address_collection[allowed_countries][0]'), 'US');
    assert.ok(Number(sent.form.get('expires_at')) > Date.now() / 1000 + 3500);
    // Unique beyond this database: another deployment (or test schema) on the same Stripe account
    // has its own checkout 1, and Stripe keeps a key for 24 hours.
    assert.match(sent.idempotencyKey ?? '', /^pasargad-checkout-\d+-[0-9a-f]{16}$/);
    assert.equal(fake.sessions.get(r.body.checkout_session_id)!.amount_total, 4548);
    assert.equal(await stock(p.id), 3);
  });

  test('webhooks: a bad or missing signature is 400 and changes nothing; a paid session makes one order however often it is reported', async () => {
    const p = await f.product(d(), { stock_quantity: 4 });
    const r = await checkout(p.id, 1);
    const session = paid(fake.sessions.get(r.body.checkout_session_id)!, 'pi_test_one');
    const payload = event('checkout.session.completed', session, 'evt_completed_one');
    const before = (await orders()).length;

    const forged = await deliver(payload, signer.webhooks.generateTestHeaderString({ payload, secret: 'whsec_someone_else' }));
    assert.deepEqual([forged.statusCode, forged.body], [400, '']);
    const unsigned = await app.inject({ method: 'POST', url: '/api/payments/stripe-webhook/', headers: { 'content-type': 'application/json' }, payload });
    assert.equal(unsigned.statusCode, 400);
    const tampered = await deliver(payload.replace('pi_test_one', 'pi_test_two'), signer.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }));
    assert.equal(tampered.statusCode, 400);
    assert.equal((await orders()).length, before);

    const replies = await Promise.all([deliver(payload), deliver(payload), deliver(payload)]);
    assert.ok(replies.every((x) => x.statusCode === 200 && x.body === ''));
    // Stripe may also send the same payment under another event.
    assert.equal((await deliver(event('checkout.session.async_payment_succeeded', session))).statusCode, 200);
    const made = (await orders()).slice(before);
    assert.equal(made.length, 1);
    assert.deepEqual([made[0]!.status, made[0]!.shipping_name, made[0]!.shipping_city, made[0]!.shipping_phone, made[0]!.shipping_email], ['processing', 'Grace Hopper', 'Arlington', '', 'grace@example.com']);
    assert.equal(await stock(p.id), 3);
    const seen = await d().selectFrom('payment_events').select('event_id').where('event_id', '=', 'evt_completed_one').execute();
    assert.equal(seen.length, 1);

    const v = await getJson(app, `/api/payments/verify-checkout-session/?session_id=${r.body.checkout_session_id}`);
    assert.deepEqual(v.body, { status: 'success', order_id: made[0]!.id, order_number: made[0]!.order_number, email: 'grace@example.com' });

    // Out of order: the expiry notice for a session already paid changes nothing.
    assert.equal((await deliver(event('checkout.session.expired', { ...session, status: 'expired' }))).statusCode, 200);
    assert.equal(await stock(p.id), 3);

    // A declined card is retried on the same payment intent, and events come in any order: a
    // failure reported after the payment succeeded leaves the paid order alone.
    assert.equal((await deliver(event('payment_intent.payment_failed', { id: 'pi_test_one', object: 'payment_intent' }))).statusCode, 200);
    const kept = await d().selectFrom('orders').select('status').where('id', '=', made[0]!.id).executeTakeFirstOrThrow();
    assert.equal(kept.status, 'processing');
    assert.equal(await stock(p.id), 3);
    const payment = await d().selectFrom('payments').select('status').where('order_id', '=', made[0]!.id).executeTakeFirstOrThrow();
    assert.equal(payment.status, 'completed');
  });

  test('webhooks: a malformed request (Content-Length that does not match) is the wrapped 400, not `null`', async () => {
    // Found by the fuzzing suite: the route's `null` 400 schema serialised the error handler's body to `null`.
    const payload = event('checkout.session.completed', {});
    const r = await app.inject({ method: 'POST', url: '/api/payments/stripe-webhook/', headers: { 'content-type': 'application/json', 'content-length': String(payload.length + 5), 'stripe-signature': 't=1,v1=x' }, payload });
    assert.equal(r.statusCode, 400);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(r.json(), { error: true, message: 'Request body size did not match Content-Length.', status_code: 400, code: 'bad_request' });
  });

  test('expiry releases the stock; a payment that lands after it takes the stock again, or records a refund due when it is gone', async () => {
    const p = await f.product(d(), { stock_quantity: 2 });
    const one = await checkout(p.id, 2);
    assert.equal(await stock(p.id), 0);
    const s1 = fake.sessions.get(one.body.checkout_session_id)!;
    assert.equal((await deliver(event('checkout.session.expired', { ...s1, status: 'expired' }))).statusCode, 200);
    assert.equal(await stock(p.id), 2);
    assert.equal((await deliver(event('checkout.session.completed', paid(s1, 'pi_test_late')))).statusCode, 200);
    const late = await d().selectFrom('orders').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
    assert.equal(late.status, 'processing', 'the stock was still there: taken again');
    assert.equal(await stock(p.id), 0);

    await d().updateTable('products').set({ stock_quantity: 1 }).where('id', '=', p.id).execute();
    const two = await checkout(p.id, 1);
    const s2 = fake.sessions.get(two.body.checkout_session_id)!;
    await deliver(event('checkout.session.expired', { ...s2, status: 'expired' }));
    await d().updateTable('products').set({ stock_quantity: 0 }).where('id', '=', p.id).execute();
    await deliver(event('checkout.session.completed', paid(s2, 'pi_test_too_late')));
    const refund = await d().selectFrom('orders').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
    assert.equal(refund.status, 'cancelled');
    const note = await d().selectFrom('order_status_history').select('notes').where('order_id', '=', refund.id).where('status', '=', 'cancelled').executeTakeFirstOrThrow();
    assert.match(note.notes, /refund due/);
    assert.equal(await stock(p.id), 0, 'never below zero');
  });

  test('verify fulfils a paid session itself when the webhook is late; a Stripe outage is a 503 that holds nothing', async () => {
    const p = await f.product(d(), { stock_quantity: 3 });
    const r = await checkout(p.id, 1);
    fake.sessions.set(r.body.checkout_session_id, paid(fake.sessions.get(r.body.checkout_session_id)!, 'pi_test_polled'));
    const v = await getJson(app, `/api/payments/verify-checkout-session/?session_id=${r.body.checkout_session_id}`);
    assert.equal(v.body.status, 'success');
    assert.equal((await deliver(event('checkout.session.completed', fake.sessions.get(r.body.checkout_session_id)!))).statusCode, 200);
    assert.equal((await d().selectFrom('orders').select('id').where('id', '=', v.body.order_id).execute()).length, 1);
    assert.equal((await d().selectFrom('payments').select('id').where('payment_intent', '=', 'pi_test_polled').execute()).length, 1, 'one order, one payment');

    fake.fail(401);
    try {
      const down = await checkout(p.id, 1);
      assert.deepEqual([down.status, down.body], [503, { error: 'Payment configuration error. Please contact support.' }]);
      assert.equal(await stock(p.id), 2, 'the hold was given back');
    } finally {
      fake.fail(undefined);
    }
  });

  test('a paid amount that differs from the checkout total: the payment records what was paid, the order keeps its arithmetic and is held for staff', async () => {
    const staff = await signedIn(app, db(), { staff: true });
    // order.paid is what queues the "Your order is confirmed" email.
    const confirmed: number[] = [];
    const off = app.events.on('order.paid', ({ id }) => void confirmed.push(id));
    const p = await f.product(d(), { price: '20.00', stock_quantity: 5 });
    const r = await checkout(p.id, 1);
    const s = fake.sessions.get(r.body.checkout_session_id)!;
    const short = { ...paid(s, 'pi_test_short'), amount_total: s.amount_total - 700 };
    assert.equal((await deliver(event('checkout.session.completed', short))).statusCode, 200);
    const o = await d().selectFrom('orders').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
    assert.ok(!confirmed.includes(o.id), 'a held order is not confirmed to the customer (its total is not what was charged)');
    assert.deepEqual([o.subtotal, o.discount_amount, o.shipping_cost, o.tax_amount, o.total_amount], ['20.00', '0.00', '5.50', '0.00', '25.50'], 'the order is what was bought');
    const pay = await d().selectFrom('payments').select(['amount', 'status']).where('order_id', '=', o.id).executeTakeFirstOrThrow();
    assert.deepEqual([pay.amount, pay.status], ['18.50', 'completed'], 'the payment is what was paid');
    assert.equal(o.status, 'pending', 'not processed until staff look at it');
    const held = await getJson(app, '/api/orders/?on_hold=true', { headers: staff.headers });
    assert.equal(held.status, 200, JSON.stringify(held.body));
    assert.deepEqual(held.body.results.map((x: { id: number }) => x.id), [o.id]);
    const detail = await getJson(app, `/api/orders/${o.id}/`, { headers: staff.headers });
    assert.deepEqual([detail.body.on_hold, detail.body.amount_paid, detail.body.total_amount], [true, '18.50', '25.50']);
    assert.match(detail.body.status_history[0].notes, /18\.50.*25\.50/);
    const clear = await getJson(app, '/api/orders/?on_hold=false', { headers: staff.headers });
    assert.ok(!clear.body.results.some((x: { id: number }) => x.id === o.id));
    // Staff review it and move it on: no longer held.
    assert.equal((await getJson(app, `/api/orders/${o.id}/status/`, { method: 'PATCH', payload: { status: 'processing', notes: 'Customer paid the rest by phone' }, headers: staff.headers })).status, 200);
    assert.equal((await getJson(app, '/api/orders/?on_hold=true', { headers: staff.headers })).body.count, 0);
    assert.deepEqual(confirmed.filter((id) => id === o.id), [o.id], 'confirmed once staff accept it');
    off();

    // The right number in another currency is not the right amount either.
    const r2 = await checkout(p.id, 1);
    const s2 = fake.sessions.get(r2.body.checkout_session_id)!;
    assert.equal((await deliver(event('checkout.session.completed', { ...paid(s2, 'pi_test_eur'), currency: 'eur' }))).statusCode, 200);
    const o2 = await d().selectFrom('orders').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
    assert.deepEqual([o2.status, o2.on_hold, o2.total_amount], ['pending', true, '25.50']);
    assert.equal((await d().selectFrom('payments').select('currency').where('order_id', '=', o2.id).executeTakeFirstOrThrow()).currency, 'eur');
    // Customers' lists are the contract's: the staff filter is not theirs.
    const customer = await signedIn(app, db());
    assert.equal((await getJson(app, '/api/orders/?on_hold=true', { headers: customer.headers })).status, 200);
    assert.equal((await getJson(app, '/api/orders/?on_hold=maybe', { headers: staff.headers })).status, 400);
  });

  test('webhooks: a timestamp too far in the future is refused like one too far in the past', async () => {
    const p = await f.product(d(), { stock_quantity: 5 });
    const r = await checkout(p.id, 1);
    const payload = event('checkout.session.completed', paid(fake.sessions.get(r.body.checkout_session_id)!, 'pi_test_future'));
    const before = (await orders()).length;
    const now = Math.floor(Date.now() / 1000);
    for (const timestamp of [now + 3600, now - 3600]) {
      const x = await deliver(payload, signer.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET, timestamp }));
      assert.equal(x.statusCode, 400, `timestamp ${timestamp - now} s from now`);
    }
    assert.equal((await orders()).length, before);
    // A second `t=` does not hide the one Stripe's check reads (the last): refused all the same.
    const hidden = `t=${now},${signer.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET, timestamp: now + 3600 })}`;
    assert.equal((await deliver(payload, hidden)).statusCode, 400, 'a future timestamp behind an earlier t= is refused');
    assert.equal((await orders()).length, before);
    // Within the tolerance (clocks a little apart) it is taken.
    assert.equal((await deliver(payload, signer.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET, timestamp: now + 60 }))).statusCode, 200);
    assert.equal((await orders()).length, before + 1);
  });


  test('a zero-decimal currency (CURRENCY=jpy): Stripe is sent whole yen, not hundredths, and the yen it reports match the order', async () => {
    const yen = await testApp(db(), { STRIPE_SECRET_KEY: 'sk_test_123', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, CURRENCY: 'jpy', SHIPPING_FREE_FROM: '1000.00' }, { stripeApi: { host: '127.0.0.1', port: fakePort, protocol: 'http' } });
    try {
      const p = await f.product(d(), { price: '1500.00', stock_quantity: 5 });
      const promo = await d()
        .insertInto('promotion_codes')
        .values({ code: `YEN${Date.now()}`, discount_type: 'fixed', discount_value: '200.00', usage_type: 'unlimited', valid_from: new Date(Date.now() - 60_000).toISOString(), valid_until: new Date(Date.now() + 3_600_000).toISOString() })
        .returningAll()
        .executeTakeFirstOrThrow();
      const add = await yen.inject({ method: 'POST', url: '/api/cart/add/', payload: { product_id: p.id, quantity: 2 } });
      const cookie = String(add.headers['set-cookie']).split(';')[0]!;
      const r = await getJson(yen, '/api/payments/create-checkout-session/', { method: 'POST', payload: { promotion_code: promo.code }, headers: { cookie } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const sent = fake.requests.filter((q) => q.path === '/v1/checkout/sessions').at(-1)!;
      assert.equal(sent.form.get('currency') ?? sent.form.get('line_items[0][price_data][currency]'), 'jpy');
      assert.equal(sent.form.get('line_items[0][price_data][unit_amount]'), '1500', 'JPY has no minor unit: 1500 yen is 1500');
      const coupon = fake.requests.filter((q) => q.path === '/v1/coupons').at(-1)!;
      assert.equal(coupon.form.get('amount_off'), '200');
      const s = fake.sessions.get(r.body.checkout_session_id)!;
      assert.equal(s.amount_total, 3000);
      const payload = event('checkout.session.completed', { ...paid(s, 'pi_test_yen'), amount_total: 3000 - 200, currency: 'jpy' });
      const x = await yen.inject({ method: 'POST', url: '/api/payments/stripe-webhook/', headers: { 'content-type': 'application/json', 'stripe-signature': signer.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }) }, payload });
      assert.equal(x.statusCode, 200);
      const o = await d().selectFrom('orders').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
      assert.deepEqual([o.status, o.on_hold, o.total_amount, o.amount_paid], ['processing', false, '2800.00', '2800.00'], 'paid in full');
      const pay = await d().selectFrom('payments').select(['amount', 'currency']).where('order_id', '=', o.id).executeTakeFirstOrThrow();
      assert.deepEqual([pay.amount, pay.currency], ['2800.00', 'jpy']);
    } finally {
      await yen.close();
    }
  });
});
