// All order SQL. An order's detail (items, history, totals) is one statement; lists are two (the
// count and the page) whatever the page size.
import { randomUUID } from 'node:crypto';
import { sql, type Insertable, type Selectable } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { CheckoutLine, OrdersTable, OrderStatus } from '../../db/schema.ts';
import type { Publish } from '../../infra/events.ts';
import { fromCents, toCents } from '../../infra/money.ts';
import { giveStock, stockChanged, takeStock } from '../catalog/stock.repository.ts';
import type { StockMove } from '../../infra/events.ts';

export type OrderRow = Selectable<OrdersTable>;

/** 12 upper-case hex characters, the first 12 of a random UUID (§3). */
export function newOrderNumber(): string {
  return randomUUID().replaceAll('-', '').slice(0, 12).toUpperCase();
}

export interface NewOrder {
  order: Omit<Insertable<OrdersTable>, 'order_number'>;
  lines: readonly CheckoutLine[];
  history: { status: OrderStatus; notes: string; created_by?: number | null }[];
}

/** Inserts an order with its item snapshots and first history rows; returns its id. */
export async function insertOrder(trx: Db, o: NewOrder): Promise<number> {
  const { id } = await trx
    .insertInto('orders')
    .values({ ...o.order, order_number: newOrderNumber() })
    .returning('id')
    .executeTakeFirstOrThrow();
  if (o.lines.length) await trx
    .insertInto('order_items')
    .values(
      o.lines.map((l) => ({
        order_id: id,
        product_id: l.product_id,
        product_name: l.name,
        product_sku: l.sku,
        product_weight: l.weight,
        unit_price: l.price,
        quantity: l.quantity,
        total_price: fromCents(toCents(l.price) * l.quantity),
        total_weight: fromCents(toCents(l.weight) * l.quantity),
      })),
    )
    .execute();
  // History rows one after another, so "newest first" is also id order.
  for (const h of o.history) await trx.insertInto('order_status_history').values({ order_id: id, status: h.status, notes: h.notes, created_by: h.created_by ?? null }).execute();
  return id;
}

/**
 * Lock order 4 (see payments.repository.ts): after the payment, before the products it restocks.
 * NO KEY UPDATE: history rows and payments inserted meanwhile (KEY SHARE on the order) do not wait.
 */
export async function lockOrder(trx: Db, id: number): Promise<OrderRow | undefined> {
  return trx.selectFrom('orders').selectAll().where('id', '=', id).forNoKeyUpdate().executeTakeFirst();
}

export async function orderItems(db: Db, orderId: number): Promise<{ product_id: number | null; quantity: number }[]> {
  const rows = await db.selectFrom('order_items').select(['product_id', 'quantity']).where('order_id', '=', orderId).orderBy('id').execute();
  return rows.map((r) => ({ product_id: r.product_id === null ? null : Number(r.product_id), quantity: r.quantity }));
}

/** Puts an order's quantities back on the shelf (products deleted since are skipped). */
export async function restock(trx: Db, orderId: number): Promise<StockMove[]> {
  return giveStock(trx, await orderItems(trx, orderId));
}

/** Takes an order's quantities off the shelf again, all or nothing; the first short product otherwise. */
export async function retake(trx: Db, orderId: number): Promise<{ ok: true; moves: StockMove[] } | { ok: false; name: string; left: number }> {
  const items = await trx
    .selectFrom('order_items as oi')
    .innerJoin('products as p', 'p.id', 'oi.product_id')
    .select(['oi.product_id', 'oi.quantity', 'p.name'])
    .where('oi.order_id', '=', orderId)
    .orderBy('oi.product_id')
    .execute();
  const moves: StockMove[] = [];
  for (const i of items) {
    // Whatever the product's state now, as before (issue 24 settles whether a reopened order may
    // take stock of a product deactivated since).
    const m = await takeStock(trx, Number(i.product_id), i.quantity, true);
    if (!m) {
      const left = await trx.selectFrom('products').select('stock_quantity').where('id', '=', i.product_id!).executeTakeFirst();
      return { ok: false, name: i.name, left: left?.stock_quantity ?? 0 };
    }
    moves.push(m);
  }
  return { ok: true, moves };
}

export async function addHistory(trx: Db, orderId: number, status: OrderStatus, notes: string, createdBy: number | null): Promise<void> {
  await trx.insertInto('order_status_history').values({ order_id: orderId, status, notes, created_by: createdBy }).execute();
}

