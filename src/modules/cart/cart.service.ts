// The shopper's cart: a user's when signed in, else the guest session's. Stock is checked, not
// reserved (checkout reserves); every refused change leaves the cart as it was.
import { inTransaction, type Ctx } from '../../infra/http/context.ts';
import { CacheKeys, Tags } from '../../infra/cache/keys.ts';
import { AppError } from '../../infra/http/errors.ts';
import { deleteList, ensureListId, lockGuestList } from '../accounts/owner.repository.ts';
import type { Owner } from '../accounts/session.ts';
import { toCart } from './cart.mapper.ts';
import * as repo from './cart.repository.ts';
import type { Cart } from './cart.schemas.ts';

/** A raw serializer error body (§1.6 shape 2), e.g. {"product_id":["Product not found"]}. */
const raw = (field: string, message: string) => new AppError('bad_request', { body: { [field]: [message] } });
const adHoc = (status: number, message: string) => new AppError(status === 404 ? 'not_found' : 'bad_request', { status, body: { error: message } });

/** The cart was deleted under this request (a sign-in merged it): the request starts over once. */
class CartGone extends Error {}

async function cartOf(ctx: Ctx, cartId: number): Promise<Cart> {
  const row = await repo.readCart(ctx.database.db, cartId);
  if (!row) throw new CartGone();
  return toCart(row, ctx.media);
}

async function withCart<T>(ctx: Ctx, owner: Owner, fn: (cartId: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const cartId = await ensureListId(ctx.database.db, 'carts', owner);
    try {
      return await fn(cartId);
    } catch (err) {
      const gone = err instanceof CartGone || (err as { code?: string }).code === '23503';
      if (!gone) throw err;
      if (attempt > 0) throw new AppError('conflict', { message: 'The cart changed while this request ran. Please try again.' });
    }
  }
}

/** Published before the answer goes out, so the user's next read sees the change. */
function changed(ctx: Ctx, cartId: number, owner: Owner): Promise<void> {
  return ctx.events.emit('cart.changed', { cartId, userId: owner.userId ?? null });
}

/**
 * A signed-in user's cart is read on every page of the storefront, so it is kept in the `default`
 * store: dropped by the user's own cart changes and by any change to a product it holds.
 */
export async function getCart(ctx: Ctx, owner: Owner): Promise<Cart> {
  if (owner.userId === undefined) return withCart(ctx, owner, (cartId) => cartOf(ctx, cartId));
  const key = CacheKeys.USER_CART(owner.userId);
  const row = (await ctx.caches.default.getOrSet(
    key,
    () =>
      withCart(ctx, owner, async (cartId) => {
        const found = await repo.readCart(ctx.database.db, cartId);
        if (!found) throw new CartGone();
        return found;
      }),
    // Dropped by any write to a product it holds (stock included), and by category renames.
    { ttl: 300, tags: [key, Tags.CATEGORY_NAMES], shows: (cart) => (cart as repo.CartRow).items.map((i) => Tags.product(i.product.id)) },
  )) as repo.CartRow;
  return toCart(row, ctx.media);
}

export async function addToCart(ctx: Ctx, owner: Owner, productId: number, quantity: number): Promise<Cart> {
  const db = ctx.database.db;
  return withCart(ctx, owner, async (cartId) => {
    if (!(await repo.addItem(db, cartId, productId, quantity))) {
      const s = await repo.lineState(db, cartId, productId);
      if (!s || !s.active) throw raw('product_id', 'Product not found');
      if (s.stock <= 0) throw raw('product_id', 'Product is out of stock');
      if (quantity > s.stock) throw raw('non_field_errors', `Only ${s.stock} items available in stock`);
      if (s.inCart > 0) throw adHoc(400, `Cannot add ${quantity} more items. Only ${Math.max(0, s.stock - s.inCart)} available.`);
      // The stock changed between the write and the look: the caller may simply retry.
      throw raw('non_field_errors', `Only ${s.stock} items available in stock`);
    }
    await changed(ctx, cartId, owner);
    return cartOf(ctx, cartId);
  });
}

export async function updateItem(ctx: Ctx, owner: Owner, itemId: number, quantity: number): Promise<Cart> {
  const db = ctx.database.db;
  return withCart(ctx, owner, async (cartId) => {
    const done = quantity === 0 ? await repo.deleteItem(db, cartId, itemId) : await repo.setQuantity(db, cartId, itemId, quantity);
    if (!done) {
      const product = await repo.itemProduct(db, cartId, itemId);
      if (!product) throw new AppError('not_found');
      if (!product.active) throw adHoc(400, 'Product is no longer available');
      throw adHoc(400, `Only ${product.stock} items available in stock`);
    }
    await changed(ctx, cartId, owner);
    return cartOf(ctx, cartId);
  });
}

export async function removeItem(ctx: Ctx, owner: Owner, itemId: number): Promise<Cart> {
  return withCart(ctx, owner, async (cartId) => {
    if (!(await repo.deleteItem(ctx.database.db, cartId, itemId))) throw new AppError('not_found');
    await changed(ctx, cartId, owner);
    return cartOf(ctx, cartId);
  });
}

export async function clearCart(ctx: Ctx, owner: Owner): Promise<Cart> {
  return withCart(ctx, owner, async (cartId) => {
    await repo.clearItems(ctx.database.db, cartId);
    await changed(ctx, cartId, owner);
    return cartOf(ctx, cartId);
  });
}

/** Moves a guest session's cart into the user's (§4.12), then deletes it. Idempotent. */
export async function mergeGuestCart(ctx: Ctx, sessionKey: string, userId: number): Promise<number> {
  const intoId = await ensureListId(ctx.database.db, 'carts', { userId });
  // Run again if PostgreSQL picks it as a deadlock victim, as every write of the lock order is
  // (the sign-in that merges would otherwise answer 500).
  const merged = await inTransaction(ctx, async (trx) => {
    const fromId = await lockGuestList(trx, 'carts', sessionKey);
    if (fromId === undefined) return false;
    await repo.lockCheckoutsOfCart(trx, fromId);
    await repo.mergeItems(trx, fromId, intoId);
    await deleteList(trx, 'carts', fromId);
    return true;
  });
  if (merged) await changed(ctx, intoId, { userId });
  return intoId;
}

/** The explicit merge: only a live guest session's cart is taken; an unknown key changes nothing. */
export async function mergeCart(ctx: Ctx, userId: number, sessionKey: string | undefined, sessionIsLive: (key: string) => Promise<boolean>): Promise<Cart> {
  const key = sessionKey?.trim();
  if (!key) throw adHoc(400, 'Session key required');
  if (!(await sessionIsLive(key))) return getCart(ctx, { userId });
  return cartOf(ctx, await mergeGuestCart(ctx, key, userId));
}
