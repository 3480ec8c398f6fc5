// Wire shapes of the catalog (API-CONTRACT.md §2.2, with the §4 decisions), as TypeBox schemas:
// they validate input, serialise output (fast-json-stringify) and document the OpenAPI spec.
import { Type, type Static } from 'typebox';
import { DateTime, Decimal2, Nullable, OneOrMany, PageQuerySchema, Paginated } from '../../infra/http/schema.ts';
import { Review } from '../reviews/reviews.schemas.ts';

export const ProductCard = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  price: Decimal2,
  category_name: Type.String(),
  main_image: Nullable(Type.String()),
  is_in_stock: Type.Boolean(),
  is_featured: Type.Boolean(),
  average_rating: Type.Number({ description: 'Mean rating to one decimal; 0 without reviews' }),
  review_count: Type.Integer(),
});
export type ProductCard = Static<typeof ProductCard>;

export const Category = Type.Object({
  id: Type.Integer(),
  products_count: Type.Integer({ description: 'Active products in the category' }),
  name: Type.String(),
  description: Type.String(),
  image: Nullable(Type.String()),
  is_active: Type.Boolean(),
  created_at: DateTime,
  updated_at: DateTime,
});
export type Category = Static<typeof Category>;

export const ImageVariant = Type.Object({
  width: Type.Integer(),
  height: Type.Integer(),
  format: Type.String(),
  url: Type.String(),
});

export const ProductImage = Type.Object({
  id: Type.Integer(),
  image_display: Nullable(Type.String()),
  image: Nullable(Type.String()),
  image_url: Nullable(Type.String()),
  alt_text: Type.String(),
  is_main: Type.Boolean(),
  created_at: DateTime,
  product: Type.Integer(),
  variants: Type.Array(ImageVariant, { description: 'Optimised renditions for srcset (uploaded images)' }),
});
export type ProductImage = Static<typeof ProductImage>;

export const ProductDetail = Type.Object({
  id: Type.Integer(),
  category: Category,
  images: Type.Array(ProductImage),
  reviews: Type.Array(Review),
  average_rating: Type.Number(),
  review_count: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  price: Decimal2,
  sku: Type.String(),
  stock_quantity: Type.Integer(),
  weight: Decimal2,
  dimensions: Type.String(),
  material: Type.String(),
  print_time: Type.Integer({ description: 'Minutes' }),
  is_active: Type.Boolean(),
  is_featured: Type.Boolean(),
  created_at: DateTime,
  updated_at: DateTime,
  search_vector: Nullable(Type.String()),
  low_stock_threshold: Type.Integer(),
  category_name: Type.String(),
  main_image: Nullable(Type.String()),
  is_in_stock: Type.Boolean(),
});
export type ProductDetail = Static<typeof ProductDetail>;

export const ORDERINGS = ['price', '-price', 'created_at', '-created_at', 'name', '-name', 'average_rating', '-average_rating'] as const;

export const ProductListQuery = Type.Object({
  ...PageQuerySchema,
  category: Type.Optional(OneOrMany(Type.String({ description: 'Category id, or ids joined by commas' }))),
  is_featured: Type.Optional(Type.String({ description: 'true|false|1|0' })),
  min_price: Type.Optional(Type.Number({ minimum: 0 })),
  max_price: Type.Optional(Type.Number({ minimum: 0 })),
  in_stock: Type.Optional(Type.String({ description: '`true` keeps products in stock' })),
  ordering: Type.Optional(Type.String({ description: ORDERINGS.join(', ') + ' (others are ignored)' })),
  search: Type.Optional(Type.String({ maxLength: 200 })),
});
export type ProductListQuery = Static<typeof ProductListQuery>;

export const ProductCardPage = Paginated(ProductCard);
export const CategoryPage = Paginated(Category);
export const PageOnlyQuery = Type.Object(PageQuerySchema);
