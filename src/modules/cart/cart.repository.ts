// All cart SQL. Totals are computed by PostgreSQL in numeric (exact to the cent), never in
// JavaScript floats; adds and updates check stock in the same statement that writes, so
// parallel requests cannot push a line past the stock.
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { ProductCardRow } from '../catalog/catalog.repository.ts';

/** A product card as JSON, over products `p`, categories `cat` and the main image `mi`. */
export const PRODUCT_CARD_JSON = sql`json_build_object(
  'id', p.id, 'name', p.name, 'price', p.price::text, 'category_name', cat.name,
  'stock_quantity', p.stock_quantity, 'is_featured', p.is_featured,
  'average_rating', p.average_rating::text, 'review_count', p.review_count,
  'main_image_url', mi.image_url, 'main_image_file', mi.image)`;

export interface CartItemJson {
  id: number;
  product: ProductCardRow;
  quantity: number;
  total_price: string;
  total_weight: string;
  created_at: string;
  updated_at: string;
}

export interface CartRow {
  id: number;
  created_at: string;
  updated_at: string;
  total_items: number;
  total_price: string;
  total_weight: string;
  items: CartItemJson[];
}

/** The whole cart, lines in insertion order, with its totals: one statement. */
export async function readCart(db: Db, cartId: number): Promise<CartRow | undefined> {
  const { rows } = await sql<CartRow>`
    select c.id, c.created_at, c.updated_at,
           coalesce(sum(ci.quantity), 0)::int as total_items,
           round(coalesce(sum(p.price * ci.quantity), 0), 2)::text as total_price,
           round(coalesce(sum(p.weight * ci.quantity), 0), 2)::text as total_weight,
           coalesce(json_agg(json_build_object(
               'id', ci.id, 'product', ${PRODUCT_CARD_JSON}, 'quantity', ci.quantity,
               'total_price', round(p.price * ci.quantity, 2)::text,
               'total_weight', round(p.weight * ci.quantity, 2)::text,
               'created_at', ci.created_at, 'updated_at', ci.updated_at)
             order by ci.id) filter (where ci.id is not null), '[]') as items
      from carts c
      left join cart_items ci on ci.cart_id = c.id
      left join products p on p.id = ci.product_id
      left join categories cat on cat.id = p.category_id
      left join product_images mi on mi.product_id = p.id and mi.is_main
     where c.id = ${cartId}
     group by c.id`.execute(db);
  return rows[0];
}

/**
 * Adds `quantity` of an active product: a new line, or more of an existing one, only while the
 * line stays within stock. Returns false when nothing was written (the caller says why).
 */
export async function addItem(db: Db, cartId: number, productId: number, quantity: number): Promise<boolean> {
  const { rows } = await sql<{ id: number }>`
    insert into cart_items (cart_id, product_id, quantity)
    select ${cartId}, p.id, ${quantity} from products p
     where p.id = ${productId} and p.is_active and p.stock_quantity >= ${quantity}
    on conflict (cart_id, product_id) do update
       set quantity = cart_items.quantity + excluded.quantity, updated_at = now()
     where cart_items.quantity::bigint + excluded.quantity <= (select s.stock_quantity from products s where s.id = excluded.product_id)
    returning id`.execute(db);
  return rows.length > 0;
}

/** Sets a line's quantity if the line is in this cart, its product still on sale and in stock. */
export async function setQuantity(db: Db, cartId: number, itemId: number, quantity: number): Promise<boolean> {
  const { rows } = await sql<{ id: number }>`
    update cart_items ci set quantity = ${quantity}, updated_at = now()
      from products p
     where ci.id = ${itemId} and ci.cart_id = ${cartId} and p.id = ci.product_id and p.is_active and p.stock_quantity >= ${quantity}
    returning ci.id`.execute(db);
  return rows.length > 0;
}

export async function deleteItem(db: Db, cartId: number, itemId: number): Promise<boolean> {
  const r = await db.deleteFrom('cart_items').where('id', '=', itemId).where('cart_id', '=', cartId).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function clearItems(db: Db, cartId: number): Promise<void> {
  await db.deleteFrom('cart_items').where('cart_id', '=', cartId).execute();
}

export interface LineState {
  active: boolean;
  stock: number;
  /** The quantity already in the cart, 0 without a line. */
  inCart: number;
}

/** What the cart and the product look like now, to explain a refused add. */
export async function lineState(db: Db, cartId: number, productId: number): Promise<LineState | undefined> {
  const row = await db
    .selectFrom('products as p')
    .leftJoin('cart_items as ci', (j) => j.onRef('ci.product_id', '=', 'p.id').on('ci.cart_id', '=', cartId))
    .select(['p.is_active', 'p.stock_quantity', 'ci.quantity'])
    .where('p.id', '=', productId)
    .executeTakeFirst();
  return row && { active: row.is_active, stock: row.stock_quantity, inCart: row.quantity ?? 0 };
}

/** The product behind one of this cart's lines, or undefined when the line is not in this cart. */
export async function itemProduct(db: Db, cartId: number, itemId: number): Promise<{ active: boolean; stock: number } | undefined> {
  const row = await db
    .selectFrom('cart_items as ci')
    .innerJoin('products as p', 'p.id', 'ci.product_id')
    .select(['p.is_active', 'p.stock_quantity'])
    .where('ci.id', '=', itemId)
    .where('ci.cart_id', '=', cartId)
    .executeTakeFirst();
  return row && { active: row.is_active, stock: row.stock_quantity };
}

/**
 * Moves a guest cart's lines into a user's cart: quantities of a product in both are added, and
 * every line is capped by the stock (never below what the user already had); lines of inactive or
 * sold-out products are left behind.
 */
export async function mergeItems(db: Db, fromCartId: number, intoCartId: number): Promise<void> {
  await sql`
    insert into cart_items (cart_id, product_id, quantity)
    select ${intoCartId}, gi.product_id, least(gi.quantity, p.stock_quantity)
      from cart_items gi join products p on p.id = gi.product_id
     where gi.cart_id = ${fromCartId} and p.is_active and p.stock_quantity > 0
     -- the user's lines are taken in product order, as a payment's removal of bought lines goes
     order by gi.product_id
    on conflict (cart_id, product_id) do update
       set quantity = greatest(cart_items.quantity, least(cart_items.quantity::bigint + excluded.quantity,
             (select s.stock_quantity from products s where s.id = excluded.product_id))),
           updated_at = now()`.execute(db);
}

/**
 * Every checkout of a cart, locked in id order: deleting a cart (a merge) sets their cart_id null
 * and deletes its lines, and a payment locks its checkout before it removes the lines it bought,
 * so the checkouts are taken first (the lock order in payments.repository.ts: carts, checkouts,
 * then lines), never after the lines.
 */
export async function lockCheckoutsOfCart(db: Db, cartId: number): Promise<void> {
  await db.selectFrom('checkouts').select('id').where('cart_id', '=', cartId).orderBy('id').forNoKeyUpdate().execute();
}
