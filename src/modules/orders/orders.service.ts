// Orders (API-CONTRACT.md §2.4, §3 transitions, §4.2–3): customers see their own, staff see and
// move all of them; public tracking by tracking number or by order number + email. Status
// changes lock the order, so two staff members cannot both apply a transition from one state.
import type { Db } from '../../db/database.ts';
import type { OrderStatus } from '../../db/schema.ts';
import { AppError, fieldError, type FieldErrors } from '../../infra/http/errors.ts';
import { inTransaction, type Ctx } from '../../infra/http/context.ts';
import { MAX_PAGE_SIZE, paginate, type PageResult } from '../../infra/http/pagination.ts';
import { isMoney } from '../../infra/money.ts';
import type { UserRow } from '../accounts/accounts.repository.ts';
import { toOrderDetail, toOrderSummary, toOrderTracking } from './orders.mapper.ts';
import { stockChanged } from '../catalog/stock.repository.ts';
import * as repo from './orders.repository.ts';
import { STATUSES, type OrderDetail, type OrderListQuery, type OrderSummary, type OrderTracking, type StatusBody } from './orders.schemas.ts';

/** §3: where each status may go next. */
export const TRANSITIONS: Record<OrderStatus, readonly OrderStatus[]> = {
  pending: ['processing', 'cancelled'],
  processing: ['shipped', 'cancelled'],
  shipped: ['delivered', 'cancelled'],
  delivered: ['refunded'],
  cancelled: ['pending'],
  refunded: [],
};

const ORDERS_PAGE_SIZE = 10;

function ordersPageSize(raw: string | undefined): number {
  if (raw === undefined || !/^\d{1,6}$/.test(raw) || Number(raw) < 1) return ORDERS_PAGE_SIZE;
  return Math.min(Number(raw), MAX_PAGE_SIZE);
}

/** django-filter's datetime parsing: ISO dates and date-times; anything else is a field error. */
function when(raw: string | undefined, field: string, errors: FieldErrors, endOfDay = false): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(raw);
  const t = Date.parse(dateOnly ? `${raw}T${endOfDay ? '23:59:59.999' : '00:00:00'}Z` : raw);
  if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(t)) {
    errors[field] = ['Enter a valid date/time.'];
    return undefined;
  }
  return new Date(t).toISOString();
}

function amount(raw: string | undefined, field: string, errors: FieldErrors): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!isMoney(raw)) errors[field] = ['Enter a number.'];
  return errors[field] ? undefined : raw.trim();
}

/** django-filter's BooleanFilter: true/false (any case) or 1/0; blank is no filter. */
function flag(raw: string | undefined, field: string, errors: FieldErrors): boolean | undefined {
  const v = raw?.trim().toLowerCase();
  if (!v) return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  errors[field] = ['Select a valid choice.'];
  return undefined;
}

const ORDERINGS = new Set(['created_at', 'total_amount', 'status']);

export async function listOrders(ctx: Ctx, user: UserRow, q: OrderListQuery): Promise<PageResult<OrderSummary> & { size: number }> {
  const errors: FieldErrors = {};
  const status = q.status?.filter((s) => s !== '');
  const bad = status?.find((s) => !(STATUSES as readonly string[]).includes(s));
  if (bad !== undefined) errors.status = [`Select a valid choice. ${bad} is not one of the available choices.`];
  if (q.fulfillment_method && q.fulfillment_method !== 'shipping' && q.fulfillment_method !== 'pickup') {
    errors.fulfillment_method = [`Select a valid choice. ${q.fulfillment_method} is not one of the available choices.`];
  }
  const after = when(q.created_after ?? q.start_date, q.created_after !== undefined ? 'created_after' : 'start_date', errors);
  const before = when(q.created_before ?? q.end_date, q.created_before !== undefined ? 'created_before' : 'end_date', errors, true);
  const filter: repo.OrderFilter = {
    userId: user.is_staff ? undefined : user.id,
    status: status as OrderStatus[] | undefined,
    fulfillment_method: q.fulfillment_method || undefined,
    tracking_number: q.tracking_number || undefined,
    tracking_contains: q.tracking_number__icontains || undefined,
    created_after: after,
    created_before: before,
    min_total: amount(q.min_total, 'min_total', errors),
    max_total: amount(q.max_total, 'max_total', errors),
    search: q.search?.trim() || undefined,
    // A staff filter: customers' lists are the contract's, whatever they send.
    on_hold: user.is_staff ? flag(q.on_hold, 'on_hold', errors) : undefined,
  };
  if (Object.keys(errors).length) throw new AppError('bad_request', { errors });
  // DRF's OrderingFilter ignores fields it does not know.
  const ordering = q.ordering?.trim();
  const column = ordering?.replace(/^-/, '');
  if (ordering && column && ORDERINGS.has(column)) filter.ordering = { column: column as 'created_at', desc: ordering.startsWith('-') };
  const db = ctx.database.db;
  const page = await paginate(
    q,
    () => repo.countOrders(db, filter),
    (limit, offset) => repo.listOrders(db, filter, limit, offset),
    ordersPageSize(q.page_size),
  );
  return { ...page, results: page.results.map(toOrderSummary) };
}

