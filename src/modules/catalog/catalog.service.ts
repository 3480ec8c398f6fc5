// Catalog reads: product list (filters, ordering, search), featured, detail, categories.
import { CacheKeys, Tags } from '../../infra/cache/keys.ts';
import { AppError } from '../../infra/http/errors.ts';
import type { Ctx } from '../../infra/http/context.ts';
import { paginate, type PageQuery, type PageResult } from '../../infra/http/pagination.ts';
import { parseSearch } from '../search/search.text.ts';
import * as repo from './catalog.repository.ts';
import { toCategory, toProductCard, toProductDetail } from './catalog.mapper.ts';
import { cardTags, queryTags } from './catalog.tags.ts';
import type { Category, ProductCard, ProductDetail, ProductListQuery } from './catalog.schemas.ts';

const ORDERING: Record<string, repo.ProductSort> = {
  price: 'price_asc',
  '-price': 'price_desc',
  created_at: 'oldest',
  '-created_at': 'newest',
  name: 'name_asc',
  '-name': 'name_desc',
  average_rating: 'rating_asc',
  '-average_rating': 'rating_desc',
};

const INVALID_CATEGORY = 'Select a valid choice. That choice is not one of the available choices.';

function flag(value: string | undefined): boolean | undefined {
  const v = value?.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return undefined; // django-filter ignores anything else
}

/** `category=1,2` and `category=1&category=2` alike; ids must name existing categories. */
async function categoryIds(ctx: Ctx, raw: string[] | undefined): Promise<number[] | undefined> {
  if (!raw?.length) return undefined;
  const parts = raw.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  if (parts.length === 0) return undefined;
  if (parts.some((v) => !/^\d{1,9}$/.test(v))) throw new AppError('bad_request', { errors: { category: [INVALID_CATEGORY] } });
  const ids = [...new Set(parts.map(Number))];
  const known = (await ctx.caches.default.getOrSet(CacheKeys.CATEGORY_IDS, () => ctx.database.read((db) => repo.allCategoryIds(db)), {
    ttl: 3600,
    tags: [Tags.CATEGORIES],
  })) as number[];
  // The cached list vouches for ids it has; an id it lacks may be newer than it, so ask the database.
  const unknown = ids.filter((id) => !known.includes(id));
  if (unknown.length && (await ctx.database.read((db) => repo.existingCategoryIds(db, unknown))).length !== unknown.length) {
    throw new AppError('bad_request', { errors: { category: [INVALID_CATEGORY] } });
  }
  return ids;
}

/**
 * Full-text first; when it matches nothing, the typo-tolerant trigram match. Returns the filter to
 * use and, when already known, its count.
 */
export async function withTextFallback(ctx: Ctx, filter: repo.ProductFilter): Promise<{ filter: repo.ProductFilter; count?: number }> {
  if (!filter.text) return { filter };
  const count = await ctx.database.read((db) => repo.countProducts(db, filter));
  // Nothing to be similar to when every word was an exclusion.
  if (count > 0 || !filter.text.query.plain) return { filter, count };
  return { filter: { ...filter, text: { query: filter.text.query, mode: 'trigram' } } };
}

export async function pageOfCards(ctx: Ctx, filter: repo.ProductFilter, sort: repo.ProductSort, page: PageQuery): Promise<PageResult<ProductCard>> {
  const resolved = await withTextFallback(ctx, filter);
  const known = resolved.count;
  return paginate(
    page,
    () => (known !== undefined ? Promise.resolve(known) : ctx.database.read((db) => repo.countProducts(db, resolved.filter))),
    async (limit, offset) => {
      const rows = await ctx.database.read((db) => repo.listProductCards(db, resolved.filter, sort, limit, offset));
      ctx.shows?.([...queryTags(resolved.filter, sort), ...cardTags(rows)]);
      return rows.map((r) => toProductCard(r, ctx.media));
    },
  );
}

export async function listProducts(ctx: Ctx, q: ProductListQuery): Promise<PageResult<ProductCard>> {
  const text = parseSearch(q.search);
  const filter: repo.ProductFilter = {
    categoryIds: await categoryIds(ctx, q.category),
    featured: flag(q.is_featured),
    minPrice: q.min_price,
    maxPrice: q.max_price,
    stock: flag(q.in_stock) ? 'in_stock' : undefined,
    text: text ? { query: text, mode: 'fts' } : undefined,
  };
  const firstOrdering = q.ordering?.split(',').map((o) => o.trim()).find((o) => Object.hasOwn(ORDERING, o));
  const sort = firstOrdering ? ORDERING[firstOrdering]! : filter.text ? 'relevance' : 'newest';
  return pageOfCards(ctx, filter, sort, q);
}

export async function listFeatured(ctx: Ctx, page: PageQuery): Promise<PageResult<ProductCard>> {
  return pageOfCards(ctx, { featured: true }, 'newest', page);
}

export async function getProduct(ctx: Ctx, id: number): Promise<ProductDetail> {
  const row = await ctx.database.read((db) => repo.findProductDetail(db, id));
  if (!row) throw new AppError('not_found');
  // The page shows its category's product count.
  ctx.shows?.([Tags.categoryCount(row.category.id)]);
  return toProductDetail(row, ctx.media);
}

export async function listCategories(ctx: Ctx, page: PageQuery): Promise<PageResult<Category>> {
  return paginate(
    page,
    () => ctx.database.read((db) => repo.countCategories(db)),
    async (limit, offset) => (await ctx.database.read((db) => repo.listCategories(db, limit, offset))).map((r) => toCategory(r, ctx.media)),
  );
}

export async function getCategory(ctx: Ctx, id: number): Promise<Category> {
  const row = await ctx.database.read((db) => repo.findCategory(db, id));
  if (!row) throw new AppError('not_found');
  return toCategory(row, ctx.media);
}
