// All catalog SQL: product cards with every filter and sort the API offers, product detail in
// one statement, categories, and the staff writes. Each function runs exactly one statement,
// whatever the page size.
import { sql, type Expression, type Insertable, type RawBuilder, type SqlBool, type Updateable } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { CategoriesTable, MediaVariant, ProductsTable } from '../../db/schema.ts';
import type { ProductFacts } from '../../infra/events.ts';
import type { ReviewRowLike } from '../reviews/reviews.mapper.ts';
import type { ParsedSearch } from '../search/search.text.ts';

export type StockFilter = 'in_stock' | 'low_stock' | 'out_of_stock';
export type ProductSort =
  | 'newest'
  | 'oldest'
  | 'price_asc'
  | 'price_desc'
  | 'name_asc'
  | 'name_desc'
  | 'rating_asc'
  | 'rating_desc'
  | 'popularity'
  | 'relevance'
  | 'stock_asc';

/**
 * How free text matches: `fts` is the weighted full-text search with prefix matching; `trigram`
 * is the typo fallback (word similarity on the name), used when `fts` finds nothing. The text is
 * the search tokenizer's (search.text.ts parseSearch): never the shopper's text itself.
 */
export interface TextMatch {
  query: ParsedSearch;
  mode: 'fts' | 'trigram';
}

export interface ProductFilter {
  categoryIds?: number[];
  featured?: boolean;
  minPrice?: number;
  maxPrice?: number;
  stock?: StockFilter;
  materials?: string[];
  minWeight?: number;
  maxWeight?: number;
  maxPrintTime?: number;
  minRating?: number;
  text?: TextMatch;
}

/**
 * The tokenizer's query (quoted words made prefixes, so `minia` finds miniatures and `drag`
 * dragons), stemmed as the document is. Built from words alone, with a bounded number of
 * operators, so PostgreSQL's query parser cannot be made to fail by what a shopper types.
 */
function prefixTsQuery(query: ParsedSearch) {
  return sql<string>`to_tsquery('english', ${query.tsquery})`;
}

/** The WHERE condition for a filter, over products aliased `p`. */
export function productCondition(f: ProductFilter): Expression<SqlBool> {
  const c: RawBuilder<unknown>[] = [sql`p.is_active`];
  if (f.categoryIds?.length) c.push(sql`p.category_id in (${sql.join(f.categoryIds)})`);
  if (f.featured !== undefined) c.push(sql`p.is_featured = ${f.featured}`);
  if (f.minPrice !== undefined) c.push(sql`p.price >= ${f.minPrice}`);
  if (f.maxPrice !== undefined) c.push(sql`p.price <= ${f.maxPrice}`);
  if (f.stock === 'in_stock') c.push(sql`p.stock_quantity > 0`);
  if (f.stock === 'out_of_stock') c.push(sql`p.stock_quantity = 0`);
  if (f.stock === 'low_stock') c.push(sql`p.stock_quantity > 0 and p.stock_quantity <= p.low_stock_threshold`);
  if (f.materials?.length) c.push(sql`p.material in (${sql.join(f.materials)})`);
  if (f.minWeight !== undefined) c.push(sql`p.weight >= ${f.minWeight}`);
  if (f.maxWeight !== undefined) c.push(sql`p.weight <= ${f.maxWeight}`);
  if (f.maxPrintTime !== undefined) c.push(sql`p.print_time <= ${f.maxPrintTime}`);
  if (f.minRating !== undefined) c.push(sql`p.average_rating >= ${f.minRating}`);
  if (f.text) c.push(f.text.mode === 'fts' ? sql`p.search_vector @@ ${prefixTsQuery(f.text.query)}` : sql`${f.text.query.plain} <% p.name`);
  return sql<SqlBool>`${sql.join(c, sql` and `)}`;
}

function rankExpression(text: TextMatch): Expression<number> {
  return text.mode === 'fts'
    ? sql<number>`ts_rank(p.search_vector, ${prefixTsQuery(text.query)})`
    : sql<number>`word_similarity(${text.query.plain}, p.name)`;
}

export async function countProducts(db: Db, filter: ProductFilter): Promise<number> {
  const row = await db.selectFrom('products as p').select(sql<number>`count(*)::int`.as('n')).where(productCondition(filter)).executeTakeFirstOrThrow();
  return row.n;
}

export interface ProductCardRow {
  id: number;
  name: string;
  price: string;
  category_name: string;
  stock_quantity: number;
  is_featured: boolean;
  average_rating: string;
  review_count: number;
  main_image_url: string | null;
  main_image_file: string | null;
}

