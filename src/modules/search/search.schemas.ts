import { Type, type Static } from 'typebox';
import { OneOrMany } from '../../infra/http/schema.ts';
import { ProductCard } from '../catalog/catalog.schemas.ts';

export const QuickSearchQuery = Type.Object({ q: Type.Optional(Type.String({ maxLength: 200 })) });
export const QuickSearchResult = Type.Object({ results: Type.Array(ProductCard), count: Type.Integer() });

export const SORTS = ['relevance', 'price_asc', 'price_desc', 'name_asc', 'name_desc', 'newest', 'oldest', 'rating', 'popularity'] as const;

const Money = Type.Number({ minimum: 0, maximum: 99999999.99 });
const CategoryIds = OneOrMany(Type.Integer({ minimum: 1, maximum: 2147483647 }));
const Materials = OneOrMany(Type.String({ maxLength: 100 }));

export const AdvancedSearchQuery = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 200 })),
  'category[]': Type.Optional(CategoryIds),
  category: Type.Optional(CategoryIds),
  min_price: Type.Optional(Money),
  max_price: Type.Optional(Money),
  stock: Type.Optional(Type.Union([Type.Literal('in_stock'), Type.Literal('low_stock'), Type.Literal('out_of_stock')])),
  'material[]': Type.Optional(Materials),
  material: Type.Optional(Materials),
  min_weight: Type.Optional(Money),
  max_weight: Type.Optional(Money),
  max_print_time: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647 })),
  featured: Type.Optional(Type.String({ description: '`true` keeps featured products' })),
  min_rating: Type.Optional(Type.Number({ minimum: 0, maximum: 5 })),
  sort: Type.Optional(Type.Union(SORTS.map((s) => Type.Literal(s)))),
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
});
export type AdvancedSearchQuery = Static<typeof AdvancedSearchQuery>;

const Range = Type.Object({ min: Type.Number(), max: Type.Number() });

export const Facets = Type.Object({
  categories: Type.Array(Type.Object({ id: Type.Integer(), name: Type.String(), count: Type.Integer() })),
  materials: Type.Array(Type.String()),
  material_counts: Type.Array(Type.Object({ name: Type.String(), count: Type.Integer() })),
  price_range: Range,
  weight_range: Range,
});
export type Facets = Static<typeof Facets>;

export const AdvancedSearchResult = Type.Object({
  results: Type.Array(ProductCard),
  count: Type.Integer(),
  page: Type.Integer(),
  per_page: Type.Integer(),
  total_pages: Type.Integer(),
  filters: Facets,
});
