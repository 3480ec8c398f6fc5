// Checkout SQL: stock is reserved by taking it off products.stock_quantity in the statement that
// checks it (so two checkouts can never both take the last print), rows are always locked in
// product-id order (so concurrent checkouts cannot deadlock), and released stock goes back the
// same way.
//
// LOCK ORDER. Every write path of carts, checkouts, payments, orders, products (stock) and
// promotion codes takes its row locks in this one order, and never the other way round:
//
//   1. carts            the buyer's cart (checkout; a sign-in merge locks the guest cart)
//   2. checkouts        the cart's open checkouts, the paid one, or a lapsed one (each alone)
//   3. payments         the payment a provider reports as failed
//   4. orders           the order a status change or a failed payment moves
//   5. products         stock, always in product-id order (lockProducts, takeStock, giveStock)
//   6. promotion_codes  the code a checkout holds a use of (lockByCode)
//   then only rows the transaction made itself or that no one else locks (reservations, usages,
//   order items, history, cart lines).
//
// LOCK STRENGTH. Rows other tables point at are locked FOR NO KEY UPDATE (what a plain UPDATE
// takes), never FOR UPDATE: inserting an order takes FOR KEY SHARE on its promotion code, user
// and checkout, its items on their products, and a cart line on its cart and product; those
// foreign-key checks do not conflict with FOR NO KEY UPDATE, so paying, adding to a cart and
// checking out never wait on each other's locks (with FOR UPDATE, checkout's products → code
// against payment's code → products deadlocked in a flash sale; issue 20). Only a DELETE (a
// staff deletion, a cart merged away) takes the key lock, after the rows it cascades to.
// PostgreSQL may still pick a victim in some path not foreseen here: inTransaction runs it again.
import { sql, type Selectable } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { CheckoutLine, CheckoutsTable } from '../../db/schema.ts';
export { giveStock, stockChanged, stockOf, takeStock } from '../catalog/stock.repository.ts';

export type CheckoutRow = Selectable<CheckoutsTable>;

export interface CartLine extends CheckoutLine {
  category_id: number;
  is_active: boolean;
  stock_quantity: number;
}

/** The cart's lines with today's prices, in product-id order (the order stock is locked in). */
export async function cartLines(db: Db, cartId: number): Promise<CartLine[]> {
  const rows = await db
    .selectFrom('cart_items as ci')
    .innerJoin('products as p', 'p.id', 'ci.product_id')
    .select(['p.id as product_id', 'p.name', 'p.sku', 'p.category_id', 'p.is_active', 'p.stock_quantity', 'ci.quantity'])
    .select([sql<string>`p.price::text`.as('price'), sql<string>`p.weight::text`.as('weight')])
    .where('ci.cart_id', '=', cartId)
    .orderBy('p.id')
    .execute();
  return rows.map((r) => ({ ...r, product_id: Number(r.product_id), category_id: Number(r.category_id) }));
}

/** Serialises checkouts of one cart (a double click starts one checkout at a time). */
export async function lockCart(db: Db, cartId: number): Promise<boolean> {
  // Lock order 1. NO KEY UPDATE: a cart line added meanwhile (its foreign key's KEY SHARE) does not wait.
  return (await db.selectFrom('carts').select('id').where('id', '=', cartId).forNoKeyUpdate().executeTakeFirst()) !== undefined;
}

/**
 * Lock order 5: these products' rows in id order, so the stock moves that follow cannot deadlock.
 * NO KEY UPDATE, as the stock UPDATE itself takes: an order item or cart line inserted meanwhile
 * checks its foreign key with KEY SHARE, which this does not block.
 */
export async function lockProducts(db: Db, ids: number[]): Promise<void> {
  const unique = [...new Set(ids)].sort((a, b) => a - b);
  if (unique.length) await db.selectFrom('products').select('id').where('id', 'in', unique).orderBy('id').forNoKeyUpdate().execute();
}