/** Cards matching `filter` in `sort` order; every match when no limit is given. */
export async function listProductCards(db: Db, filter: ProductFilter, sort: ProductSort, limit?: number, offset = 0): Promise<ProductCardRow[]> {
  let qb = db
    .selectFrom('products as p')
    .innerJoin('categories as c', 'c.id', 'p.category_id')
    .leftJoin('product_images as mi', (j) => j.onRef('mi.product_id', '=', 'p.id').on('mi.is_main', '=', true))
    .select([
      'p.id',
      'p.name',
      'p.price',
      'c.name as category_name',
      'p.stock_quantity',
      'p.is_featured',
      'p.average_rating',
      'p.review_count',
      'mi.image_url as main_image_url',
      'mi.image as main_image_file',
    ])
    .where(productCondition(filter));
  const dir = (asc: boolean) => (asc ? 'asc' : 'desc');
  switch (sort) {
    case 'relevance':
      qb = filter.text ? qb.orderBy(rankExpression(filter.text), 'desc').orderBy('p.id', 'desc') : qb.orderBy('p.created_at', 'desc').orderBy('p.id', 'desc');
      break;
    case 'oldest':
    default:
      qb = qb.orderBy('p.created_at', dir(sort === 'oldest')).orderBy('p.id', dir(sort === 'oldest'));
      break;
    case 'price_asc':
    case 'price_desc':
      qb = qb.orderBy('p.price', dir(sort === 'price_asc')).orderBy('p.id', dir(sort === 'price_asc'));
      break;
    case 'name_asc':
    case 'name_desc':
      qb = qb.orderBy('p.name', dir(sort === 'name_asc')).orderBy('p.id', dir(sort === 'name_asc'));
      break;
    case 'rating_asc':
    case 'rating_desc':
      qb = qb.orderBy('p.average_rating', dir(sort === 'rating_asc')).orderBy('p.id', dir(sort === 'rating_asc'));
      break;
    case 'popularity':
      qb = qb.orderBy('p.review_count', 'desc').orderBy('p.id', 'desc');
      break;
    case 'stock_asc':
      qb = qb.orderBy('p.stock_quantity', 'asc').orderBy('p.id', 'asc');
      break;
  }
  return limit === undefined ? qb.execute() : qb.limit(limit).offset(offset).execute();
}

/** The ids among `ids` that name an existing category. */
export async function existingCategoryIds(db: Db, ids: number[]): Promise<number[]> {
  const rows = await db.selectFrom('categories').select('id').where('id', 'in', ids).execute();
  return rows.map((r) => r.id);
}

/** Every category id (a shop has tens or hundreds; the list is cached). */
export async function allCategoryIds(db: Db): Promise<number[]> {
  const rows = await db.selectFrom('categories').select('id').orderBy('id').execute();
  return rows.map((r) => r.id);
}

const activeProductsIn = (categoryId: Expression<number>) =>
  sql<number>`(select count(*)::int from products x where x.category_id = ${categoryId} and x.is_active)`;

export interface CategoryRow {
  id: number;
  products_count: number;
  name: string;
  description: string;
  image: string | null;
  image_variants: StoredVariant[];
  is_active: boolean;
  created_at: string;
  updated_at: string;
}

/** A variant as stored with its image (`variants` jsonb): the key is a media storage key. */
export type StoredVariant = MediaVariant;

export async function countCategories(db: Db): Promise<number> {
  const row = await db.selectFrom('categories').select(sql<number>`count(*)::int`.as('n')).where('is_active', '=', true).executeTakeFirstOrThrow();
  return row.n;
}

function selectCategories(db: Db) {
  return db
    .selectFrom('categories as c')
    .select(['c.id', activeProductsIn(sql.ref('c.id')).as('products_count'), 'c.name', 'c.description', 'c.image', 'c.image_variants', 'c.is_active', 'c.created_at', 'c.updated_at']);
}

export async function listCategories(db: Db, limit: number, offset: number): Promise<CategoryRow[]> {
  return selectCategories(db).where('c.is_active', '=', true).orderBy('c.id').limit(limit).offset(offset).execute();
}

/** One category; inactive ones only when `activeOnly` is false (staff writes). */
export async function findCategory(db: Db, id: number, activeOnly = true): Promise<CategoryRow | undefined> {
  let qb = selectCategories(db).where('c.id', '=', id);
  if (activeOnly) qb = qb.where('c.is_active', '=', true);
  return qb.executeTakeFirst();
}

export interface ImageJson {
  id: number;
  image: string | null;
  image_url: string | null;
  alt_text: string;
  is_main: boolean;
  created_at: string;
  product: number;
  variants: StoredVariant[];
}

export interface ProductDetailRow {
  id: number;
  name: string;
  description: string;
  price: string;
  sku: string;
  stock_quantity: number;
  weight: string;
  dimensions: string;
  material: string;
  print_time: number;
  is_active: boolean;
  is_featured: boolean;
  low_stock_threshold: number;
  average_rating: string;
  review_count: number;
  created_at: string;
  updated_at: string;
  category: CategoryRow;
  images: ImageJson[];
  reviews: ReviewRowLike[];
}

/**
 * The whole product page (product, category, images, reviews) in one statement. Inactive
 * products only when `activeOnly` is false (staff writes). Reviews by deactivated accounts are
 * left out, as in the review list.
 */