/**
 * A payment the provider reports as failed after its order was made and before it succeeded:
 * the payment is marked failed and the order cancelled, its stock restored (§4.15).
 */
export async function failPayment(trx: Db, publish: Publish, provider: string, paymentIntent: string): Promise<void> {
  // Lock order (payments.repository.ts): the payment, then its order, then the products restocked.
  const payment = await trx.selectFrom('payments').select(['id', 'order_id', 'status']).where('provider', '=', provider).where('payment_intent', '=', paymentIntent).forNoKeyUpdate().executeTakeFirst();
  // A declined card is retried on the same payment intent: a failure reported for a payment that
  // has since succeeded (events arrive in any order) changes nothing.
  if (!payment || payment.status === 'completed') return;
  await trx.updateTable('payments').set({ status: 'failed', updated_at: new Date().toISOString() }).where('id', '=', payment.id).execute();
  const order = await lockOrder(trx, Number(payment.order_id));
  if (!order || order.status === 'cancelled' || order.status === 'refunded') return;
  const moves = await restock(trx, order.id);
  await trx.updateTable('orders').set({ status: 'cancelled', updated_at: new Date().toISOString() }).where('id', '=', order.id).execute();
  await addHistory(trx, order.id, 'cancelled', 'Payment failed', null);
  publish('order.status_changed', { id: order.id, userId: order.user_id, from: order.status, to: 'cancelled' });
  if (moves.length) publish('stock.changed', stockChanged(moves));
}

export interface OrderFilter {
  userId?: number;
  status?: OrderStatus[];
  fulfillment_method?: string;
  tracking_number?: string;
  tracking_contains?: string;
  created_after?: string;
  created_before?: string;
  min_total?: string;
  max_total?: string;
  search?: string;
  /** Held for staff (the amount paid differs from the total). */
  on_hold?: boolean;
  ordering?: { column: 'created_at' | 'total_amount' | 'status'; desc: boolean };
}

