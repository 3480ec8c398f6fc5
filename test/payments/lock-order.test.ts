// The lock order of checkout and payment on PostgreSQL (issue 20), step by step: while a checkout
// holds its products and the promotion code, a payment inserting its order (foreign keys on the
// code and the products) and a cart add (foreign key on the product) go through without waiting,
// so the two orders of locking can no longer meet in a deadlock. PGlite has one connection: nothing
// there can wait on anything.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Database } from '../../src/db/database.ts';
import { insertOrder } from '../../src/modules/orders/orders.repository.ts';
import { lockProducts } from '../../src/modules/payments/payments.repository.ts';
import { lockByCode } from '../../src/modules/promotions/promotions.repository.ts';
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
});
