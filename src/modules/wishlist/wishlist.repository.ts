// All wishlist SQL.
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { ProductCardRow } from '../catalog/catalog.repository.ts';
import { PRODUCT_CARD_JSON } from '../cart/cart.repository.ts';

export interface WishlistItemJson {
  id: number;
  product: ProductCardRow;
  created_at: string;
}

export interface WishlistRow {
  id: number;
  created_at: string;
  updated_at: string;
  total_items: number;
  items: WishlistItemJson[];
}

const ITEM_JSON = sql`json_build_object('id', wi.id, 'product', ${PRODUCT_CARD_JSON}, 'created_at', wi.created_at)`;
const ITEM_JOINS = sql`join products p on p.id = wi.product_id
      join categories cat on cat.id = p.category_id
      left join product_images mi on mi.product_id = p.id and mi.is_main`;

/**
 * The wishlist with its items, newest first: one statement. A product the staff deactivated is
 * left out (its item stays, and shows again if the product comes back), as every public list does.
 */
export async function readWishlist(db: Db, wishlistId: number): Promise<WishlistRow | undefined> {
  const { rows } = await sql<WishlistRow>`
    select w.id, w.created_at, w.updated_at,
           (select count(*)::int from wishlist_items x join products xp on xp.id = x.product_id and xp.is_active
             where x.wishlist_id = w.id) as total_items,
           coalesce((select json_agg(${ITEM_JSON} order by wi.created_at desc, wi.id desc)
                       from wishlist_items wi ${ITEM_JOINS}
                      where wi.wishlist_id = w.id and p.is_active), '[]') as items
      from wishlists w
     where w.id = ${wishlistId}`.execute(db);
  return rows[0];
}

export async function readItem(db: Db, wishlistId: number, itemId: number): Promise<WishlistItemJson | undefined> {
  const { rows } = await sql<{ item: WishlistItemJson }>`
    select ${ITEM_JSON} as item from wishlist_items wi ${ITEM_JOINS}
     where wi.id = ${itemId} and wi.wishlist_id = ${wishlistId}`.execute(db);
  return rows[0]?.item;
}

/** Adds an active product; the new item's id, or undefined when nothing was added. */
export async function addItem(db: Db, wishlistId: number, productId: number): Promise<number | undefined> {
  const { rows } = await sql<{ id: number }>`
    insert into wishlist_items (wishlist_id, product_id)
    select ${wishlistId}, p.id from products p where p.id = ${productId} and p.is_active
    on conflict (wishlist_id, product_id) do nothing
    returning id`.execute(db);
  return rows[0]?.id;
}

export async function findItemId(db: Db, wishlistId: number, productId: number): Promise<number | undefined> {
  const row = await db.selectFrom('wishlist_items').select('id').where('wishlist_id', '=', wishlistId).where('product_id', '=', productId).executeTakeFirst();
  return row?.id;
}

export async function isActiveProduct(db: Db, productId: number): Promise<boolean> {
  const row = await db.selectFrom('products').select('id').where('id', '=', productId).where('is_active', '=', true).executeTakeFirst();
  return row !== undefined;
}

export async function removeByProduct(db: Db, wishlistId: number, productId: number): Promise<boolean> {
  const r = await db.deleteFrom('wishlist_items').where('wishlist_id', '=', wishlistId).where('product_id', '=', productId).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function removeById(db: Db, wishlistId: number, itemId: number): Promise<boolean> {
  const r = await db.deleteFrom('wishlist_items').where('wishlist_id', '=', wishlistId).where('id', '=', itemId).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function clearItems(db: Db, wishlistId: number): Promise<void> {
  await db.deleteFrom('wishlist_items').where('wishlist_id', '=', wishlistId).execute();
}

/** A guest's items join the user's wishlist (duplicates once), keeping when they were added. */
export async function mergeItems(db: Db, fromId: number, intoId: number): Promise<void> {
  await sql`
    insert into wishlist_items (wishlist_id, product_id, created_at)
    select ${intoId}, product_id, created_at from wishlist_items where wishlist_id = ${fromId}
    on conflict (wishlist_id, product_id) do nothing`.execute(db);
}
