// Stock moves shared by checkouts and orders. Taking stock checks and writes in one statement, so
// parallel buyers can never take the same print twice; callers go in product-id order so
// concurrent transactions lock rows in the same order and cannot deadlock.
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';

/** Takes `quantity` off an active product's stock if that much is there; false otherwise. */
export async function takeStock(db: Db, productId: number, quantity: number): Promise<boolean> {
  const r = await db
    .updateTable('products')
    .set({ stock_quantity: sql`stock_quantity - ${quantity}` })
    .where('id', '=', productId)
    .where('is_active', '=', true)
    .where('stock_quantity', '>=', quantity)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Gives stock back (a cancelled order, a lapsed checkout); products deleted since are skipped. */
export async function giveStock(db: Db, items: readonly { product_id: number | null; quantity: number }[]): Promise<number[]> {
  const sorted = items.filter((i): i is { product_id: number; quantity: number } => i.product_id !== null).sort((a, b) => a.product_id - b.product_id);
  const ids: number[] = [];
  for (const i of sorted) {
    const r = await db.updateTable('products').set({ stock_quantity: sql`stock_quantity + ${i.quantity}` }).where('id', '=', i.product_id).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) ids.push(i.product_id);
  }
  return ids;
}

export async function stockOf(db: Db, productId: number): Promise<number> {
  const r = await db.selectFrom('products').select('stock_quantity').where('id', '=', productId).executeTakeFirst();
  return r?.stock_quantity ?? 0;
}

