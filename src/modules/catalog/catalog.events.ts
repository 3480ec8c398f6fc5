// Catalog writes to cache invalidation: each product, stock, review or image event drops the
// tags of what it changed (catalog.tags.ts), in both stores and on every instance.
import type { Caches } from '../../infra/cache/stores.ts';
import { dropTags } from '../../infra/cache/invalidation.ts';
import { Tags } from '../../infra/cache/keys.ts';
import type { EventBus } from '../../infra/events.ts';
import { productWriteTags, stockMoveTags, writeTags } from './catalog.tags.ts';

export function wireCatalogInvalidation(events: EventBus, caches: Caches): void {
  const drop = (tags: string[]) => dropTags(caches, tags);
  events.on('product.created', ({ after }) => drop(productWriteTags(undefined, after)));
  events.on('product.updated', ({ before, after }) => drop(productWriteTags(before, after)));
  events.on('product.deleted', ({ before }) => drop(productWriteTags(before, { ...before, is_active: false })));
  // A move that leaves a product in stock changes its page and the carts holding it, and pages
  // ordered by stock; one to or from zero changes its cards and the pages filtered on stock too.
  events.on('stock.changed', ({ moves }) => drop(moves.flatMap(stockMoveTags)));
  // A category's name shows on its products' cards and is searched: every page that shows it.
  for (const name of ['category.created', 'category.updated', 'category.deleted'] as const) {
    events.on(name, () => drop([Tags.CATEGORIES, Tags.PRODUCTS]));
  }
  for (const name of ['review.created', 'review.updated', 'review.deleted'] as const) {
    events.on(name, ({ productId }) => drop(writeTags(productId, new Set(['rating', 'reviews']), [])));
  }
  // Images show on the product's page and, the main one, on its cards.
  for (const name of ['image.created', 'image.updated', 'image.deleted'] as const) {
    events.on(name, ({ productId }) => drop(writeTags(productId, new Set(['image']), [])));
  }
}
