// Stock moves shared by checkouts and orders. Taking stock checks and writes in one statement, so
// parallel buyers can never take the same print twice; callers go in product-id order so
// concurrent transactions lock rows in the same order and cannot deadlock.
//
// Each move returns the count before and after it (StockMove), which the `stock.changed` event
// carries: a cached page is dropped only if the move changed what it shows (catalog.tags.ts).
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { StockMove } from '../../infra/events.ts';

const MOVED = ['id', 'category_id', 'stock_quantity', 'low_stock_threshold'] as const;

function move(r: { id: number; category_id: number; stock_quantity: number; low_stock_threshold: number }, delta: number): StockMove {
  return { id: r.id, category_id: r.category_id, before: r.stock_quantity - delta, after: r.stock_quantity, low_stock_threshold: r.low_stock_threshold };
}

/**
 * Takes `quantity` off a product's stock if that much is there (and, unless `anyState`, the
 * product is active); undefined otherwise.
 */
export async function takeStock(db: Db, productId: number, quantity: number, anyState = false): Promise<StockMove | undefined> {
  let qb = db
    .updateTable('products')
    .set({ stock_quantity: sql`stock_quantity - ${quantity}` })
    .where('id', '=', productId)
    .where('stock_quantity', '>=', quantity);
  if (!anyState) qb = qb.where('is_active', '=', true);
  const r = await qb.returning(MOVED).executeTakeFirst();
  return r && move(r, -quantity);
}

/** Gives stock back (a cancelled order, a lapsed checkout); products deleted since are skipped. */
export async function giveStock(db: Db, items: readonly { product_id: number | null; quantity: number }[]): Promise<StockMove[]> {
  const sorted = items.filter((i): i is { product_id: number; quantity: number } => i.product_id !== null).sort((a, b) => a.product_id - b.product_id);
  const moves: StockMove[] = [];
  for (const i of sorted) {
    const r = await db
      .updateTable('products')
      .set({ stock_quantity: sql`stock_quantity + ${i.quantity}` })
      .where('id', '=', i.product_id)
      .returning(MOVED)
      .executeTakeFirst();
    if (r) moves.push(move(r, i.quantity));
  }
  return moves;
}

/** The `stock.changed` event of some moves. */
export function stockChanged(moves: readonly StockMove[]): { productIds: number[]; moves: StockMove[] } {
  return { productIds: [...new Set(moves.map((m) => m.id))], moves: [...moves] };
}

export async function stockOf(db: Db, productId: number): Promise<number> {
  const r = await db.selectFrom('products').select('stock_quantity').where('id', '=', productId).executeTakeFirst();
  return r?.stock_quantity ?? 0;
}

