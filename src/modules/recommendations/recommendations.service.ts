// Recommendations (API-CONTRACT.md §2.8): for a product page (which also records the view), for
// the shopper from their own recent views, and what is trending for everyone; and the staff's
// hand-made links between products. What is the same for everyone is kept in the `default`
// store: the shop-wide scores for their TTL, the product cards only until a product changes.
import { ResponseKeys, Tags } from '../../infra/cache/keys.ts';
import type { Ctx } from '../../infra/http/context.ts';
import { AppError, type FieldErrors } from '../../infra/http/errors.ts';
import type { Owner } from '../accounts/session.ts';
import { toProductCard } from '../catalog/catalog.mapper.ts';
import type { ProductCardRow } from '../catalog/catalog.repository.ts';
import type { ProductCard } from '../catalog/catalog.schemas.ts';
import { toRecommendedProduct, toRelationship } from './recommendations.mapper.ts';
import * as repo from './recommendations.repository.ts';
import type { RecommendedProduct, Relationship, RelationshipInput } from './recommendations.schemas.ts';

const PRODUCT_PICKS: repo.ProductPicksLimits = { total: 8, bought: 4, category: 4, orders: 200 };
const PERSONAL_LIMIT = 8;
const PERSONAL_DAYS = 30;
const TRENDING_LIMIT = 12;
// Scores are counted without looking at products, so more are kept than there are places:
// room for inactive products among the top, and for the shopper's own picks (up to 8) that the
// most viewed list must skip.
const MOST_VIEWED: repo.Ranking = { days: PERSONAL_DAYS, unitWeight: 0, limit: 6 * PERSONAL_LIMIT };
const MOST_VIEWED_CARDS = 2 * PERSONAL_LIMIT;
const TRENDING: repo.Ranking = { days: 7, unitWeight: 5, limit: 3 * TRENDING_LIMIT };

// The `recommendations` family of keys.ts, in the `default` store (data, not responses).
const { keyPrefix, ttl } = ResponseKeys.RECOMMENDATIONS;
const productKey = (id: number) => `${keyPrefix}:product:${id}`;
const MOST_VIEWED_KEY = `${keyPrefix}:most_viewed`;
const MOST_VIEWED_SCORES_KEY = `${keyPrefix}:most_viewed_scores`;
const TRENDING_SCORES_KEY = `${keyPrefix}:trending_scores`;
// Thirty days of views move slowly, and adding them up is the costliest read here.
const MOST_VIEWED_SCORES_TTL = 900;

/**
 * A product's recommendations. The list is cached per product (dropped when the product, any
 * listed product or its links change); the view is recorded on every call, alongside the read.
 * An unknown or inactive product is a 404 (the original answered 500).
 */
export async function forProduct(ctx: Ctx, owner: Owner | null, productId: number): Promise<RecommendedProduct[]> {
  const [items] = await Promise.all([productPicks(ctx, productId), owner ? repo.recordView(ctx.database.db, productId, owner) : undefined]);
  return items.map((i) => toRecommendedProduct(i, ctx.media));
}

async function productPicks(ctx: Ctx, productId: number): Promise<repo.RecommendationJson[]> {
  return (await ctx.caches.default.getOrSet(
    productKey(productId),
    async () => {
      const { found, items } = await ctx.database.read((db) => repo.productPicks(db, productId, PRODUCT_PICKS));
      if (!found) throw new AppError('not_found');
      return items;
    },
    { ttl, tags: [Tags.product(productId), Tags.PRODUCTS] },
  )) as repo.RecommendationJson[];
}

/**
 * Products from the categories the shopper viewed most in the last 30 days that they have not
 * viewed yet, topped up with the shop's most viewed products (then featured, then newest). A
 * guest without a session gets the top-up alone.
 */
export async function personalized(ctx: Ctx, owner: Owner | null): Promise<ProductCard[]> {
  const [own, popular] = await Promise.all([
    // The primary: these are the shopper's own views, recorded there a moment ago.
    owner ? repo.viewerPicks(ctx.database.db, owner, PERSONAL_DAYS, PERSONAL_LIMIT) : [],
    mostViewed(ctx),
  ]);
  const picked = new Set(own.map((p) => p.id));
  const rows = [...own];
  for (const p of popular) {
    if (rows.length >= PERSONAL_LIMIT) break;
    if (!picked.has(p.id)) rows.push(p);
  }
  return rows.map((r) => toProductCard(r, ctx.media));
}

/**
 * Scores are the costly part (a window of views and orders added up), so they are kept for their
 * TTL alone: product changes do not touch them. The cards made from them show prices, stock and
 * which products are active, so they are dropped with any product change (the trending route's
 * response cache carries the same tag).
 */
function scores(ctx: Ctx, key: string, ranking: repo.Ranking, scoresTtl: number): Promise<repo.Scored[]> {
  return ctx.caches.default.getOrSet(key, () => ctx.database.read((db) => repo.topScored(db, ranking)), { ttl: scoresTtl }) as Promise<repo.Scored[]>;
}

async function mostViewed(ctx: Ctx): Promise<ProductCardRow[]> {
  return (await ctx.caches.default.getOrSet(
    MOST_VIEWED_KEY,
    async () => {
      const scored = await scores(ctx, MOST_VIEWED_SCORES_KEY, MOST_VIEWED, MOST_VIEWED_SCORES_TTL);
      return ctx.database.read((db) => repo.rankedCards(db, scored, MOST_VIEWED_CARDS));
    },
    { ttl, tags: [Tags.PRODUCTS] },
  )) as ProductCardRow[];
}

/** Views in the last 7 days plus 5 per unit ordered in them; the route caches the answer. */
export async function trending(ctx: Ctx): Promise<ProductCard[]> {
  const scored = await scores(ctx, TRENDING_SCORES_KEY, TRENDING, ttl);
  const rows = await ctx.database.read((db) => repo.rankedCards(db, scored, TRENDING_LIMIT));
  return rows.map((r) => toProductCard(r, ctx.media));
}

// Staff links. Recommendations are cached per product, so a change drops that product's entry.

/** Links two products (any, active or not); the same link again sets its strength. */
export async function linkProducts(ctx: Ctx, body: RelationshipInput): Promise<{ created: boolean; relationship: Relationship }> {
  const db = ctx.database.db;
  if (body.product_id === body.related_product_id) {
    throw new AppError('bad_request', { errors: { related_product_id: ['A product cannot be related to itself.'] } });
  }
  const known = await repo.existingProductIds(db, [body.product_id, body.related_product_id]);
  const errors: FieldErrors = {};
  for (const field of ['product_id', 'related_product_id'] as const) {
    if (!known.includes(body[field])) errors[field] = [`Invalid pk "${body[field]}" - object does not exist.`];
  }
  if (Object.keys(errors).length) throw new AppError('bad_request', { errors });
  const { created, ...row } = await repo.upsertRelationship(db, {
    product_id: body.product_id,
    related_product_id: body.related_product_id,
    relationship_type: body.relationship_type,
    strength: body.strength ?? 1,
  });
  await ctx.caches.default.invalidateTags([Tags.product(row.product_id)]);
  return { created, relationship: toRelationship(row) };
}

export async function unlinkProducts(ctx: Ctx, id: number): Promise<void> {
  const productId = await repo.deleteRelationship(ctx.database.db, id);
  if (productId === undefined) throw new AppError('not_found');
  await ctx.caches.default.invalidateTags([Tags.product(productId)]);
}
