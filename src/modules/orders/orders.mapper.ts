// Order rows to the contract's shapes (API-CONTRACT.md §2.4).
import { apiTime } from '../../infra/http/format.ts';
import type { MediaUrl } from '../../infra/http/urls.ts';
import type { OrderDetailRow, OrderSummaryRow } from './orders.repository.ts';
import type { OrderDetail, OrderSummary, OrderTracking } from './orders.schemas.ts';

const STATUS_DISPLAY: Record<string, string> = {
  pending: 'Pending',
  processing: 'Processing',
  shipped: 'Shipped',
  delivered: 'Delivered',
  cancelled: 'Cancelled',
  refunded: 'Refunded',
};
const FULFILLMENT_DISPLAY: Record<string, string> = { shipping: 'Shipping', pickup: 'Local Pickup' };

export function toOrderSummary(r: OrderSummaryRow): OrderSummary {
  return {
    id: Number(r.id),
    order_number: r.order_number,
    status: r.status,
    status_display: STATUS_DISPLAY[r.status] ?? r.status,
    fulfillment_method: r.fulfillment_method,
    total_amount: r.total_amount,
    total_items: r.total_items,
    tracking_number: r.tracking_number,
    created_at: apiTime(r.created_at),
    updated_at: apiTime(r.updated_at),
  };
}

/**
 * Who made a change: "System" for the shop itself, else the staff member's "First Last". A
 * customer never sees a staff member's email (a blank name shows as "Staff"); staff see it, to
 * tell colleagues apart.
 */
function byName(h: OrderDetailRow['history'][number], viewerIsStaff: boolean): string {
  if (h.created_by === null) return 'System';
  const full = [h.first_name, h.last_name].filter(Boolean).join(' ').trim();
  return full || (viewerIsStaff && h.email) || 'Staff';
}

/** `viewerIsStaff`: the order is shown to staff (else to its customer, who sees no staff emails). */
export function toOrderDetail(r: OrderDetailRow, media: MediaUrl, viewerIsStaff: boolean): OrderDetail {
  return {
    id: Number(r.id),
    order_number: r.order_number,
    status: r.status,
    status_display: STATUS_DISPLAY[r.status] ?? r.status,
    fulfillment_method: r.fulfillment_method,
    fulfillment_display: FULFILLMENT_DISPLAY[r.fulfillment_method] ?? r.fulfillment_method,
    subtotal: r.subtotal,
    discount_amount: r.discount_amount,
    tax_amount: r.tax_amount,
    shipping_cost: r.shipping_cost,
    total_amount: r.total_amount,
    shipping_name: r.shipping_name,
    shipping_email: r.shipping_email,
    shipping_phone: r.shipping_phone,
    shipping_address: r.shipping_address,
    shipping_city: r.shipping_city,
    shipping_state: r.shipping_state,
    shipping_postal_code: r.shipping_postal_code,
    shipping_country: r.shipping_country,
    billing_name: r.billing_name,
    billing_email: r.billing_email,
    billing_address: r.billing_address,
    billing_city: r.billing_city,
    billing_state: r.billing_state,
    billing_postal_code: r.billing_postal_code,
    billing_country: r.billing_country,
    tracking_number: r.tracking_number,
    shipstation_order_id: r.shipstation_order_id,
    estimated_delivery: r.estimated_delivery,
    total_items: r.total_items,
    total_weight: Number(r.total_weight),
    items: r.items.map((i) => ({
      id: i.id,
      product: i.product,
      product_name: i.product_name,
      product_sku: i.product_sku,
      product_weight: i.product_weight,
      product_image: media(i.main_image_url ?? i.main_image_file),
      quantity: i.quantity,
      unit_price: i.unit_price,
      total_price: i.total_price,
      total_weight: i.total_weight,
    })),
    status_history: r.history.map((h) => ({ id: h.id, status: h.status, notes: h.notes, created_at: apiTime(h.created_at), created_by: h.created_by, created_by_name: byName(h, viewerIsStaff) })),
    created_at: apiTime(r.created_at),
    updated_at: apiTime(r.updated_at),
    shipped_at: apiTime(r.shipped_at),
    delivered_at: apiTime(r.delivered_at),
    ...(viewerIsStaff ? { amount_paid: r.amount_paid, on_hold: r.on_hold } : {}),
  };
}

export function toOrderTracking(r: OrderDetailRow): OrderTracking {
  return {
    order_number: r.order_number,
    status: r.status,
    status_display: STATUS_DISPLAY[r.status] ?? r.status,
    tracking_number: r.tracking_number,
    estimated_delivery: r.estimated_delivery,
    created_at: apiTime(r.created_at),
    shipped_at: apiTime(r.shipped_at),
    delivered_at: apiTime(r.delivered_at),
    items: r.items.map((i) => ({ product_name: i.product_name, quantity: i.quantity })),
  };
}
