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
  /** Tokens of sign-ins before this moment are refused (password changed or reset, account disabled): migration 020. */
  tokens_valid_after: string | null;
  /** The session that changed the password, kept past tokens_valid_after (migration 021). */
  tokens_kept_sid: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CategoriesTable {
  id: Generated<number>;
  name: string;
  description: Generated<string>;
  image: string | null;
  image_original: string | null;
  image_width: number | null;
  image_height: number | null;
  /** Written as JSON text; read as the parsed list. */
  image_variants: ColumnType<MediaVariant[], string | undefined, string>;
  is_active: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** One stored variant of an uploaded image (`variants` jsonb). */
export interface MediaVariant {
  width: number;
  height: number;
  format: string;
  key: string;
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
  original: string | null;
  width: number | null;
  height: number | null;
  variants: ColumnType<MediaVariant[], string | undefined, string>;
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

export interface PromotionCodesTable {
  id: Generated<number>;
  code: string;
  description: Generated<string>;
  discount_type: 'percentage' | 'fixed' | 'free_shipping';
  discount_value: Generated<string>;
  usage_type: Generated<'single' | 'limited' | 'unlimited'>;
  usage_limit: number | null;
  usage_limit_per_user: Generated<number>;
  valid_from: string;
  valid_until: string;
  is_active: Generated<boolean>;
  minimum_order_amount: Generated<string>;
  applicable_to_all: Generated<boolean>;
  first_order_only: Generated<boolean>;
  logged_in_only: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PromotionProductsTable {
  promotion_id: number;
  product_id: number;
}

export interface PromotionCategoriesTable {
  promotion_id: number;
  category_id: number;
}

export interface CampaignsTable {
  id: Generated<number>;
  name: string;
  description: Generated<string>;
  start_date: string;
  end_date: string;
  is_active: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CampaignCodesTable {
  campaign_id: number;
  promotion_id: number;
}

/** A checkout line as priced when the checkout started (money and weight as decimal strings). */
export interface CheckoutLine {
  product_id: number;
  name: string;
  sku: string;
  price: string;
  weight: string;
  quantity: number;
}

/** Where an order goes, as the payment provider or the shopper gave it. */
export interface CheckoutAddress {
  name: string;
  email: string;
  phone: string;
  address: string;
  city: string;
  state: string;
  postal_code: string;
  country: string;
}

export type CheckoutStatus = 'open' | 'complete' | 'expired' | 'failed';

export interface CheckoutsTable {
  id: Generated<number>;
  public_id: string | null;
  provider: string;
  status: Generated<CheckoutStatus>;
  cart_id: number | null;
  user_id: number | null;
  session_key: string | null;
  email: Generated<string>;
  fulfillment_method: Generated<'shipping' | 'pickup'>;
  lines: ColumnType<CheckoutLine[], string, string>;
  address: ColumnType<CheckoutAddress | null, string | null, string | null>;
  subtotal: string;
  discount_amount: Generated<string>;
  shipping_cost: Generated<string>;
  tax_amount: Generated<string>;
  total_amount: string;
  promotion_id: number | null;
  success_url: string;
  cancel_url: string;
  checkout_url: Generated<string>;
  payment_intent: string | null;
  idempotency_key: string | null;
  /** sha256 of the request that made the checkout (migration 013); null on older rows. */
  request_fingerprint: string | null;
  owner_key: string;
  order_id: number | null;
  expires_at: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface StockReservationsTable {
  checkout_id: number;
  product_id: number;
  quantity: number;
}

export type OrderStatus = 'pending' | 'processing' | 'shipped' | 'delivered' | 'cancelled' | 'refunded';

export interface OrdersTable {
  id: Generated<number>;
  order_number: string;
  user_id: number | null;
  session_key: string | null;
  checkout_id: number | null;
  status: Generated<OrderStatus>;
  fulfillment_method: Generated<'shipping' | 'pickup'>;
  subtotal: string;
  discount_amount: Generated<string>;
  tax_amount: Generated<string>;
  shipping_cost: Generated<string>;
  total_amount: string;
  promotion_id: number | null;
  shipping_name: Generated<string>;
  shipping_email: Generated<string>;
  shipping_phone: Generated<string>;
  shipping_address: Generated<string>;
  shipping_city: Generated<string>;
  shipping_state: Generated<string>;
  shipping_postal_code: Generated<string>;
  shipping_country: Generated<string>;
  billing_name: Generated<string>;
  billing_email: Generated<string>;
  billing_address: Generated<string>;
  billing_city: Generated<string>;
  billing_state: Generated<string>;
  billing_postal_code: Generated<string>;
  billing_country: Generated<string>;
  tracking_number: Generated<string>;
  shipstation_order_id: Generated<string>;
  estimated_delivery: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  shipped_at: string | null;
  delivered_at: string | null;
  /** What the provider charged (migration 013); null on older orders. */
  amount_paid: string | null;
  /** Held for staff: the amount paid differs from the total (migration 013). */
  on_hold: Generated<boolean>;
}

export interface OrderItemsTable {
  id: Generated<number>;
  order_id: number;
  product_id: number | null;
  product_name: string;
  product_sku: string;
  product_weight: string;
  unit_price: string;
  quantity: number;
  total_price: string;
  total_weight: string;
}

export interface OrderStatusHistoryTable {
  id: Generated<number>;
  order_id: number;
  status: string;
  notes: Generated<string>;
  created_by: number | null;
  created_at: Timestamp;
}

export interface PaymentsTable {
  id: Generated<number>;
  order_id: number;
  provider: string;
  payment_intent: string;
  amount: string;
  currency: Generated<string>;
  status: 'pending' | 'completed' | 'failed' | 'refunded';
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PaymentEventsTable {
  provider: string;
  event_id: string;
  type: string;
  processed_at: Timestamp;
}

export interface PromotionUsagesTable {
  id: Generated<number>;
  promotion_id: number;
  user_id: number | null;
  checkout_id: number | null;
  order_id: number | null;
  discount_amount: string;
  created_at: Timestamp;
}

export interface ProductRelationshipsTable {
  id: Generated<number>;
  product_id: number;
  related_product_id: number;
  relationship_type: 'similar' | 'complementary' | 'bundle' | 'upgrade';
  strength: Generated<string>;
  created_at: Timestamp;
}

export interface ProductViewsTable {
  id: Generated<number>;
  product_id: number;
  user_id: number | null;
  session_key: string | null;
  viewed_at: Timestamp;
}

export interface JobsTable {
  id: Generated<number>;
  queue: string;
  name: string;
  payload: ColumnType<unknown, string, string>;
  key: string | null;
  status: Generated<'waiting' | 'active' | 'completed' | 'failed'>;
  attempts: Generated<number>;
  max_attempts: Generated<number>;
  run_at: Generated<string>;
  locked_until: string | null;
  lease: string | null;
  last_error: string | null;
  created_at: Timestamp;
  finished_at: string | null;
}

export interface JobSchedulesTable {
  name: string;
  pattern: string;
  next_run_at: string;
  last_run_at: string | null;
}

export interface JobEffectsTable {
  key: string;
  /** When it was claimed, then when it was done (trimmed by age). */
  done_at: Timestamp;
  /** The job whose run claimed it. */
  job: string | null;
  /** Made at the first claim, kept by a takeover: the email's Message-ID. */
  ref: string | null;
  done: Generated<boolean>;
  /** The run holding the claim. */
  token: string | null;
  /** Renewed while the effect is under way. */
  claimed_at: Timestamp;
}

export interface LowStockAlertsTable {
  product_id: number;
  alerted_at: Timestamp;
  /** The digest job that named it. */
  job: string | null;
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
  promotion_codes: PromotionCodesTable;
  promotion_products: PromotionProductsTable;
  promotion_categories: PromotionCategoriesTable;
  campaigns: CampaignsTable;
  campaign_codes: CampaignCodesTable;
  checkouts: CheckoutsTable;
  stock_reservations: StockReservationsTable;
  orders: OrdersTable;
  order_items: OrderItemsTable;
  order_status_history: OrderStatusHistoryTable;
  payments: PaymentsTable;
  payment_events: PaymentEventsTable;
  promotion_usages: PromotionUsagesTable;
  product_relationships: ProductRelationshipsTable;
  product_views: ProductViewsTable;
  jobs: JobsTable;
  job_schedules: JobSchedulesTable;
  job_effects: JobEffectsTable;
  low_stock_alerts: LowStockAlertsTable;
}