export async function findProductDetail(db: Db, id: number, activeOnly = true): Promise<ProductDetailRow | undefined> {
  const { rows } = await sql<ProductDetailRow>`
    select p.id, p.name, p.description, p.price, p.sku, p.stock_quantity, p.weight, p.dimensions,
           p.material, p.print_time, p.is_active, p.is_featured, p.low_stock_threshold,
           p.average_rating, p.review_count, p.created_at, p.updated_at,
           json_build_object(
             'id', c.id, 'products_count', ${activeProductsIn(sql.ref('c.id'))}, 'name', c.name,
             'description', c.description, 'image', c.image, 'image_variants', c.image_variants, 'is_active', c.is_active,
             'created_at', c.created_at, 'updated_at', c.updated_at) as category,
           coalesce((select json_agg(json_build_object(
               'id', i.id, 'image', i.image, 'image_url', i.image_url, 'alt_text', i.alt_text,
               'is_main', i.is_main, 'created_at', i.created_at, 'product', i.product_id, 'variants', i.variants)
               order by i.is_main desc, i.id)
             from product_images i where i.product_id = p.id), '[]') as images,
           coalesce((select json_agg(json_build_object(
               'id', r.id, 'first_name', u.first_name, 'last_name', u.last_name, 'rating', r.rating,
               'review_text', r.review_text, 'is_verified_purchase', r.is_verified_purchase,
               'created_at', r.created_at, 'updated_at', r.updated_at, 'product', r.product_id,
               'user', r.user_id)
               order by r.created_at desc, r.id desc)
             from reviews r join users u on u.id = r.user_id and u.is_active where r.product_id = p.id), '[]') as reviews
      from products p
      join categories c on c.id = p.category_id
     where p.id = ${id} ${activeOnly ? sql`and p.is_active` : sql``}`.execute(db);
  return rows[0];
}

// Staff writes. Services run them in one transaction and pass its `trx`.

export type NewProduct = Insertable<ProductsTable>;
export type ProductUpdate = Updateable<ProductsTable>;
export type NewCategory = Insertable<CategoriesTable>;
export type CategoryUpdate = Updateable<CategoriesTable>;

const FACTS = ['id', 'category_id', 'is_active', 'is_featured', 'price', 'stock_quantity', 'low_stock_threshold', 'material', 'weight', 'print_time', 'name', 'description'] as const;

/**
 * The columns a cached page can depend on (ProductFacts); undefined when there is no such product.
 * With `lock`, the row is locked for the rest of the transaction, NO KEY UPDATE as everywhere a row
 * other rows point at is locked (payments.repository.ts, the lock order): a cart line or order item
 * inserted meanwhile only key-shares it, and need not wait for a staff edit.
 */
export async function productFacts(db: Db, id: number, lock = false): Promise<ProductFacts | undefined> {
  const qb = db.selectFrom('products').select(FACTS).where('id', '=', id);
  return lock ? qb.forNoKeyUpdate().executeTakeFirst() : qb.executeTakeFirst();
}

export async function lockCategory(db: Db, id: number): Promise<boolean> {
  return (await db.selectFrom('categories').select('id').where('id', '=', id).forNoKeyUpdate().executeTakeFirst()) !== undefined;
}

export async function categoryExists(db: Db, id: number): Promise<boolean> {
  return (await db.selectFrom('categories').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

export async function skuTaken(db: Db, sku: string, exceptId?: number): Promise<boolean> {
  let qb = db.selectFrom('products').select('id').where('sku', '=', sku);
  if (exceptId !== undefined) qb = qb.where('id', '<>', exceptId);
  return (await qb.executeTakeFirst()) !== undefined;
}

export async function categoryNameTaken(db: Db, name: string, exceptId?: number): Promise<boolean> {
  let qb = db.selectFrom('categories').select('id').where('name', '=', name);
  if (exceptId !== undefined) qb = qb.where('id', '<>', exceptId);
  return (await qb.executeTakeFirst()) !== undefined;
}

export async function insertProduct(db: Db, values: NewProduct): Promise<number> {
  return (await db.insertInto('products').values(values).returning('id').executeTakeFirstOrThrow()).id;
}

/** Applies `changes` and bumps updated_at (an empty change still counts). False when there is no such row. */
export async function updateProduct(db: Db, id: number, changes: ProductUpdate): Promise<boolean> {
  const r = await db.updateTable('products').set({ ...changes, updated_at: sql<string>`now()` }).where('id', '=', id).executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

export async function insertCategory(db: Db, values: NewCategory): Promise<number> {
  return (await db.insertInto('categories').values(values).returning('id').executeTakeFirstOrThrow()).id;
}

export async function updateCategory(db: Db, id: number, changes: CategoryUpdate): Promise<boolean> {
  const r = await db.updateTable('categories').set({ ...changes, updated_at: sql<string>`now()` }).where('id', '=', id).executeTakeFirst();
  return r.numUpdatedRows > 0n;
}
