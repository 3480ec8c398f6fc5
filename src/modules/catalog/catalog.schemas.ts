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

export const ImageVariant = Type.Object({
  width: Type.Integer(),
  height: Type.Integer(),
  format: Type.String({ description: 'webp, jpeg or avif (AVIF follows a few seconds after upload)' }),
  url: Type.String(),
});
export type ImageVariant = Static<typeof ImageVariant>;

export const Category = Type.Object({
  id: Type.Integer(),
  products_count: Type.Integer({ description: 'Active products in the category' }),
  name: Type.String(),
  description: Type.String(),
  image: Nullable(Type.String()),
  image_variants: Type.Array(ImageVariant, { description: 'Optimised renditions of the uploaded image for srcset' }),
  is_active: Type.Boolean(),
  created_at: DateTime,
  updated_at: DateTime,
});
export type Category = Static<typeof Category>;

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

// Staff writes. Unknown keys pass validation (no additionalProperties: false), so services pick
// the fields they own and read-only ones (id, review_count, timestamps…) are ignored.
const Int32 = (description?: string) => Type.Integer({ minimum: 0, maximum: 2147483647, ...(description ? { description } : {}) });
// One type list rather than a union, so a wrong type gets one clear message, not one per branch.
const DecimalInput = (description: string) =>
  Type.Unsafe<string | number>({ type: ['string', 'number'], maxLength: 40, description: `${description}: a decimal string or number, at most 2 places, 0 to 99999999.99` });

const ProductFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Type.String({ maxLength: 100_000 })),
  price: DecimalInput('Price'),
  category: Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Id of an existing category' }),
  category_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Alias of `category`' })),
  sku: Type.String({ minLength: 1, maxLength: 100, description: 'Unique' }),
  stock_quantity: Type.Optional(Int32()),
  weight: Type.Optional(DecimalInput('Weight in grams')),
  dimensions: Type.Optional(Type.String({ maxLength: 100 })),
  material: Type.Optional(Type.String({ maxLength: 100 })),
  print_time: Type.Optional(Int32('Minutes')),
  is_active: Type.Optional(Type.Boolean()),
  is_featured: Type.Optional(Type.Boolean()),
  low_stock_threshold: Type.Optional(Int32('Stock at or below this (and above 0) is low')),
};
/** POST and PUT: name, price, category and sku required; fields left out keep their value (PUT) or default (POST). */
export const ProductBody = Type.Object(ProductFields);
export type ProductInput = Static<typeof ProductBody>;
export const ProductPatch = Type.Partial(Type.Object(ProductFields));
export type ProductChanges = Static<typeof ProductPatch>;

const CategoryFields = {
  name: Type.String({ minLength: 1, maxLength: 100, description: 'Unique' }),
  description: Type.Optional(Type.String({ maxLength: 100_000 })),
  is_active: Type.Optional(Type.Boolean()),
};
export const CategoryBody = Type.Object(CategoryFields);
export type CategoryInput = Static<typeof CategoryBody>;
export const CategoryPatch = Type.Partial(Type.Object(CategoryFields));
export type CategoryChanges = Static<typeof CategoryPatch>;


export const LowStockResult = Type.Object({ results: Type.Array(ProductCard), count: Type.Integer() });
export type LowStockResult = Static<typeof LowStockResult>;

/** The contract's ad-hoc error shape, e.g. `{"error":"Permission denied"}`. */

