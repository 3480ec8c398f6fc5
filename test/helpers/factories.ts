// Rows for tests, with sensible defaults and unique names.
import type { Db } from '../../src/db/database.ts';

let n = 0;
const next = () => ++n;

export async function category(db: Db, o: { name?: string; is_active?: boolean; description?: string } = {}) {
  return db.insertInto('categories').values({ name: o.name ?? `Category ${next()}`, is_active: o.is_active ?? true, description: o.description ?? '' }).returningAll().executeTakeFirstOrThrow();
}

export interface ProductOverrides {
  name?: string;
  description?: string;
  price?: string;
  category_id?: number;
  stock_quantity?: number;
  weight?: string;
  material?: string;
  print_time?: number;
  is_active?: boolean;
  is_featured?: boolean;
  low_stock_threshold?: number;
  created_at?: string;
}

export async function product(db: Db, o: ProductOverrides = {}) {
  const categoryId = o.category_id ?? (await category(db)).id;
  const i = next();
  return db
    .insertInto('products')
    .values({
      name: o.name ?? `Product ${i}`,
      description: o.description ?? '',
      price: o.price ?? '10.00',
      category_id: categoryId,
      sku: `SKU-${i}-${Math.random().toString(36).slice(2, 8)}`,
      stock_quantity: o.stock_quantity ?? 10,
      weight: o.weight ?? '100.00',
      material: o.material ?? 'PLA',
      print_time: o.print_time ?? 60,
      is_active: o.is_active ?? true,
      is_featured: o.is_featured ?? false,
      low_stock_threshold: o.low_stock_threshold ?? 5,
      ...(o.created_at ? { created_at: o.created_at, updated_at: o.created_at } : {}),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function user(db: Db, o: { first_name?: string; last_name?: string } = {}) {
  const i = next();
  return db
    .insertInto('users')
    .values({ email: `user${i}-${Math.random().toString(36).slice(2, 8)}@example.com`, username: `user${i}-${Math.random().toString(36).slice(2, 8)}`, first_name: o.first_name ?? 'Test', last_name: o.last_name ?? 'User', password: '!' })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function review(db: Db, productId: number, userId: number, rating = 5, created_at?: string) {
  return db
    .insertInto('reviews')
    .values({ product_id: productId, user_id: userId, rating, review_text: `Rated ${rating}`, ...(created_at ? { created_at, updated_at: created_at } : {}) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function image(db: Db, productId: number, o: { image_url?: string | null; image?: string | null; is_main?: boolean } = {}) {
  return db
    .insertInto('product_images')
    .values({ product_id: productId, image_url: o.image_url === undefined ? 'https://img.test/a.jpg' : o.image_url, image: o.image ?? null, is_main: o.is_main ?? false })
    .returningAll()
    .executeTakeFirstOrThrow();
}
