// The shopper's cart: a user's when signed in, else the guest session's. Stock is checked, not
// reserved (checkout reserves); every refused change leaves the cart as it was.
import type { Ctx } from '../../infra/http/context.ts';
import { AppError } from '../../infra/http/errors.ts';
import { deleteList, ensureListId, lockGuestList } from '../accounts/owner.repository.ts';
import type { Owner } from '../accounts/session.ts';
import { toCart } from './cart.mapper.ts';
import * as repo from './cart.repository.ts';
import type { Cart } from './cart.schemas.ts';

/** A raw serializer error body (§1.6 shape 2), e.g. {"product_id":["Product not found"]}. */
const raw = (field: string, message: string) => new AppError('bad_request', { body: { [field]: [message] } });
const adHoc = (status: number, message: string) => new AppError(status === 404 ? 'not_found' : 'bad_request', { status, body: { error: message } });

async function cartOf(ctx: Ctx, cartId: number): Promise<Cart> {
  const row = await repo.readCart(ctx.database.db, cartId);
  if (!row) throw new AppError('not_found');
  return toCart(row, ctx.media);
}

function changed(ctx: Ctx, cartId: number, owner: Owner): void {
  void ctx.events.emit('cart.changed', { cartId, userId: owner.userId ?? null });
}

export async function getCart(ctx: Ctx, owner: Owner): Promise<Cart> {
  return cartOf(ctx, await ensureListId(ctx.database.db, 'carts', owner));
}

export async function addToCart(ctx: Ctx, owner: Owner, productId: number, quantity: number): Promise<Cart> {
  const db = ctx.database.db;
  const cartId = await ensureListId(db, 'carts', owner);
  if (!(await repo.addItem(db, cartId, productId, quantity))) {
    const s = await repo.lineState(db, cartId, productId);
    if (!s || !s.active) throw raw('product_id', 'Product not found');
    if (s.stock <= 0) throw raw('product_id', 'Product is out of stock');
    if (quantity > s.stock) throw raw('non_field_errors', `Only ${s.stock} items available in stock`);
    if (s.inCart > 0) throw adHoc(400, `Cannot add ${quantity} more items. Only ${Math.max(0, s.stock - s.inCart)} available.`);
    // The stock changed between the write and the look: the caller may simply retry.
    throw raw('non_field_errors', `Only ${s.stock} items available in stock`);
  }
  changed(ctx, cartId, owner);
  return cartOf(ctx, cartId);
}

export async function updateItem(ctx: Ctx, owner: Owner, itemId: number, quantity: number): Promise<Cart> {
  const db = ctx.database.db;
  const cartId = await ensureListId(db, 'carts', owner);
  const done = quantity === 0 ? await repo.deleteItem(db, cartId, itemId) : await repo.setQuantity(db, cartId, itemId, quantity);
  if (!done) {
    const stock = await repo.itemStock(db, cartId, itemId);
    if (stock === undefined) throw new AppError('not_found');
    throw adHoc(400, `Only ${stock} items available in stock`);
  }
  changed(ctx, cartId, owner);
  return cartOf(ctx, cartId);
}

export async function removeItem(ctx: Ctx, owner: Owner, itemId: number): Promise<Cart> {
  const db = ctx.database.db;
  const cartId = await ensureListId(db, 'carts', owner);
  if (!(await repo.deleteItem(db, cartId, itemId))) throw new AppError('not_found');
  changed(ctx, cartId, owner);
  return cartOf(ctx, cartId);
}

export async function clearCart(ctx: Ctx, owner: Owner): Promise<Cart> {
  const db = ctx.database.db;
  const cartId = await ensureListId(db, 'carts', owner);
  await repo.clearItems(db, cartId);
  changed(ctx, cartId, owner);
  return cartOf(ctx, cartId);
}

/** Moves a guest session's cart into the user's (§4.12), then deletes it. Idempotent. */
export async function mergeGuestCart(ctx: Ctx, sessionKey: string, userId: number): Promise<number> {
  const intoId = await ensureListId(ctx.database.db, 'carts', { userId });
  const merged = await ctx.database.db.transaction().execute(async (trx) => {
    const fromId = await lockGuestList(trx, 'carts', sessionKey);
    if (fromId === undefined) return false;
    await repo.mergeItems(trx, fromId, intoId);
    await deleteList(trx, 'carts', fromId);
    return true;
  });
  if (merged) changed(ctx, intoId, { userId });
  return intoId;
}

export async function mergeCart(ctx: Ctx, userId: number, sessionKey: string | undefined): Promise<Cart> {
  if (!sessionKey?.trim()) throw adHoc(400, 'Session key required');
  return cartOf(ctx, await mergeGuestCart(ctx, sessionKey.trim(), userId));
}
