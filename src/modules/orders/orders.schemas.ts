// Wire shapes of /api/orders/ (API-CONTRACT.md §2.4, with §4.2–3).
import { Type, type Static } from 'typebox';
import { DateTime, Decimal2, Nullable, OneOrMany } from '../../infra/http/schema.ts';

export const STATUSES = ['pending', 'processing', 'shipped', 'delivered', 'cancelled', 'refunded'] as const;

export const OrderSummary = Type.Object({
  id: Type.Integer(),
  order_number: Type.String(),
  status: Type.String(),
  status_display: Type.String(),
  fulfillment_method: Type.String(),
  total_amount: Decimal2,
  total_items: Type.Integer(),
  tracking_number: Type.String(),
  created_at: DateTime,
  updated_at: DateTime,
});
export type OrderSummary = Static<typeof OrderSummary>;

export const OrderPage = Type.Object({
  count: Type.Integer(),
  next: Nullable(Type.String()),
  previous: Nullable(Type.String()),
  results: Type.Array(OrderSummary),
  page_size: Type.Integer(),
  total_pages: Type.Integer(),
});

export const OrderItem = Type.Object({
  id: Type.Integer(),
  product: Nullable(Type.Integer()),
  product_name: Type.String(),
  product_sku: Type.String(),
  product_weight: Decimal2,
  product_image: Nullable(Type.String()),
  quantity: Type.Integer(),
  unit_price: Decimal2,
  total_price: Decimal2,
  total_weight: Decimal2,
});

export const History = Type.Object({
  id: Type.Integer(),
  status: Type.String(),
  notes: Type.String(),
  created_at: DateTime,
  created_by: Nullable(Type.Integer()),
  created_by_name: Type.String(),
});

export const OrderDetail = Type.Object({
  id: Type.Integer(),
  order_number: Type.String(),
  status: Type.String(),
  status_display: Type.String(),
  fulfillment_method: Type.String(),
  fulfillment_display: Type.String(),
  subtotal: Decimal2,
  discount_amount: Decimal2,
  tax_amount: Decimal2,
  shipping_cost: Decimal2,
  total_amount: Decimal2,
  shipping_name: Type.String(),
  shipping_email: Type.String(),
  shipping_phone: Type.String(),
  shipping_address: Type.String(),
  shipping_city: Type.String(),
  shipping_state: Type.String(),
  shipping_postal_code: Type.String(),
  shipping_country: Type.String(),
  billing_name: Type.String(),
  billing_email: Type.String(),
  billing_address: Type.String(),
  billing_city: Type.String(),
  billing_state: Type.String(),
  billing_postal_code: Type.String(),
  billing_country: Type.String(),
  tracking_number: Type.String(),
  shipstation_order_id: Type.String(),
  estimated_delivery: Nullable(Type.String({ description: 'YYYY-MM-DD' })),
  total_items: Type.Integer(),
  total_weight: Type.Number(),
  items: Type.Array(OrderItem),
  status_history: Type.Array(History),
  created_at: DateTime,
  updated_at: DateTime,
  shipped_at: Nullable(DateTime),
  delivered_at: Nullable(DateTime),
  // Staff only (customers get the contract's shape exactly): what the provider charged (null on
  // older orders), and whether the order is held for review because that differs from the total.
  amount_paid: Type.Optional(Nullable(Decimal2)),
  on_hold: Type.Optional(Type.Boolean()),
});
export type OrderDetail = Static<typeof OrderDetail>;

export const OrderTracking = Type.Object({
  order_number: Type.String(),
  status: Type.String(),
  status_display: Type.String(),
  tracking_number: Type.String(),
  estimated_delivery: Nullable(Type.String()),
  created_at: DateTime,
  shipped_at: Nullable(DateTime),
  delivered_at: Nullable(DateTime),
  items: Type.Array(Type.Object({ product_name: Type.String(), quantity: Type.Integer() })),
});
export type OrderTracking = Static<typeof OrderTracking>;

export const OrderListQuery = Type.Object({
  status: Type.Optional(OneOrMany(Type.String())),
  fulfillment_method: Type.Optional(Type.String()),
  tracking_number: Type.Optional(Type.String({ maxLength: 100 })),
  tracking_number__icontains: Type.Optional(Type.String({ maxLength: 100 })),
  created_after: Type.Optional(Type.String()),
  created_before: Type.Optional(Type.String()),
  start_date: Type.Optional(Type.String()),
  end_date: Type.Optional(Type.String()),
  min_total: Type.Optional(Type.String()),
  max_total: Type.Optional(Type.String()),
  search: Type.Optional(Type.String({ maxLength: 200 })),
  ordering: Type.Optional(Type.String()),
  page: Type.Optional(Type.String()),
  page_size: Type.Optional(Type.String({ description: 'Orders per page, 1-100 (default 10)' })),
  on_hold: Type.Optional(Type.String({ description: '`true`: only orders held for staff (paid amount differs from the total); `false`: none of them' })),
});
export type OrderListQuery = Static<typeof OrderListQuery>;

/** `status` is checked by the service so an unknown one gets DRF's "is not a valid choice". */
export const StatusBody = Type.Object({
  status: Type.Optional(Type.String({ maxLength: 50 })),
  notes: Type.Optional(Type.String({ maxLength: 2000 })),
  tracking_number: Type.Optional(Type.String({ maxLength: 100 })),
  estimated_delivery: Type.Optional(Nullable(Type.String({ format: 'date' }))),
});
export type StatusBody = Static<typeof StatusBody>;

export const TrackingParams = Type.Object({ tracking_number: Type.String({ minLength: 1, maxLength: 100 }) });
export const GuestTrackBody = Type.Object({ order_number: Type.Optional(Type.String({ maxLength: 100 })), email: Type.Optional(Type.String({ maxLength: 254 })) });
export const StatisticsQuery = Type.Object({ days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, default: 30 })) });

export const Statistics = Type.Object({
  total_orders: Type.Integer(),
  total_revenue: Type.Number(),
  average_order_value: Type.Number(),
  orders_by_status: Type.Array(Type.Object({ status: Type.String(), count: Type.Integer() })),
  orders_by_day: Type.Array(Type.Object({ day: Type.String(), count: Type.Integer() })),
});