function filtered(db: Db, f: OrderFilter) {
  let q = db.selectFrom('orders as o');
  if (f.userId !== undefined) q = q.where('o.user_id', '=', f.userId);
  if (f.status?.length) q = q.where('o.status', 'in', f.status);
  if (f.fulfillment_method) q = q.where('o.fulfillment_method', '=', f.fulfillment_method as 'shipping');
  if (f.tracking_number !== undefined) q = q.where('o.tracking_number', '=', f.tracking_number);
  if (f.tracking_contains) q = q.where(sql<boolean>`o.tracking_number ilike ${`%${escapeLike(f.tracking_contains)}%`}`);
  if (f.created_after) q = q.where('o.created_at', '>=', f.created_after);
  if (f.created_before) q = q.where('o.created_at', '<=', f.created_before);
  if (f.on_hold !== undefined) q = q.where('o.on_hold', '=', f.on_hold);
  if (f.min_total) q = q.where('o.total_amount', '>=', f.min_total);
  if (f.max_total) q = q.where('o.total_amount', '<=', f.max_total);
  if (f.search) {
    const like = `%${escapeLike(f.search)}%`;
    q = q.where(sql<boolean>`(o.order_number ilike ${like} or o.shipping_name ilike ${like} or o.shipping_email ilike ${like} or o.billing_email ilike ${like})`);
  }
  return q;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export interface OrderSummaryRow {
  id: number;
  order_number: string;
  status: OrderStatus;
  fulfillment_method: 'shipping' | 'pickup';
  total_amount: string;
  total_items: number;
  tracking_number: string;
  created_at: string;
  updated_at: string;
}

export async function countOrders(db: Db, f: OrderFilter): Promise<number> {
  const r = await filtered(db, f).select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
  return r.n;
}

export async function listOrders(db: Db, f: OrderFilter, limit: number, offset: number): Promise<OrderSummaryRow[]> {
  const order = f.ordering ?? { column: 'created_at', desc: true };
  return filtered(db, f)
    .select(['o.id', 'o.order_number', 'o.status', 'o.fulfillment_method', 'o.tracking_number', 'o.created_at', 'o.updated_at'])
    .select(sql<string>`o.total_amount::text`.as('total_amount'))
    .select(sql<number>`(select coalesce(sum(oi.quantity), 0)::int from order_items oi where oi.order_id = o.id)`.as('total_items'))
    .orderBy(`o.${order.column}`, order.desc ? 'desc' : 'asc')
    .orderBy('o.id', order.desc ? 'desc' : 'asc')
    .limit(limit)
    .offset(offset)
    .execute() as Promise<OrderSummaryRow[]>;
}

export interface OrderItemJson {
  id: number;
  product: number | null;
  product_name: string;
  product_sku: string;
  product_weight: string;
  main_image_url: string | null;
  main_image_file: string | null;
  quantity: number;
  unit_price: string;
  total_price: string;
  total_weight: string;
}

export interface HistoryJson {
  id: number;
  status: string;
  notes: string;
  created_at: string;
  created_by: number | null;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
}

export type OrderDetailRow = Omit<OrderRow, 'subtotal' | 'discount_amount' | 'tax_amount' | 'shipping_cost' | 'total_amount' | 'amount_paid'> & {
  amount_paid: string | null;
  subtotal: string;
  discount_amount: string;
  tax_amount: string;
  shipping_cost: string;
  total_amount: string;
  estimated_delivery: string | null;
  total_items: number;
  total_weight: string;
  items: OrderItemJson[];
  history: HistoryJson[];
};

/** One order with its items and history, newest history first: one statement. */
export async function orderDetail(db: Db, where: { id: number } | { tracking_number: string } | { order_number: string; email: string }): Promise<OrderDetailRow | undefined> {
  const cond =
    'id' in where
      ? sql`o.id = ${where.id}`
      : 'tracking_number' in where
        ? sql`o.tracking_number = ${where.tracking_number} and o.tracking_number <> ''`
        : sql`o.order_number = upper(${where.order_number}) and (lower(o.shipping_email) = lower(${where.email}) or lower(o.billing_email) = lower(${where.email}))`;
  const { rows } = await sql<OrderDetailRow>`
    select o.*, o.subtotal::text as subtotal, o.discount_amount::text as discount_amount, o.tax_amount::text as tax_amount,
           o.shipping_cost::text as shipping_cost, o.total_amount::text as total_amount, o.estimated_delivery::text as estimated_delivery,
           o.amount_paid::text as amount_paid,
           coalesce((select sum(quantity)::int from order_items where order_id = o.id), 0) as total_items,
           coalesce((select sum(total_weight)::text from order_items where order_id = o.id), '0') as total_weight,
           coalesce((select json_agg(json_build_object(
               'id', oi.id, 'product', oi.product_id, 'product_name', oi.product_name, 'product_sku', oi.product_sku,
               'product_weight', oi.product_weight::text, 'quantity', oi.quantity, 'unit_price', oi.unit_price::text,
               'total_price', oi.total_price::text, 'total_weight', oi.total_weight::text,
               'main_image_url', mi.image_url, 'main_image_file', mi.image) order by oi.id)
             from order_items oi
             left join lateral (select image_url, image from product_images where product_id = oi.product_id and is_main order by id limit 1) mi on true
             where oi.order_id = o.id), '[]') as items,
           coalesce((select json_agg(json_build_object(
               'id', h.id, 'status', h.status, 'notes', h.notes, 'created_at', h.created_at, 'created_by', h.created_by,
               'first_name', u.first_name, 'last_name', u.last_name, 'email', u.email) order by h.id desc)
             from order_status_history h left join users u on u.id = h.created_by
             where h.order_id = o.id), '[]') as history
    from orders o where ${cond}
    order by o.id desc limit 1`.execute(db);
  return rows[0];
}

export interface Statistics {
  total_orders: number;
  total_revenue: string | null;
  paid_orders: number;
  by_status: { status: string; count: number }[];
  by_day: { day: string; count: number }[];
}

/** Orders of the last `days` days: counts, revenue (paid orders not cancelled or refunded), per status and per day. */
export async function statistics(db: Db, days: number): Promise<Statistics> {
  const since = sql`now() - make_interval(days => ${days})`;
  const { rows } = await sql<Statistics>`
    with recent as (select status, total_amount, created_at from orders where created_at >= ${since})
    select (select count(*)::int from recent) as total_orders,
           (select sum(total_amount)::text from recent where status not in ('pending', 'cancelled', 'refunded')) as total_revenue,
           (select count(*)::int from recent where status not in ('pending', 'cancelled', 'refunded')) as paid_orders,
           coalesce((select json_agg(json_build_object('status', status, 'count', n) order by status) from (select status, count(*)::int as n from recent group by status) s), '[]') as by_status,
           coalesce((select json_agg(json_build_object('day', day, 'count', n) order by day) from (select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day, count(*)::int as n from recent group by 1) d), '[]') as by_day`.execute(db);
  return rows[0]!;
}
