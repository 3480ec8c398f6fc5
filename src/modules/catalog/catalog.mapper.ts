// Catalog rows to wire objects (the response schemas then serialise them).
import { apiTime, rating } from '../../infra/http/format.ts';
import type { MediaUrl } from '../../infra/http/urls.ts';
import { toReview } from '../reviews/reviews.mapper.ts';
import type { CategoryRow, ImageJson, ProductCardRow, ProductDetailRow, StoredVariant } from './catalog.repository.ts';
import type { Category, ImageVariant, ProductCard, ProductDetail, ProductImage } from './catalog.schemas.ts';

/** Stored variants with their URLs, smallest first and, per width, in the order browsers should prefer. */
export function toVariants(stored: readonly StoredVariant[] | undefined, media: MediaUrl): ImageVariant[] {
  if (!stored?.length) return [];
  return [...stored]
    .sort((a, b) => a.width - b.width || FORMAT_ORDER.indexOf(a.format) - FORMAT_ORDER.indexOf(b.format))
    .map((v) => ({ width: v.width, height: v.height, format: v.format, url: media(v.key)! }));
}

const FORMAT_ORDER = ['avif', 'webp', 'jpeg'];

/** An image's display URL: its external URL if it has one, else the stored file's URL. */
function displayUrl(imageUrl: string | null, file: string | null, media: MediaUrl): string | null {
  return imageUrl || media(file);
}

export function toProductCard(r: ProductCardRow, media: MediaUrl): ProductCard {
  return {
    id: r.id,
    name: r.name,
    price: r.price,
    category_name: r.category_name,
    main_image: displayUrl(r.main_image_url, r.main_image_file, media),
    is_in_stock: r.stock_quantity > 0,
    is_featured: r.is_featured,
    average_rating: rating(r.average_rating),
    review_count: r.review_count,
  };
}

export function toCategory(r: CategoryRow, media: MediaUrl): Category {
  return {
    id: r.id,
    products_count: r.products_count,
    name: r.name,
    description: r.description,
    image: media(r.image),
    image_variants: toVariants(r.image_variants, media),
    is_active: r.is_active,
    created_at: apiTime(r.created_at),
    updated_at: apiTime(r.updated_at),
  };
}

export function toProductImage(i: ImageJson, media: MediaUrl): ProductImage {
  return {
    id: i.id,
    image_display: displayUrl(i.image_url, i.image, media),
    image: media(i.image),
    image_url: i.image_url,
    alt_text: i.alt_text,
    is_main: i.is_main,
    created_at: apiTime(i.created_at),
    product: i.product,
    variants: toVariants(i.variants, media),
  };
}

export function toProductDetail(r: ProductDetailRow, media: MediaUrl): ProductDetail {
  const images = r.images.map((i) => toProductImage(i, media));
  const main = images.find((i) => i.is_main);
  return {
    id: r.id,
    category: toCategory(r.category, media),
    images,
    reviews: r.reviews.map(toReview),
    average_rating: rating(r.average_rating),
    review_count: r.review_count,
    name: r.name,
    description: r.description,
    price: r.price,
    sku: r.sku,
    stock_quantity: r.stock_quantity,
    weight: r.weight,
    dimensions: r.dimensions,
    material: r.material,
    print_time: r.print_time,
    is_active: r.is_active,
    is_featured: r.is_featured,
    created_at: apiTime(r.created_at),
    updated_at: apiTime(r.updated_at),
    search_vector: null,
    low_stock_threshold: r.low_stock_threshold,
    category_name: r.category.name,
    main_image: main ? main.image_display : null,
    is_in_stock: r.stock_quantity > 0,
  };
}
