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
  // Category pages and product pages show the whole category. Product cards, carts and text
  // search show its name only: a rename drops them too (cards and search read the name of a
  // category whatever its state, so creating or deactivating one changes none of them).
  for (const name of ['category.created', 'category.deleted'] as const) events.on(name, () => drop([Tags.CATEGORIES]));
  events.on('category.updated', ({ fields }) => drop(fields.includes('name') ? [Tags.CATEGORIES, Tags.CATEGORY_NAMES, Tags.PRODUCTS] : [Tags.CATEGORIES]));
  for (const name of ['review.created', 'review.updated', 'review.deleted'] as const) {
    events.on(name, ({ productId }) => drop(writeTags(productId, new Set(['rating', 'reviews']), [])));
  }
  // Images show on the product's page and, the main one, on its cards.
  for (const name of ['image.created', 'image.deleted'] as const) {
    events.on(name, ({ productId }) => drop(writeTags(productId, new Set(['image']), [])));
  }
  // New variants (the AVIF job) show on the product's page only; cards keep their picture.
  events.on('image.updated', ({ productId, variants }) => drop(writeTags(productId, new Set(variants ? [] : ['image']), [])));
}