export async function findByIdempotencyKey(db: Db, ownerKey: string, key: string): Promise<CheckoutRow | undefined> {
  return db.selectFrom('checkouts').selectAll().where('owner_key', '=', ownerKey).where('idempotency_key', '=', key).executeTakeFirst();
}

export async function findByPublicId(db: Db, publicId: string, lock = false): Promise<CheckoutRow | undefined> {
  const q = db.selectFrom('checkouts').selectAll().where('public_id', '=', publicId);
  // Lock order 2.
  return (lock ? q.forNoKeyUpdate() : q).executeTakeFirst();
}

export async function lockById(db: Db, id: number): Promise<CheckoutRow | undefined> {
  return db.selectFrom('checkouts').selectAll().where('id', '=', id).forNoKeyUpdate().executeTakeFirst();
}

/** Open checkouts of a cart, locked (order 2, after the cart): a new checkout of the same cart replaces them. */
export async function openCheckoutsOfCart(db: Db, cartId: number): Promise<CheckoutRow[]> {
  return db.selectFrom('checkouts').selectAll().where('cart_id', '=', cartId).where('status', '=', 'open').orderBy('id').forNoKeyUpdate().execute();
}

/** Whether the owner's cart has any line (the contract checks this before anything else). */
export async function cartHasItems(db: Db, cartId: number): Promise<boolean> {
  return (await db.selectFrom('cart_items').select('id').where('cart_id', '=', cartId).limit(1).executeTakeFirst()) !== undefined;
}

/**
 * How long a checkout may stay without its provider session before the sweep gives its hold back:
 * opening a session takes at most about a minute (Stripe: 20 s, retried twice), so an open
 * checkout older than this with no session id lost it (its process died, or saving it failed).
 */
export const UNSAVED_AFTER_S = 300;

/**
 * Open checkouts past their expiry, or that never got their provider session, locked, skipping
 * any another request is already handling.
 */
export async function lapsedCheckouts(db: Db, limit: number): Promise<CheckoutRow[]> {
  return db
    .selectFrom('checkouts')
    .selectAll()
    .where('status', '=', 'open')
    .where((eb) =>
      eb.or([
        eb('expires_at', '<', sql<string>`now()`),
        eb.and([eb('public_id', 'is', null), eb('created_at', '<', sql<string>`now() - make_interval(secs => ${UNSAVED_AFTER_S})`)]),
      ]),
    )
    .orderBy('expires_at')
    .limit(limit)
    .forNoKeyUpdate()
    .skipLocked()
    .execute();
}

export async function reservations(db: Db, checkoutId: number): Promise<{ product_id: number; quantity: number }[]> {
  const rows = await db.selectFrom('stock_reservations').select(['product_id', 'quantity']).where('checkout_id', '=', checkoutId).orderBy('product_id').execute();
  return rows.map((r) => ({ product_id: Number(r.product_id), quantity: r.quantity }));
}

/**
 * The cart lines a paid checkout bought are taken out of the cart (lines added since stay). The
 * lines are taken in product order first, as a sign-in merge upserts them (a DELETE goes in
 * whatever order its plan reads them).
 */
export async function removeBoughtLines(db: Db, cartId: number, productIds: number[]): Promise<void> {
  if (productIds.length === 0) return;
  await db.selectFrom('cart_items').select('id').where('cart_id', '=', cartId).where('product_id', 'in', productIds).orderBy('product_id').forUpdate().execute();
  await db.deleteFrom('cart_items').where('cart_id', '=', cartId).where('product_id', 'in', productIds).execute();
}

/** Whether an event id was new; false: this event was handled before (or is being handled now). */
export async function recordEvent(db: Db, provider: string, eventId: string, type: string): Promise<boolean> {
  const r = await db.insertInto('payment_events').values({ provider, event_id: eventId, type }).onConflict((oc) => oc.doNothing()).returning('event_id').executeTakeFirst();
  return r !== undefined;
}