async function detail(ctx: Ctx, id: number): Promise<repo.OrderDetailRow> {
  const row = await repo.orderDetail(ctx.database.db, { id });
  if (!row) throw new AppError('not_found');
  return row;
}

export async function getOrder(ctx: Ctx, user: UserRow, id: number): Promise<OrderDetail> {
  const row = await detail(ctx, id);
  if (!user.is_staff && row.user_id !== user.id) throw new AppError('permission_denied');
  return toOrderDetail(row, ctx.media, user.is_staff);
}

/**
 * A staff status change with the contract's side effects: `shipped` and `delivered` stamp their
 * time once, `cancelled` restocks, and (our fix) reopening a cancelled order takes its stock
 * again, or is refused when the stock is gone, so reopening never oversells.
 */
export async function changeStatus(ctx: Ctx, staff: UserRow, id: number, body: StatusBody): Promise<OrderDetail> {
  const next = body.status;
  if (next !== undefined && !(STATUSES as readonly string[]).includes(next)) throw fieldError('status', `"${next}" is not a valid choice.`);
  await inTransaction(ctx, async (trx: Db, publish) => {
    const order = await repo.lockOrder(trx, id);
    if (!order) throw new AppError('not_found');
    const now = new Date().toISOString();
    const extra = {
      ...(body.tracking_number !== undefined ? { tracking_number: body.tracking_number.trim() } : {}),
      ...(body.estimated_delivery !== undefined ? { estimated_delivery: body.estimated_delivery } : {}),
    };
    if (next === undefined) {
      if (Object.keys(extra).length) await trx.updateTable('orders').set({ ...extra, updated_at: now }).where('id', '=', id).execute();
      return;
    }
    const from = order.status;
    if (!TRANSITIONS[from].includes(next as OrderStatus)) throw fieldError('status', `Cannot transition from '${from}' to '${next}'`);
    const to = next as OrderStatus;
    if (to === 'cancelled') {
      const moves = await repo.restock(trx, id);
      if (moves.length) publish('stock.changed', stockChanged(moves));
    } else if (from === 'cancelled') {
      const taken = await repo.retake(trx, id);
      if (!taken.ok) throw fieldError('status', `Cannot reopen the order: only ${taken.left} of "${taken.name}" left in stock`);
      if (taken.moves.length) publish('stock.changed', stockChanged(taken.moves));
    }
    await trx
      .updateTable('orders')
      .set({
        ...extra,
        status: to,
        // A staff member moved it: the hold for review (paid amount differs) is over.
        on_hold: false,
        updated_at: now,
        ...(to === 'shipped' && order.shipped_at === null ? { shipped_at: now } : {}),
        ...(to === 'delivered' && order.delivered_at === null ? { delivered_at: now } : {}),
      })
      .where('id', '=', id)
      .execute();
    await repo.addHistory(trx, id, to, body.notes ?? '', staff.id);
    publish('order.status_changed', { id, userId: order.user_id, from, to });
    // Accepted by staff (a held order, a reopened one): its confirmation goes out now, once per
    // order however often this happens (the email is keyed by the order).
    if (from === 'pending' && to === 'processing') publish('order.paid', { id, userId: order.user_id });
  });
  return toOrderDetail(await detail(ctx, id), ctx.media, true);
}

export async function trackByNumber(ctx: Ctx, trackingNumber: string): Promise<OrderTracking> {
  const row = await repo.orderDetail(ctx.database.db, { tracking_number: trackingNumber });
  if (!row) throw new AppError('not_found', { message: 'Order not found with this tracking number' });
  return toOrderTracking(row);
}

/** §4.3: by id only for the order's owner or staff; anyone else learns nothing (404). */
export async function trackById(ctx: Ctx, user: UserRow | null, id: number): Promise<OrderTracking> {
  const row = await repo.orderDetail(ctx.database.db, { id });
  if (!row || !user || (!user.is_staff && row.user_id !== user.id)) throw new AppError('not_found');
  return toOrderTracking(row);
}

const adHoc = (status: 400 | 404, message: string) => new AppError(status === 404 ? 'not_found' : 'bad_request', { status, body: { error: message } });

export async function trackGuest(ctx: Ctx, orderNumber: string | undefined, email: string | undefined): Promise<OrderTracking> {
  const number = orderNumber?.trim();
  const mail = email?.trim();
  if (!number || !mail) throw adHoc(400, 'Order number and email are required');
  const row = await repo.orderDetail(ctx.database.db, { order_number: number, email: mail });
  if (!row) throw adHoc(404, 'Order not found. Please check your order number and email.');
  return toOrderTracking(row);
}

export async function statistics(ctx: Ctx, days: number) {
  const s = await repo.statistics(ctx.database.db, days);
  const revenue = Number(s.total_revenue ?? 0);
  return {
    total_orders: s.total_orders,
    total_revenue: revenue,
    average_order_value: s.paid_orders ? Math.round((revenue / s.paid_orders) * 100) / 100 : 0,
    orders_by_status: s.by_status,
    orders_by_day: s.by_day,
  };
}
