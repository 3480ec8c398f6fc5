// Automatic invalidation: domain events (published after commit) drop exactly the cache entries
// that could show the change, on every instance (tag versions travel through Redis pub/sub). The
// catalog's events (products, stock, reviews, images) are wired by the catalog module
// (modules/catalog/catalog.events.ts); the rest here.
import type { EventBus } from '../events.ts';
import type { Caches } from './stores.ts';
import { CacheKeys, Tags } from './keys.ts';

/** Drops every entry made under any of these tags, in both stores. */
export async function dropTags(caches: Caches, tags: string[]): Promise<void> {
  const unique = [...new Set(tags)];
  await Promise.all([caches.api.invalidateTags(unique), caches.default.invalidateTags(unique)]);
}

export function wireInvalidation(events: EventBus, caches: Caches): void {
  for (const name of ['promotion.created', 'promotion.updated', 'promotion.deleted'] as const) {
    events.on(name, () => dropTags(caches, [Tags.PROMOTIONS]));
  }
  events.on('user.updated', ({ fields }) => (fields.some((f) => f === 'first_name' || f === 'last_name') ? dropTags(caches, [Tags.REVIEWERS]) : undefined));
  events.on('cart.changed', ({ userId }) => (userId === null ? undefined : caches.default.invalidate([CacheKeys.USER_CART(userId)])));
}
