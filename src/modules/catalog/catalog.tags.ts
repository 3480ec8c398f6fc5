// What a cached catalog answer depends on, and what a write changes, in one vocabulary, so a write
// drops only the answers whose bytes it can change (issue 22):
//
// - `product:ID`: the product's own page (every field, its reviews); any write to the product.
// - `card:ID`: pages that hold the product's card; a write to a field the card shows.
// - `q:DIM` and `q:DIM@CATEGORY`: pages whose membership, order or count depends on the product
//   property DIM (a filter or an ordering on it), over the whole catalog or within a category.
//
// A page names its query's dimensions and its cards once it is made (ctx.shows). The tables below
// are typed over ProductFilter, ProductSort and ProductCard, so a new filter, ordering or card
// field does not compile until it says which dimension it reads.
import { Tags } from '../../infra/cache/keys.ts';
import type { ProductFacts, StockMove } from '../../infra/events.ts';
import type { ProductFilter, ProductSort } from './catalog.repository.ts';
import type { ProductCard } from './catalog.schemas.ts';

/** A property of a product that a page's membership, order, count or card can depend on. */
export type Dim =
  | 'member' // whether the product is listed at all (exists and is active), and in which category
  | 'category'
  | 'featured'
  | 'price'
  | 'in_stock' // stock above zero
  | 'low_stock' // stock above zero and at most the low-stock threshold
  | 'stock' // the exact count
  | 'material'
  | 'weight'
  | 'print_time'
  | 'rating'
  | 'reviews'
  | 'text' // what full-text and trigram search read: name, description, category name, material
  | 'name'
  | 'image';

const FILTER_DIMS: { [K in keyof Required<ProductFilter>]: (f: ProductFilter) => Dim[] } = {
  categoryIds: () => [], // a scope, see scoped()
  featured: () => ['featured'],
  minPrice: () => ['price'],
  maxPrice: () => ['price'],
  stock: (f) => (f.stock === 'low_stock' ? ['low_stock'] : ['in_stock']),
  materials: () => ['material'],
  minWeight: () => ['weight'],
  maxWeight: () => ['weight'],
  maxPrintTime: () => ['print_time'],
  minRating: () => ['rating'],
  text: () => ['text'],
};

const SORT_DIMS: Record<ProductSort, Dim[]> = {
  newest: [], // created_at never changes
  oldest: [],
  price_asc: ['price'],
  price_desc: ['price'],
  name_asc: ['name'],
  name_desc: ['name'],
  rating_asc: ['rating'],
  rating_desc: ['rating'],
  popularity: ['reviews'],
  relevance: ['text'],
  stock_asc: ['stock'],
};

/** What each field of a card shows (catalog.mapper toProductCard). */
const CARD_FIELDS: Record<keyof ProductCard, Dim> = {
  id: 'member',
  name: 'name',
  price: 'price',
  category_name: 'category',
  main_image: 'image',
  is_in_stock: 'in_stock',
  is_featured: 'featured',
  average_rating: 'rating',
  review_count: 'reviews',
};
const CARD_DIMS: ReadonlySet<Dim> = new Set(Object.values(CARD_FIELDS));

/**
 * Dimensions whose writers know the product's category, so a page within categories depends on
 * them there only. Reviews and images are written without it: pages depend on those catalog-wide.
 */
const UNSCOPED: ReadonlySet<Dim> = new Set(['category', 'rating', 'reviews', 'image']);

function queryTag(dim: Dim, category?: number): string {
  return category === undefined ? `q:${dim}` : `q:${dim}@${category}`;
}

/**
 * The tags of a page of products matching `filter` in `sort` order, beyond its cards'. Extra
 * dimensions are for what the page shows besides its cards (search facets).
 */
