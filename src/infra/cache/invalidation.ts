// Automatic invalidation: domain events (published after commit) drop exactly the cache entries
// that could show the change, on every instance (tag versions travel through Redis pub/sub).
import type { EventBus } from '../events.ts';
import type { Caches } from './stores.ts';
import { CacheKeys, Tags } from './keys.ts';

/** Product fields whose change moves a product into or out of a category's count. */
const COUNTED = new Set(['is_active', 'category_id']);

export function wireInvalidation(events: EventBus, caches: Caches): void {
  const drop = async (tags: string[]) => {
    await Promise.all([caches.api.invalidateTags(tags), caches.default.invalidateTags(tags)]);
  };
  events.on('product.created', ({ id }) => drop([Tags.product(id), Tags.PRODUCTS, Tags.CATEGORIES]));
  events.on('product.deleted', ({ id }) => drop([Tags.product(id), Tags.PRODUCTS, Tags.CATEGORIES]));
  events.on('product.updated', ({ id, fields }) =>
    drop([Tags.product(id), Tags.PRODUCTS, ...(fields.some((f) => COUNTED.has(f)) ? [Tags.CATEGORIES] : [])]),
  );
  for (const name of ['category.created', 'category.updated', 'category.deleted'] as const) {
    events.on(name, () => drop([Tags.CATEGORIES, Tags.PRODUCTS]));
  }
  for (const name of ['review.created', 'review.updated', 'review.deleted'] as const) {
    events.on(name, ({ productId }) => drop([Tags.product(productId), Tags.PRODUCTS]));
  }
  // A product's images show in its detail and, as the main image, in every list and search page.
  for (const name of ['image.created', 'image.updated', 'image.deleted'] as const) {
    events.on(name, ({ productId }) => drop([Tags.product(productId), Tags.PRODUCTS]));
  }
  // Checkouts reserve and release stock, cancels restore it: is_in_stock shows in lists too.
  events.on('stock.changed', ({ productIds }) => drop([...productIds.map((id) => Tags.product(id)), Tags.PRODUCTS]));
  for (const name of ['promotion.created', 'promotion.updated', 'promotion.deleted'] as const) {
    events.on(name, () => drop([Tags.PROMOTIONS]));
  }
  events.on('user.updated', ({ fields }) => (fields.some((f) => f === 'first_name' || f === 'last_name') ? drop([Tags.REVIEWERS]) : undefined));
  events.on('cart.changed', ({ userId }) => (userId === null ? undefined : caches.default.invalidate([CacheKeys.USER_CART(userId)])));
}
