// The lock order of checkout and payment on PostgreSQL (issue 20), step by step: while a checkout
// holds its products and the promotion code, a payment inserting its order (foreign keys on the
// code and the products) and a cart add (foreign key on the product) go through without waiting,
// so the two orders of locking can no longer meet in a deadlock; a cart merged away and a code
// deleted while a payment holds its checkout wait for it instead of deadlocking with it. PGlite
// has one connection: nothing there can wait on anything.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Database } from '../../src/db/database.ts';
import { insertOrder } from '../../src/modules/orders/orders.repository.ts';
import { lockProducts } from '../../src/modules/payments/payments.repository.ts';
import { lockByCode } from '../../src/modules/promotions/promotions.repository.ts';
import type { Ctx } from '../../src/infra/http/context.ts';
import { mergeGuestCart } from '../../src/modules/cart/cart.service.ts';
import { deletePromotion } from '../../src/modules/promotions/promotions.service.ts';
import { testApp } from '../helpers/app.ts';
import { openTestDatabase } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

/** `work` must finish within `ms`: a wait on a lock shows as a timeout, named. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still waiting after ${ms} ms: blocked by the checkout's locks`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('lock order of checkout and payment [postgres]', () => {
  let database: (Database & { drop(): Promise<void> }) | undefined;
  before(async () => {
    database = await openTestDatabase('postgres');
  });
  after(async () => {
    await database?.drop();
  });

  test('a payment and a cart add never wait on a checkout holding the products and the code', async () => {
    const db = database!.db;
    const p = await f.product(db, { stock_quantity: 10 });
    const promo = await db
      .insertInto('promotion_codes')
      .values({ code: 'LOCKS', discount_type: 'fixed', discount_value: '1.00', usage_type: 'unlimited', valid_from: new Date(Date.now() - 60_000).toISOString(), valid_until: new Date(Date.now() + 3_600_000).toISOString() })
      .returning('id')
      .executeTakeFirstOrThrow();
    const cart = await db.insertInto('carts').values({ user_id: null, session_key: 'lockorder0000000000000000000000a' }).returning('id').executeTakeFirstOrThrow();

    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const lockedNow = new Promise<void>((r) => (locked = r));
    // The checkout: products, then the code, as startCheckout takes them; held open meanwhile.
    const checkout = db.transaction().execute(async (trx) => {
      await lockProducts(trx, [p.id]);
      await lockByCode(trx, 'locks');
      await sql`update products set stock_quantity = stock_quantity - 1 where id = ${p.id}`.execute(trx);
      locked();
      await held;
    });
    await lockedNow;
    try {
      // The payment: its order points at the code, its item at the product.
      const orderId = await within(3000, 'the payment', db.transaction().execute((trx) =>
        insertOrder(trx, {
          order: { user_id: null, session_key: null, checkout_id: null, status: 'processing', subtotal: '10.00', total_amount: '9.00', discount_amount: '1.00', promotion_id: Number(promo.id) },
          lines: [{ product_id: p.id, name: p.name, sku: p.sku, price: '10.00', weight: '100.00', quantity: 1 }],
          history: [{ status: 'pending', notes: 'Order placed' }],
        }),
      ));
      assert.ok(orderId > 0);
      // A shopper adds the same product to a cart.
      await within(3000, 'the cart add', db.insertInto('cart_items').values({ cart_id: cart.id, product_id: p.id, quantity: 1 }).execute());
    } finally {
      release();
      await checkout;
    }
  });

  /** A payment under way: its checkout locked, then (when `go` resolves) its order and cart lines written. */
  function payment(checkoutId: number, cartId: number, promotionId: number | null, productId: number, go: Promise<void>) {
    let locked!: () => void;
    const lockedNow = new Promise<void>((r) => (locked = r));
    const done = database!.db.transaction().execute(async (trx) => {
      await trx.selectFrom('checkouts').select('id').where('id', '=', checkoutId).forNoKeyUpdate().execute();
      locked();
      await go;
      await insertOrder(trx, {
        order: { user_id: null, session_key: null, checkout_id: null, status: 'processing', subtotal: '10.00', total_amount: '10.00', promotion_id: promotionId },
        lines: [{ product_id: productId, name: 'x', sku: 'x', price: '10.00', weight: '100.00', quantity: 1 }],
        history: [{ status: 'pending', notes: 'Order placed' }],
      });
      await trx.deleteFrom('cart_items').where('cart_id', '=', cartId).execute();
      await trx.updateTable('checkouts').set({ status: 'complete' }).where('id', '=', checkoutId).execute();
    });
    return { lockedNow, done };
  }

  async function fixture(sessionKey: string) {
    const db = database!.db;
    const p = await f.product(db, { stock_quantity: 10 });
    const promo = await db
      .insertInto('promotion_codes')
      .values({ code: `DEL${sessionKey.slice(0, 8)}`, discount_type: 'fixed', discount_value: '1.00', usage_type: 'unlimited', valid_from: new Date(Date.now() - 60_000).toISOString(), valid_until: new Date(Date.now() + 3_600_000).toISOString() })
      .returning('id')
      .executeTakeFirstOrThrow();
    const cart = await db.insertInto('carts').values({ user_id: null, session_key: sessionKey }).returning('id').executeTakeFirstOrThrow();
    await db.insertInto('cart_items').values({ cart_id: cart.id, product_id: p.id, quantity: 1 }).execute();
    const checkout = await db
      .insertInto('checkouts')
      .values({ provider: 'test', cart_id: cart.id, session_key: sessionKey, lines: '[]', subtotal: '10.00', total_amount: '10.00', promotion_id: Number(promo.id), success_url: 'x', cancel_url: 'x', owner_key: `session:${sessionKey}`, expires_at: new Date(Date.now() + 3_600_000).toISOString() })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { p, promo: Number(promo.id), cart: Number(cart.id), checkout: Number(checkout.id) };
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('a sign-in merging the guest cart away while its checkout is being paid waits for the payment (no deadlock)', async () => {
    const app = await testApp(database!);
    try {
      const x = await fixture('mergeorder00000000000000000000ab');
      const user = await f.user(database!.db);
      let go!: () => void;
      const pay = payment(x.checkout, x.cart, null, x.p.id, new Promise<void>((r) => (go = r)));
      await pay.lockedNow;
      const ctx = { database: database!, events: app.events, caches: app.caches, requestId: 't', media: () => null } as unknown as Ctx;
      const merge = mergeGuestCart(ctx, 'mergeorder00000000000000000000ab', Number(user.id));
      await sleep(300); // the merge is now waiting for a lock
      go();
      await within(5000, 'the payment', pay.done);
      await within(5000, 'the merge', merge);
      assert.equal((await database!.db.selectFrom('carts').select('id').where('id', '=', x.cart).execute()).length, 0, 'the guest cart merged away');
    } finally {
      await app.close();
    }
  });

  test('a staff member deleting a code while an order with it is being paid waits for the payment (no deadlock)', async () => {
    const app = await testApp(database!);
    try {
      const x = await fixture('deleteorder0000000000000000000ab');
      let go!: () => void;
      const pay = payment(x.checkout, x.cart, x.promo, x.p.id, new Promise<void>((r) => (go = r)));
      await pay.lockedNow;
      const ctx = { database: database!, events: app.events, caches: app.caches, requestId: 't', media: () => null } as unknown as Ctx;
      const del = deletePromotion(ctx, x.promo);
      await sleep(300); // the deletion is now waiting for a lock
      go();
      await within(5000, 'the payment', pay.done);
      await within(5000, 'the deletion', del);
      const order = await database!.db.selectFrom('orders').select('promotion_id').orderBy('id', 'desc').executeTakeFirstOrThrow();
      assert.equal(order.promotion_id, null, 'the deleted code is unlinked from the paid order');
    } finally {
      await app.close();
    }
  });
});
