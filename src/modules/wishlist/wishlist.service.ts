// The shopper's wishlist: a user's when signed in, else the guest session's. Errors are the
// contract's ad-hoc `{"error": …}` bodies; unknown products and missing items are 404 (§4.7).
import type { Ctx } from '../../infra/http/context.ts';
import { AppError } from '../../infra/http/errors.ts';
import { deleteList, ensureListId, lockGuestList } from '../accounts/owner.repository.ts';
import type { Owner } from '../accounts/session.ts';
import { addToCart } from '../cart/cart.service.ts';
import type { Cart } from '../cart/cart.schemas.ts';
import * as repo from './wishlist.repository.ts';
import { toWishlist, toWishlistItem } from './wishlist.mapper.ts';
import type { Wishlist, WishlistItem } from './wishlist.schemas.ts';

const adHoc = (status: 400 | 404, error: string) => new AppError(status === 404 ? 'not_found' : 'bad_request', { status, body: { error } });

/** A product id from a body: a positive integer (or its decimal text), else the contract's 400. */
export function productIdFrom(value: unknown): number {
  if (value === undefined || value === null || value === '') throw adHoc(400, 'Product ID is required');
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,10}$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 2147483647) throw adHoc(400, 'A valid integer is required.');
  return n;
}

export async function getWishlist(ctx: Ctx, owner: Owner): Promise<Wishlist> {
  const id = await ensureListId(ctx.database.db, 'wishlists', owner);
  return toWishlist((await repo.readWishlist(ctx.database.db, id))!, ctx.media);
}

/** Adds a product; `created` is false when it was already there (`item` is then the existing one). */
export async function addToWishlist(ctx: Ctx, owner: Owner, productId: number): Promise<{ created: boolean; item: WishlistItem }> {
  const db = ctx.database.db;
  const id = await ensureListId(db, 'wishlists', owner);
  const added = await repo.addItem(db, id, productId);
  const itemId = added ?? (await repo.findItemId(db, id, productId));
  if (itemId === undefined || (added === undefined && !(await repo.isActiveProduct(db, productId)))) throw adHoc(404, 'Product not found');
  const item = await repo.readItem(db, id, itemId);
  if (!item) throw adHoc(404, 'Product not found');
  return { created: added !== undefined, item: toWishlistItem(item, ctx.media) };
}

export async function removeProduct(ctx: Ctx, owner: Owner, productId: number): Promise<void> {
  const id = await ensureListId(ctx.database.db, 'wishlists', owner);
  if (!(await repo.removeByProduct(ctx.database.db, id, productId))) throw adHoc(404, 'Product not in wishlist');
}

export async function removeItem(ctx: Ctx, owner: Owner, itemId: number): Promise<void> {
  const id = await ensureListId(ctx.database.db, 'wishlists', owner);
  if (!(await repo.removeById(ctx.database.db, id, itemId))) throw adHoc(404, 'Item not in wishlist');
}

export async function clearWishlist(ctx: Ctx, owner: Owner): Promise<void> {
  const id = await ensureListId(ctx.database.db, 'wishlists', owner);
  await repo.clearItems(ctx.database.db, id);
}

/**
 * Adds the product to the cart (the cart's own checks and errors apply) and, once it is there,
 * takes it off the wishlist: a move, as the name says (the original left it on the list).
 */
export async function moveToCart(ctx: Ctx, owner: Owner, productId: number, quantity: number): Promise<Cart> {
  const cart = await addToCart(ctx, owner, productId, quantity);
  const id = await ensureListId(ctx.database.db, 'wishlists', owner);
  await repo.removeByProduct(ctx.database.db, id, productId);
  return cart;
}

/** Moves a guest session's wishlist into the user's (§4.12), then deletes it. Idempotent. */
export async function mergeGuestWishlist(ctx: Ctx, sessionKey: string, userId: number): Promise<void> {
  const intoId = await ensureListId(ctx.database.db, 'wishlists', { userId });
  await ctx.database.db.transaction().execute(async (trx) => {
    const fromId = await lockGuestList(trx, 'wishlists', sessionKey);
    if (fromId === undefined) return;
    await repo.mergeItems(trx, fromId, intoId);
    await deleteList(trx, 'wishlists', fromId);
  });
}
