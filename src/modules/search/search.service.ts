// Product search: the quick search box and advanced search with facets. Full-text with prefix
// matching first, trigram similarity when that finds nothing (catalog.service withTextFallback).
import { AppError } from '../../infra/http/errors.ts';
import type { Ctx } from '../../infra/http/context.ts';
import * as catalogRepo from '../catalog/catalog.repository.ts';
import { toProductCard } from '../catalog/catalog.mapper.ts';
import { cardTags, queryTags } from '../catalog/catalog.tags.ts';
import type { ProductCard } from '../catalog/catalog.schemas.ts';
import { facets } from './search.repository.ts';
import type { AdvancedSearchQuery, Facets } from './search.schemas.ts';
import { parseSearch } from './search.text.ts';

const QUICK_LIMIT = 10;

/** The search box: up to 10 best matches; `count` is how many are returned (the contract's). */
export async function quickSearch(ctx: Ctx, q: string | undefined): Promise<{ results: ProductCard[]; count: number }> {
  // The contract: under two characters finds nothing.
  const text = (q ?? '').trim().length < 2 ? undefined : parseSearch(q);
  if (!text) return { results: [], count: 0 };
  const run = (mode: 'fts' | 'trigram') =>
    ctx.database.read((db) => catalogRepo.listProductCards(db, { text: { query: text, mode } }, 'relevance', QUICK_LIMIT, 0));
  let rows = await run('fts');
  if (rows.length === 0 && text.plain) rows = await run('trigram');
  ctx.shows?.([...queryTags({ text: { query: text, mode: 'fts' } }, 'relevance'), ...cardTags(rows)]);
  const results = rows.map((r) => toProductCard(r, ctx.media));
  return { results, count: results.length };
}

const SORT: Record<NonNullable<AdvancedSearchQuery['sort']>, catalogRepo.ProductSort> = {
  relevance: 'relevance',
  price_asc: 'price_asc',
  price_desc: 'price_desc',
  name_asc: 'name_asc',
  name_desc: 'name_desc',
  newest: 'newest',
  oldest: 'oldest',
  rating: 'rating_desc',
  popularity: 'popularity',
};

const num = (v: string | null) => (v === null ? 0 : Number(v));

export async function advancedSearch(ctx: Ctx, q: AdvancedSearchQuery) {
  if (q.min_price !== undefined && q.max_price !== undefined && q.min_price > q.max_price) {
    throw new AppError('bad_request', { errors: { max_price: ['Ensure max_price is greater than or equal to min_price.'] } });
  }
  const text = parseSearch(q.q);
  let base: catalogRepo.ProductFilter = {
    featured: q.featured?.toLowerCase() === 'true' ? true : undefined,
    minPrice: q.min_price,
    maxPrice: q.max_price,
    stock: q.stock,
    minWeight: q.min_weight,
    maxWeight: q.max_weight,
    maxPrintTime: q.max_print_time,
    minRating: q.min_rating,
    text: text ? { query: text, mode: 'fts' } : undefined,
  };
  const categoryIds = [...(q['category[]'] ?? []), ...(q.category ?? [])];
  const materials = [...(q['material[]'] ?? []), ...(q.material ?? [])];
  let f = await ctx.database.read((db) => facets(db, base, { categoryIds, materials }));
  if (f.total === 0 && text?.plain) {
    base = { ...base, text: { query: text, mode: 'trigram' } };
    f = await ctx.database.read((db) => facets(db, base, { categoryIds, materials }));
  }
  const filter = { ...base, categoryIds, materials };
  const perPage = q.per_page ?? 20;
  const page = q.page ?? 1;
  const sort = q.sort ? SORT[q.sort] : text ? 'relevance' : 'newest';
  const [count, rows] = await Promise.all([
    categoryIds.length || materials.length ? ctx.database.read((db) => catalogRepo.countProducts(db, filter)) : Promise.resolve(f.total),
    ctx.database.read((db) => catalogRepo.listProductCards(db, filter, sort, perPage, (page - 1) * perPage)),
  ]);
  // The facets count over every category and material, whatever the page's own filter.
  ctx.shows?.([...queryTags({ ...base, materials }, sort, ['member', 'category', 'material', 'price', 'weight']), ...cardTags(rows)]);
  const filters: Facets = {
    categories: f.categories,
    materials: f.materials.map((m) => m.name),
    material_counts: f.materials,
    price_range: { min: num(f.price_min), max: num(f.price_max) },
    weight_range: { min: num(f.weight_min), max: num(f.weight_max) },
  };
  return {
    results: rows.map((r) => toProductCard(r, ctx.media)),
    count,
    page,
    per_page: perPage,
    total_pages: Math.ceil(count / perPage),
    filters,
  };
}
