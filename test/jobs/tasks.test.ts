// The tasks, end to end: emails go over real SMTP to an in-test server (smtp-server) and are read
// back; each scheduled task does its work once however often it runs.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { SmtpMailer } from '../../src/infra/email/mailer.ts';
import { taskHandlers } from '../../src/infra/jobs/handlers.ts';
import type { OrderStatus } from '../../src/db/schema.ts';
import { insertOrder } from '../../src/modules/orders/orders.repository.ts';
import { runJobs, type RunningJobs } from '../../src/infra/jobs/runtime.ts';
import type { Handlers } from '../../src/infra/jobs/queue.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { smtpSink } from '../helpers/smtp.ts';

async function until(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting until ${String(check).replace(/\s+/g, ' ')}`);
    await sleep(25);
  }
}

forEachBackend('tasks and email', ({ backend, db }) => {
  let app: FastifyInstance;
  let sink: Awaited<ReturnType<typeof smtpSink>>;
  let staff: TestUser;
  let handlers: Handlers;
  let mailer: SmtpMailer;
  before(async () => {
    sink = await smtpSink();
    app = await testApp(db(), { EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(sink.port), DEFAULT_FROM_EMAIL: 'Pasargad Prints <shop@pasargad.test>', LOW_STOCK_EMAILS: '' });
    staff = await signedIn(app, db(), { staff: true, first_name: 'Sam' });
    mailer = new SmtpMailer({ host: '127.0.0.1', port: sink.port, secure: false, from: 'Pasargad Prints <shop@pasargad.test>' });
    handlers = taskHandlers({ app, mailer, queue: app.jobs, emailTurn: async () => {} });
  });
  after(async () => {
    mailer.close();
    await app.close();
    await sink.close();
  });
  const d = () => db().db;
  const run = async <K extends keyof Handlers>(name: K, id = `t-${Math.random()}`) => (handlers[name] as (j: unknown) => Promise<void>)({ id, name, queue: 'default', payload: {}, attempt: 1 });

  test('a paid order sends one confirmation, a shipped order its tracking number, through the queue and over SMTP', async () => {
    let jobs: RunningJobs | undefined;
    try {
      jobs = await runJobs(app, { concurrency: 2 });
      const item = await f.product(d(), { name: 'Owl lamp', price: '30.00', stock_quantity: 5 });
      const add = await app.inject({ method: 'POST', url: '/api/cart/add/', payload: { product_id: item.id, quantity: 2 } });
      const cookie = String(add.headers['set-cookie']).split(';')[0]!;
      const started = await getJson(app, '/api/payments/create-checkout-session/', { method: 'POST', headers: { cookie }, payload: { email: 'ada@example.com', shipping_address: { name: 'Ada' } } });
      await app.inject({ method: 'POST', url: `/api/payments/test-checkout/${started.body.checkout_session_id}/`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'outcome=paid' });
      await until(() => sink.inbox.some((m) => /is confirmed/.test(m.subject)));
      const order = await d().selectFrom('orders').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
      const confirmation = sink.inbox.find((m) => /is confirmed/.test(m.subject))!;
      assert.deepEqual(confirmation.to, ['ada@example.com']);
      assert.equal(confirmation.from, 'shop@pasargad.test');
      assert.match(confirmation.messageId, /^<[0-9a-f-]{36}@pasargad\.test>$/, 'the Message-ID once() keeps for every try of this email');
      assert.equal(confirmation.subject, `Your order ${order.order_number} is confirmed`);
      assert.match(confirmation.body, /2 × Owl lamp/);
      assert.match(confirmation.body, /Total: \$\d+\.\d\d/);
      assert.match(confirmation.raw, /Content-Type: text\/html/);

      const shipped = await getJson(app, `/api/orders/${order.id}/status/`, { method: 'PATCH', headers: staff.headers, payload: { status: 'shipped', tracking_number: 'TRACK-42' } });
      assert.equal(shipped.status, 200);
      await until(() => sink.inbox.some((m) => /on its way/.test(m.subject)));
      const notice = sink.inbox.find((m) => /on its way/.test(m.subject))!;
      assert.match(notice.body, /Tracking number: TRACK-42/);

      // The same job again (a retry after a crash): no second email.
      await app.jobs.add('send_order_confirmation', { orderId: order.id }, { jobId: `again:${order.id}` });
      await sleep(1_500);
      assert.equal(sink.inbox.filter((m) => /is confirmed/.test(m.subject)).length, 1);
    } finally {
      await jobs?.stop();
    }
  });

  test('check_low_stock: one digest to staff naming every low product, and not the same product again until restocked', async () => {
    await d().updateTable('products').set({ stock_quantity: 100 }).execute();
    const low = await f.product(d(), { name: 'Low gnome', stock_quantity: 2, low_stock_threshold: 5 });
    const gone = await f.product(d(), { name: 'Sold-out vase', stock_quantity: 0, low_stock_threshold: 3 });
    await f.product(d(), { name: 'Plenty', stock_quantity: 50, low_stock_threshold: 5 });
    const before = sink.inbox.length;
    await run('check_low_stock');
    const digests = sink.inbox.slice(before);
    assert.equal(digests.length, 1);
    assert.equal(digests[0]!.subject, 'Low stock: 2 products');
    assert.ok(digests[0]!.to.includes(staff.email));
    assert.match(digests[0]!.body, /Sold-out vase \(.*\): 0 left, threshold 3/);
    assert.match(digests[0]!.body, /Low gnome \(.*\): 2 left/);
    assert.doesNotMatch(digests[0]!.body, /Plenty/);

    await run('check_low_stock');
    assert.equal(sink.inbox.length, before + 1, 'nothing new: no email');
    await d().updateTable('products').set({ stock_quantity: 20 }).where('id', '=', low.id).execute();
    await run('check_low_stock');
    await d().updateTable('products').set({ stock_quantity: 1 }).where('id', '=', low.id).execute();
    await run('check_low_stock');
    assert.equal(sink.inbox.length, before + 2);
    assert.equal(sink.inbox.at(-1)!.subject, 'Low stock: 1 product');
    assert.match(sink.inbox.at(-1)!.body, /Low gnome/);
    assert.doesNotMatch(sink.inbox.at(-1)!.body, /Sold-out vase/, `${gone.name} was named already`);
  });

  test('check_low_stock rerun after its worker died mid-send: the digest it was making goes out, under the same Message-ID', async () => {
    await d().updateTable('products').set({ stock_quantity: 100 }).execute();
    await d().deleteFrom('low_stock_alerts').execute();
    const owl = await f.product(d(), { name: 'Cut-off owl', stock_quantity: 1, low_stock_threshold: 5 });
    // What the dead run left: the product named for its job, the digest's claim never done.
    await d().insertInto('low_stock_alerts').values({ product_id: owl.id, job: 'ls-1' }).execute();
    await d().insertInto('job_effects').values({ key: 'low-stock:ls-1', job: 'ls-1', ref: '0b6f4c1e-0000-4000-8000-000000000001', token: 'dead', done: false, claimed_at: new Date(Date.now() - 3600_000).toISOString() }).execute();
    const before = sink.inbox.length;
    await run('check_low_stock', 'ls-1');
    assert.equal(sink.inbox.length, before + 1);
    assert.match(sink.inbox.at(-1)!.body, /Cut-off owl/);
    assert.equal(sink.inbox.at(-1)!.messageId, '<0b6f4c1e-0000-4000-8000-000000000001@pasargad.test>');
    await run('check_low_stock');
    assert.equal(sink.inbox.length, before + 1, 'named once');
  });

  test('order emails sent late do not contradict the order: none for an order cancelled since, no shipping notice once it went back', async () => {
    const item = await f.product(d(), { name: 'Late lamp' });
    const orderWith = (email: string, status: OrderStatus) =>
      d().transaction().execute((trx) =>
        insertOrder(trx, {
          order: { user_id: null, session_key: null, checkout_id: null, status, subtotal: '10.00', total_amount: '10.00', promotion_id: null, shipping_email: email },
          lines: [{ product_id: item.id, name: item.name, sku: item.sku, price: '10.00', weight: '100.00', quantity: 1 }],
          history: [{ status, notes: '' }],
        }),
      );
    const cancelled = await orderWith('late-cancelled@example.com', 'cancelled');
    const backToProcessing = await orderWith('late-unshipped@example.com', 'processing');
    const shipped = await orderWith('late-shipped@example.com', 'shipped');
    await (handlers.send_order_confirmation as (j: unknown) => Promise<void>)({ id: 'late-1', name: 'send_order_confirmation', queue: 'orders', payload: { orderId: cancelled }, attempt: 1 });
    const status = (orderId: number, to: 'shipped' | 'delivered', id: string) => (handlers.send_order_status_email as (j: unknown) => Promise<void>)({ id, name: 'send_order_status_email', queue: 'orders', payload: { orderId, status: to }, attempt: 1 });
    await status(backToProcessing, 'shipped', 'late-2');
    await status(shipped, 'delivered', 'late-3');
    await status(shipped, 'shipped', 'late-4');
    const to = (address: string) => sink.inbox.filter((m) => m.to.includes(address)).length;
    assert.deepEqual([to('late-cancelled@example.com'), to('late-unshipped@example.com'), to('late-shipped@example.com')], [0, 0, 1]);
  });

  test('send_missed_order_emails: a paid order, a shipment and a delivery whose jobs were lost are mailed once; fresh ones and staff changes are left alone', async () => {
    const item = await f.product(d(), { name: 'Lost-job lamp' });
    // Orders written as a payment writes them, with no job queued: what a process that died
    // right after the commit leaves.
    type Step = { status: OrderStatus; notes: string; created_by?: number };
    const order = (email: string, history: Step[], set: Record<string, string> = {}) =>
      d().transaction().execute(async (trx) => {
        const id = await insertOrder(trx, {
          order: { user_id: null, session_key: null, checkout_id: null, status: history.at(-1)!.status, subtotal: '10.00', total_amount: '10.00', promotion_id: null, shipping_email: email },
          lines: [{ product_id: item.id, name: item.name, sku: item.sku, price: '10.00', weight: '100.00', quantity: 1 }],
          history,
        });
        await trx.updateTable('orders').set({ created_at: new Date(Date.now() - 20 * 60_000).toISOString(), ...set }).where('id', '=', id).execute();
        return id;
      });
    const paid: Step[] = [{ status: 'pending', notes: 'Order placed' }, { status: 'processing', notes: 'Payment received' }];
    const ago = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
    await order('lost-paid@example.com', paid);
    await order('lost-shipped@example.com', [...paid, { status: 'shipped', notes: '' }], { shipped_at: ago(15) });
    await order('lost-delivered@example.com', [...paid, { status: 'delivered', notes: '' }], { delivered_at: ago(15) });
    await order('fresh@example.com', paid, { created_at: ago(1) });
    await order('sold-out@example.com', [{ status: 'pending', notes: 'Order placed' }, { status: 'cancelled', notes: 'refund due' }]);
    await order('staff@example.com', [{ status: 'pending', notes: '' }, { status: 'processing', notes: 'by hand', created_by: staff.id }]);
    const mailsTo = (to: string) => sink.inbox.filter((m) => m.to.includes(to));

    let jobs: RunningJobs | undefined;
    try {
      jobs = await runJobs(app, { concurrency: 2 });
      await run('send_missed_order_emails');
      await until(() => mailsTo('lost-paid@example.com').length === 1 && mailsTo('lost-shipped@example.com').length === 2 && mailsTo('lost-delivered@example.com').length === 2);
      assert.match(mailsTo('lost-shipped@example.com').map((m) => m.subject).join(' | '), /on its way/);
      assert.match(mailsTo('lost-delivered@example.com').map((m) => m.subject).join(' | '), /delivered/i);
      await run('send_missed_order_emails');
      await sleep(1_500);
    } finally {
      await jobs?.stop();
    }
    assert.deepEqual(
      ['lost-paid@example.com', 'lost-shipped@example.com', 'lost-delivered@example.com', 'fresh@example.com', 'sold-out@example.com', 'staff@example.com'].map((to) => mailsTo(to).length),
      [1, 2, 2, 0, 0, 0],
      'each lost email once, also when the sweep runs again; the others left to their own path',
    );
  });

  test('process_abandoned_carts: one reminder per abandonment; old guest carts deleted, recent ones kept', async () => {
    const shopper = await signedIn(app, db(), { first_name: 'Cleo' });
    const item = await f.product(d(), { name: 'Chess set', stock_quantity: 10 });
    assert.equal((await getJson(app, '/api/cart/add/', { method: 'POST', headers: shopper.headers, payload: { product_id: item.id, quantity: 1 } })).status, 200);
    const cart = await d().selectFrom('carts').select('id').where('user_id', '=', shopper.id).executeTakeFirstOrThrow();
    const age = (cartId: number, hours: number) => {
      const at = new Date(Date.now() - hours * 3600_000).toISOString();
      return Promise.all([
        d().updateTable('carts').set({ updated_at: at, created_at: at }).where('id', '=', cartId).execute(),
        d().updateTable('cart_items').set({ updated_at: at, created_at: at }).where('cart_id', '=', cartId).execute(),
      ]);
    };
    await age(cart.id, 30);
    const oldGuest = await d().insertInto('carts').values({ session_key: 'a'.repeat(32) }).returning('id').executeTakeFirstOrThrow();
    await d().insertInto('cart_items').values({ cart_id: oldGuest.id, product_id: item.id, quantity: 1 }).execute();
    await age(oldGuest.id, 24 * 31);
    const newGuest = await d().insertInto('carts').values({ session_key: 'b'.repeat(32) }).returning('id').executeTakeFirstOrThrow();

    const mine = () => sink.inbox.filter((m) => m.to.includes(shopper.email));
    await run('process_abandoned_carts');
    assert.equal(mine().length, 1);
    assert.equal(mine()[0]!.subject, 'You left something in your cart');
    assert.match(mine()[0]!.body, /1 × Chess set/);
    await run('process_abandoned_carts');
    assert.equal(mine().length, 1, 'one reminder per abandonment, not one a day');
    await age(cart.id, 26);
    await run('process_abandoned_carts');
    assert.equal(mine().length, 2, 'touched and left again: a new abandonment');
    const left = await d().selectFrom('carts').select('id').where('id', 'in', [oldGuest.id, newGuest.id]).execute();
    assert.deepEqual(left.map((c) => c.id), [newGuest.id]);
  });

  /** A stale guest cart (untouched for GUEST_CART_MAX_AGE and more) with one line. */
  async function staleGuestCart(key: string, productId: number): Promise<number> {
    const cart = await d().insertInto('carts').values({ session_key: key }).returning('id').executeTakeFirstOrThrow();
    await d().insertInto('cart_items').values({ cart_id: cart.id, product_id: productId, quantity: 1 }).execute();
    const at = new Date(Date.now() - 40 * 86_400_000).toISOString();
    await d().updateTable('carts').set({ updated_at: at, created_at: at }).where('id', '=', cart.id).execute();
    await d().updateTable('cart_items').set({ updated_at: at, created_at: at }).where('cart_id', '=', cart.id).execute();
    return Number(cart.id);
  }

  /** A transaction that locks what `lock` takes, then (when `go` resolves) does `rest` and commits. */
  function holding(lock: (trx: typeof d extends () => infer D ? D : never) => Promise<unknown>, rest: (trx: typeof d extends () => infer D ? D : never) => Promise<unknown>) {
    let locked!: () => void;
    const lockedNow = new Promise<void>((r) => (locked = r));
    let go!: () => void;
    const going = new Promise<void>((r) => (go = r));
    const done = d().transaction().execute(async (trx) => {
      await lock(trx);
      locked();
      await going;
      await rest(trx);
    });
    return { lockedNow, go, done };
  }

  /** `work` must settle within `ms`. */
  async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still waiting after ${ms} ms`)), ms)));
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  if (backend === 'postgres') {
    test('process_abandoned_carts keeps an old guest cart whose checkout is being made while it runs [postgres]', async () => {
      const item = await f.product(d(), { stock_quantity: 10 });
      const key = 'c'.repeat(32);
      const cartId = await staleGuestCart(key, item.id);
      // The checkout, as startCheckout makes it: the cart locked, then an open checkout of it.
      const checkout = holding(
        (trx) => trx.selectFrom('carts').select('id').where('id', '=', cartId).forNoKeyUpdate().execute(),
        (trx) =>
          trx
            .insertInto('checkouts')
            .values({ provider: 'test', cart_id: cartId, session_key: key, lines: '[]', subtotal: '10.00', total_amount: '10.00', success_url: 'x', cancel_url: 'x', owner_key: `session:${key}`, expires_at: new Date(Date.now() + 3_600_000).toISOString() })
            .execute(),
      );
      await checkout.lockedNow;
      const job = run('process_abandoned_carts');
      await sleep(300); // the job is at the cart now
      checkout.go();
      await within(5000, 'the checkout', checkout.done);
      await within(5000, 'the job', job);
      const left = await d().selectFrom('carts').select('id').where('id', '=', cartId).execute();
      assert.equal(left.length, 1, 'the cart of an open checkout is kept');
      const open = await d().selectFrom('checkouts').select('cart_id').where('session_key', '=', key).executeTakeFirstOrThrow();
      assert.equal(Number(open.cart_id), cartId);
    });

    test('process_abandoned_carts and a late payment for an old guest cart do not deadlock [postgres]', async () => {
      const item = await f.product(d(), { stock_quantity: 10 });
      const key = 'e'.repeat(32);
      const cartId = await staleGuestCart(key, item.id);
      const lapsed = await d()
        .insertInto('checkouts')
        .values({ provider: 'test', status: 'expired', cart_id: cartId, session_key: key, lines: '[]', subtotal: '10.00', total_amount: '10.00', success_url: 'x', cancel_url: 'x', owner_key: `session:${key}`, expires_at: new Date(Date.now() - 60_000).toISOString() })
        .returning('id')
        .executeTakeFirstOrThrow();
      // The payment, as fulfilIn makes it: the checkout locked, then the bought lines out of the cart.
      const payment = holding(
        (trx) => trx.selectFrom('checkouts').select('id').where('id', '=', lapsed.id).forNoKeyUpdate().execute(),
        async (trx) => {
          await trx.deleteFrom('cart_items').where('cart_id', '=', cartId).where('product_id', '=', item.id).execute();
          await trx.updateTable('checkouts').set({ status: 'complete' }).where('id', '=', lapsed.id).execute();
        },
      );
      await payment.lockedNow;
      const job = run('process_abandoned_carts');
      await sleep(300); // the job is waiting on the checkout now
      payment.go();
      const [paid, swept] = await Promise.allSettled([within(5000, 'the payment', payment.done), within(5000, 'the job', job)]);
      assert.equal(paid.status, 'fulfilled', `the payment: ${(paid as PromiseRejectedResult).reason}`);
      assert.equal(swept.status, 'fulfilled', `the job: ${(swept as PromiseRejectedResult).reason}`);
      assert.equal((await d().selectFrom('carts').select('id').where('id', '=', cartId).execute()).length, 0, 'the old cart went');
      const c = await d().selectFrom('checkouts').select(['status', 'cart_id']).where('id', '=', lapsed.id).executeTakeFirstOrThrow();
      assert.deepEqual([c.status, c.cart_id], ['complete', null]);
    });
  }

  test('cleanup_expired_sessions gives back the stock of lapsed checkouts', async () => {
    const item = await f.product(d(), { stock_quantity: 5 });
    const add = await app.inject({ method: 'POST', url: '/api/cart/add/', payload: { product_id: item.id, quantity: 3 } });
    const cookie = String(add.headers['set-cookie']).split(';')[0]!;
    const started = await getJson(app, '/api/payments/create-checkout-session/', { method: 'POST', headers: { cookie }, payload: {} });
    assert.equal(started.status, 200);
    await d().updateTable('checkouts').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('public_id', '=', started.body.checkout_session_id).execute();
    await run('cleanup_expired_sessions');
    const p = await d().selectFrom('products').select('stock_quantity').where('id', '=', item.id).executeTakeFirstOrThrow();
    assert.equal(p.stock_quantity, 5);
    const c = await d().selectFrom('checkouts').select('status').where('public_id', '=', started.body.checkout_session_id).executeTakeFirstOrThrow();
    assert.equal(c.status, 'expired');
  });

  test('password reset requests are told apart by the ref made when queued, not by the job id (a new Redis numbers jobs afresh)', async () => {
    const user = await signedIn(app, db(), { first_name: 'Reno' });
    const reset = (ref: string) => (handlers.send_password_reset as (j: unknown) => Promise<void>)({ id: '7', name: 'send_password_reset', queue: 'default', payload: { email: user.email, ref }, attempt: 1 });
    const mine = () => sink.inbox.filter((m) => m.to.includes(user.email)).length;
    await reset('first-request');
    await reset('second-request');
    await reset('second-request');
    assert.equal(mine(), 2, 'one link per request, however its job was numbered');
  });

  test('password reset: the same answer for any email; one link by email; single use; the new password signs in', async () => {
    const user = await signedIn(app, db(), { first_name: 'Rita' });
    const jobsOf = () => d().selectFrom('jobs').selectAll().where('name', '=', 'send_password_reset').orderBy('id').execute();
    const before = (await jobsOf()).length;
    const unknown = await getJson(app, '/api/users/password/reset/', { method: 'POST', payload: { email: 'nobody@example.com' } });
    const known = await getJson(app, '/api/users/password/reset/', { method: 'POST', payload: { email: user.email.toUpperCase() } });
    assert.deepEqual([unknown.status, known.status], [200, 200]);
    assert.deepEqual(unknown.body, known.body, 'nothing tells whether the address has an account');
    const jobs = (await jobsOf()).slice(before);
    assert.equal(jobs.length, 2, 'a job either way: the timing tells nothing either');
    assert.ok(jobs.every((j) => !JSON.stringify(j.payload).includes('token')), 'no token is stored in a job');
    const inboxBefore = sink.inbox.length;
    for (const job of jobs) await (handlers.send_password_reset as (j: unknown) => Promise<void>)({ id: String(job.id), name: 'send_password_reset', queue: 'default', payload: job.payload, attempt: 1 });
    // A retry of the same job (after a crash) mails nothing more.
    await (handlers.send_password_reset as (j: unknown) => Promise<void>)({ id: String(jobs[1]!.id), name: 'send_password_reset', queue: 'default', payload: jobs[1]!.payload, attempt: 2 });
    const mail = sink.inbox.slice(inboxBefore);
    assert.equal(mail.length, 1);
    assert.deepEqual(mail[0]!.to, [user.email]);
    assert.equal(mail[0]!.subject, 'Reset your Pasargad Prints password');
    const token = decodeURIComponent(/reset-password\?token=([A-Za-z0-9_%-]+)/.exec(mail[0]!.body)![1]!);

    const confirm = (body: object) => getJson(app, '/api/users/password/reset/confirm/', { method: 'POST', payload: body });
    const weak = await confirm({ token, new_password: '12345678', new_password_confirm: '12345678' });
    assert.equal(weak.status, 400);
    assert.ok(weak.body.errors.new_password.length > 0);
    const mismatch = await confirm({ token, new_password: 'Brand-new-pass-1', new_password_confirm: 'Brand-new-pass-2' });
    assert.deepEqual(mismatch.body.errors, { non_field_errors: ["New passwords don't match"] });
    const forged = await confirm({ token: 'not-a-token', new_password: 'Brand-new-pass-1', new_password_confirm: 'Brand-new-pass-1' });
    assert.deepEqual([forged.status, forged.body.errors], [400, { token: ['Invalid or expired token'] }]);

    const [a, b] = await Promise.all([
      confirm({ token, new_password: 'Brand-new-pass-1', new_password_confirm: 'Brand-new-pass-1' }),
      confirm({ token, new_password: 'Other-new-pass-2', new_password_confirm: 'Other-new-pass-2' }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 400], 'the token works once, also when sent twice at once');
    const winner = a.status === 200 ? 'Brand-new-pass-1' : 'Other-new-pass-2';
    const login = (password: string) => getJson(app, '/api/users/auth/login/', { method: 'POST', payload: { email: user.email, password } });
    assert.equal((await login(winner)).status, 200);
    assert.equal((await login(user.password)).status, 401, 'the old password no longer works');
    assert.equal((await confirm({ token, new_password: 'Third-new-pass-3', new_password_confirm: 'Third-new-pass-3' })).status, 400);
  });

  test('EMAIL_RATE holds the workers to the mail server’s pace', async () => {
    const slow = await testApp(db(), { EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(sink.port), EMAIL_RATE: '2/second' });
    const user = await signedIn(slow, db());
    const jobs = await runJobs(slow, { queues: ['default'], concurrency: 5 });
    try {
      const before = sink.inbox.length;
      const started = Date.now();
      for (let i = 0; i < 5; i++) await slow.jobs.add('send_password_reset', { email: user.email });
      await until(() => sink.inbox.length >= before + 5);
      assert.ok(Date.now() - started >= 1_900, `5 emails at 2 per second take 2 s or more, not ${Date.now() - started} ms`);
    } finally {
      await jobs.stop();
      await slow.close();
    }
  });

  test('trim_jobs removes finished jobs past their keeping time; warm_cache makes the hot answers', async () => {
    const old = new Date(Date.now() - 8 * 86_400_000).toISOString();
    await d().insertInto('jobs').values([
      { queue: 'default', name: 'warm_cache', payload: '{}', status: 'completed', finished_at: old },
      { queue: 'default', name: 'warm_cache', payload: '{}', status: 'failed', finished_at: old, last_error: 'boom' },
      { queue: 'default', name: 'warm_cache', payload: '{}', status: 'completed', finished_at: new Date().toISOString() },
    ]).execute();
    const before = await d().selectFrom('jobs').select('id').where('name', '=', 'warm_cache').execute();
    await run('trim_jobs');
    const after = await d().selectFrom('jobs').select(['id', 'status']).where('name', '=', 'warm_cache').execute();
    assert.equal(before.length - after.length, 2, 'the two old ones went');
    assert.deepEqual(after.map((j) => j.status), ['completed']);

    await f.product(d(), { name: 'Warm teapot' });
    await run('warm_cache');
    const first = await app.inject({ method: 'GET', url: '/api/products/', headers: { host: 'localhost:8000' } });
    assert.equal(first.headers['x-cache'], 'HIT', 'answered from the warmed cache');
  });
});
