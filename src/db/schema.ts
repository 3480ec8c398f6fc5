// Row types of the shop's tables, as the database drivers return them: ids and counts as
// numbers, money and weight (`numeric`) as exact decimal strings, timestamps as the server's
// UTC text (microseconds kept; see `apiTime`).
import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<string, string | undefined, string>;
type ReadOnly<T> = ColumnType<T, never, never>;

export interface UsersTable {
  id: Generated<number>;
  email: string;
  username: string;
  first_name: string;
  last_name: string;
  phone: Generated<string>;
  date_of_birth: string | null;
  newsletter_subscription: Generated<boolean>;
  password: string;
  is_staff: Generated<boolean>;
  is_active: Generated<boolean>;
  last_login: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CategoriesTable {
  id: Generated<number>;
  name: string;
  description: Generated<string>;
  image: string | null;
  is_active: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ProductsTable {
  id: Generated<number>;
  name: string;
  description: Generated<string>;
  price: string;
  category_id: number;
  sku: string;
  stock_quantity: Generated<number>;
  weight: Generated<string>;
  dimensions: Generated<string>;
  material: Generated<string>;
  print_time: Generated<number>;
  is_active: Generated<boolean>;
  is_featured: Generated<boolean>;
  low_stock_threshold: Generated<number>;
  review_count: Generated<number>;
  rating_total: Generated<number>;
  average_rating: ReadOnly<string>;
  search_vector: ReadOnly<string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ProductImagesTable {
  id: Generated<number>;
  product_id: number;
  image: string | null;
  image_url: string | null;
  alt_text: Generated<string>;
  is_main: Generated<boolean>;
  created_at: Timestamp;
}

export interface ReviewsTable {
  id: Generated<number>;
  product_id: number;
  user_id: number;
  rating: number;
  review_text: string;
  is_verified_purchase: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AddressesTable {
  id: Generated<number>;
  user_id: number;
  address_type: 'shipping' | 'billing';
  street_address: string;
  apartment: Generated<string>;
  city: string;
  state: string;
  postal_code: string;
  country: string;
  is_default: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** Carts and wishlists share this shape: owned by a user or by a guest session key. */
export interface OwnedListTable {
  id: Generated<number>;
  user_id: number | null;
  session_key: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CartItemsTable {
  id: Generated<number>;
  cart_id: number;
  product_id: number;
  quantity: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WishlistItemsTable {
  id: Generated<number>;
  wishlist_id: number;
  product_id: number;
  created_at: Timestamp;
}

export interface NewsletterSubscribersTable {
  id: Generated<number>;
  email: string;
  is_subscribed: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface KvEntriesTable {
  store: string;
  key: string;
  value: string;
  expires_at: string;
}

export interface SchemaMigrationsTable {
  version: string;
  applied_at: Timestamp;
}

export interface DB {
  users: UsersTable;
  categories: CategoriesTable;
  products: ProductsTable;
  product_images: ProductImagesTable;
  reviews: ReviewsTable;
  addresses: AddressesTable;
  carts: OwnedListTable;
  cart_items: CartItemsTable;
  wishlists: OwnedListTable;
  wishlist_items: WishlistItemsTable;
  newsletter_subscribers: NewsletterSubscribersTable;
  kv_entries: KvEntriesTable;
  schema_migrations: SchemaMigrationsTable;
}