export function queryTags(filter: ProductFilter, sort: ProductSort, extra: Dim[] = []): string[] {
  const dims = new Set<Dim>(['member', ...SORT_DIMS[sort], ...extra]);
  for (const key of Object.keys(filter) as (keyof ProductFilter)[]) {
    if (filter[key] !== undefined) for (const d of FILTER_DIMS[key](filter)) dims.add(d);
  }
  const scope = filter.categoryIds?.length ? filter.categoryIds : undefined;
  const tags: string[] = [];
  for (const d of dims) {
    if (!scope || UNSCOPED.has(d)) tags.push(queryTag(d));
    else for (const c of scope) tags.push(queryTag(d, c));
  }
  return tags;
}

/** The tags of the cards a page holds. */
export function cardTags(cards: readonly { id: number }[]): string[] {
  return cards.map((c) => Tags.card(c.id));
}

const isLow = (p: Pick<ProductFacts, 'stock_quantity' | 'low_stock_threshold'>) => p.stock_quantity > 0 && p.stock_quantity <= p.low_stock_threshold;

/** The dimensions a write moved, from the product's row before and after it (undefined: not listed). */
export function changedDims(before: ProductFacts | undefined, after: ProductFacts | undefined): Set<Dim> {
  const a = before?.is_active ? before : undefined;
  const b = after?.is_active ? after : undefined;
  const dims = new Set<Dim>();
  if (!a || !b) {
    // Listed or unlisted: every page its filters match gains or loses it (and their counts).
    if (a || b) dims.add('member');
    return dims;
  }
  if (a.category_id !== b.category_id) dims.add('member').add('category').add('text');
  if (a.is_featured !== b.is_featured) dims.add('featured');
  if (Number(a.price) !== Number(b.price)) dims.add('price');
  if (a.stock_quantity !== b.stock_quantity) dims.add('stock');
  if (a.stock_quantity > 0 !== b.stock_quantity > 0) dims.add('in_stock');
  if (isLow(a) !== isLow(b)) dims.add('low_stock');
  if (a.material !== b.material) dims.add('material').add('text');
  if (Number(a.weight) !== Number(b.weight)) dims.add('weight');
  if (a.print_time !== b.print_time) dims.add('print_time');
  if (a.name !== b.name) dims.add('name').add('text');
  if (a.description !== b.description) dims.add('text');
  return dims;
}

/**
 * The tags a write to one product drops: its own page always (it shows every field), the pages
 * holding its card when a shown field moved, and the pages whose queries read a moved dimension
 * in the categories it was and is in. `categories` are the categories concerned when they are
 * not in facts (a review's or an image's writer does not know them; their dimensions are
 * catalog-wide).
 */
export function writeTags(id: number, dims: ReadonlySet<Dim>, categories: readonly number[]): string[] {
  const tags = [Tags.product(id)];
  if ([...dims].some((d) => CARD_DIMS.has(d))) tags.push(Tags.card(id), Tags.PRODUCTS);
  for (const d of dims) {
    tags.push(queryTag(d));
    if (!UNSCOPED.has(d)) for (const c of new Set(categories)) tags.push(queryTag(d, c));
  }
  if (dims.has('member')) {
    // Category pages count their active products; a product's page shows its category's count.
    tags.push(Tags.CATEGORY_COUNTS, ...[...new Set(categories)].map((c) => Tags.categoryCount(c)));
  }
  return tags;
}

/** writeTags from the product's row before and after the write. */
export function productWriteTags(before: ProductFacts | undefined, after: ProductFacts | undefined): string[] {
  const id = (before ?? after)!.id;
  const categories = [before?.category_id, after?.category_id].filter((c) => c !== undefined);
  return writeTags(id, changedDims(before, after), categories);
}

export function stockMoveTags(m: StockMove): string[] {
  const low = (stock_quantity: number) => isLow({ stock_quantity, low_stock_threshold: m.low_stock_threshold });
  const dims = new Set<Dim>();
  if (m.before !== m.after) dims.add('stock');
  if (m.before > 0 !== m.after > 0) dims.add('in_stock');
  if (low(m.before) !== low(m.after)) dims.add('low_stock');
  return writeTags(m.id, dims, [m.category_id]);
}
