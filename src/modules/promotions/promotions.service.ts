// Promotion codes: the rules every use of a code passes (one `judge`, shared by validate/, apply/
// and the checkout's hold), the public list of active codes, and staff management of codes,
// campaigns and usage analytics. Money is integer cents throughout (infra/money.ts).
import { randomInt } from 'node:crypto';
import type { Db } from '../../db/database.ts';
import { inTransaction as retryingTransaction, type Ctx } from '../../infra/http/context.ts';
import { AppError, uniqueFieldError, type FieldErrors } from '../../infra/http/errors.ts';
import { DEFAULT_PAGE_SIZE, paginate, type PageQuery, type PageResult } from '../../infra/http/pagination.ts';
import { fromCents, percentOf, toCents } from '../../infra/money.ts';
import { parseMoney } from '../catalog/catalog.admin.service.ts';
import { instant, toCampaign, toPromotion } from './promotions.mapper.ts';
import * as repo from './promotions.repository.ts';
import type {
  Analytics,
  AnalyticsQuery,
  ApplyInput,
  ApplyResult,
  Campaign,
  CampaignChanges,
  CampaignInput,
  DiscountType,
  Promotion,
  PromotionChanges,
  PromotionInput,
  UsageType,
  ValidateInput,
  ValidateResult,
} from './promotions.schemas.ts';

/** The contract's ad-hoc refusal of validate/, apply/ and the checkout: `{"error": "…"}`. */
const adHoc = (status: 400 | 404, error: string) => new AppError(status === 404 ? 'not_found' : 'bad_request', { status, body: { error } });

/** Cents as the JSON number the contract shows for computed amounts (exact for two places). */
const amount = (cents: number) => Number(fromCents(cents));

// ---------------------------------------------------------------------------------------------
// The rules

type RuleFields = Pick<
  repo.PromotionRow,
  | 'is_active'
  | 'valid_from'
  | 'valid_until'
  | 'minimum_order_amount'
  | 'logged_in_only'
  | 'first_order_only'
  | 'usage_type'
  | 'usage_limit'
  | 'usage_limit_per_user'
  | 'discount_type'
  | 'discount_value'
>;

export interface RuleInput {
  /** What the minimum order amount is checked against, in cents. */
  orderCents: number;
  /** What the discount is taken from: the items the code applies to, in cents. */
  applicableCents: number;
  /** The cart is known and none of its items is one a restricted code applies to. */
  noApplicableItems: boolean;
  userId: number | null;
  usage: repo.UsageFacts;
  now: Date;
}

export type Verdict = { ok: true; discountCents: number; freeShipping: boolean } | { ok: false; reason: string };

const refuse = (reason: string): Verdict => ({ ok: false, reason });

/** Whether the code may be used now, by this caller, on this order, and what it takes off. */
export function judge(p: RuleFields, i: RuleInput): Verdict {
  const t = i.now.getTime();
  if (!p.is_active) return refuse('This promotion code is not active');
  if (t < instant(p.valid_from)) return refuse('This promotion code is not valid yet');
  if (t > instant(p.valid_until)) return refuse('This promotion code has expired');
  const minimum = toCents(p.minimum_order_amount);
  if (i.orderCents < minimum) return refuse(`Minimum order amount of $${fromCents(minimum)} required`);
  // A first order can only be told for a customer we know.
  if ((p.logged_in_only || p.first_order_only) && i.userId === null) return refuse('This code requires you to be logged in');
  if (p.usage_type === 'single' && i.usage.total > 0) return refuse('This code has already been used');
  if (p.usage_type === 'limited' && p.usage_limit !== null && i.usage.total >= p.usage_limit) return refuse('This code has reached its usage limit');
  if (i.userId !== null && i.usage.mine >= p.usage_limit_per_user) return refuse('You have already used this code the maximum number of times');
  if (p.first_order_only && i.usage.has_orders) return refuse('This code is only valid for first-time orders');
  if (i.noApplicableItems) return refuse('This code does not apply to any item in your cart');
  const base = i.applicableCents;
  let off = 0;
  if (p.discount_type === 'percentage') off = Math.min(percentOf(base, p.discount_value), base);
  else if (p.discount_type === 'fixed') off = Math.min(toCents(p.discount_value), base);
  // Never more than the order itself, whatever the cart items claimed.
  return { ok: true, discountCents: Math.min(off, i.orderCents), freeShipping: p.discount_type === 'free_shipping' };
}

interface Line {
  product_id: number;
  category_id: number | undefined;
  price: string;
  quantity: number;
}

/** The lines a restricted code applies to (by product, or by the product's category): their total and count. */
function applicableLines(lines: Line[], productIds: number[], categoryIds: number[]): { cents: number; count: number } {
  const products = new Set(productIds);
  const categories = new Set(categoryIds);
  let cents = 0;
  let count = 0;
  for (const l of lines) {
    if (products.has(l.product_id) || (l.category_id !== undefined && categories.has(l.category_id))) {
      cents += toCents(l.price) * l.quantity;
      count++;
    }
  }
  return { cents, count };
}

// ---------------------------------------------------------------------------------------------
// The checkout's hold

export interface PromotionLine {
  product_id: number;
  category_id: number;
  price: string;
  quantity: number;
}
export interface HeldPromotion {
  promotionId: number;
  code: string;
  discount: string;
  freeShipping: boolean;
}

/**
 * Inside the checkout's transaction: locks the code row (FOR UPDATE), checks every rule against
 * the lines, and inserts one promotion_usages row for checkoutId. Throws AppError 400 with body
 * {"error": reason} (unknown code: "Invalid promotion code").
 */
export async function holdPromotion(trx: Db, input: { code: string; userId: number | null; lines: PromotionLine[]; checkoutId: number; now?: Date }): Promise<HeldPromotion> {
  // Outside a transaction the lock would end with its statement, and limits would leak.
  if (!trx.isTransaction) throw new Error('holdPromotion must run inside the checkout transaction');
  const p = await repo.lockByCode(trx, input.code.trim());
  if (!p) throw adHoc(400, 'Invalid promotion code');
  const orderCents = input.lines.reduce((sum, l) => sum + toCents(l.price) * l.quantity, 0);
  const hit = p.applicable_to_all ? { cents: orderCents, count: input.lines.length } : applicableLines(input.lines, p.product_ids, p.category_ids);
  const verdict = judge(p, {
    orderCents,
    applicableCents: hit.cents,
    noApplicableItems: !p.applicable_to_all && hit.count === 0,
    userId: input.userId,
    usage: await repo.usageFacts(trx, p.id, input.userId),
    now: input.now ?? new Date(),
  });
  if (!verdict.ok) throw adHoc(400, verdict.reason);
  const discount = fromCents(verdict.discountCents);
  await repo.insertUsage(trx, { promotionId: p.id, userId: input.userId, checkoutId: input.checkoutId, discount });
  return { promotionId: p.id, code: p.code, discount, freeShipping: verdict.freeShipping };
}

// ---------------------------------------------------------------------------------------------
// Public: the active list, validate/ and apply/

export async function listActive(ctx: Ctx, page: PageQuery): Promise<PageResult<Promotion>> {
  const now = new Date();
  const at = now.toISOString();
  return paginate(
    page,
    () => ctx.database.read((db) => repo.countActive(db, at)),
    async (limit, offset) => (await ctx.database.read((db) => repo.listActive(db, at, limit, offset))).map((p) => toPromotion(p, ctx.media, now)),
    DEFAULT_PAGE_SIZE,
  );
}

/** The code from a body: text (or a number, as DRF's CharField takes it), never blank. */
function codeFrom(value: unknown): string {
  if (value === undefined || value === null) throw adHoc(400, 'Promotion code is required');
  if (typeof value !== 'string' && typeof value !== 'number') throw adHoc(400, 'Promotion code must be a string');
  const code = String(value).trim();
  if (!code) throw adHoc(400, 'Promotion code is required');
  return code;
}

/** An amount from a body: a decimal string or number, at most 2 places, not negative; absent is 0. */
function centsFrom(value: unknown, field: string): number {
  if (value === undefined || value === null || value === '') return 0;
  const parsed = typeof value === 'string' || typeof value === 'number' ? parseMoney(value) : { error: 'A valid number is required.' };
  if ('error' in parsed) throw adHoc(400, `Invalid ${field}: ${parsed.error}`);
  return toCents(parsed.value);
}

function positiveInt(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,10}$/.test(value.trim()) ? Number(value) : NaN;
  return Number.isSafeInteger(n) && n >= 1 && n <= 2147483647 ? n : undefined;
}

/** `cart_items`: [{product_id, price, quantity (default 1)}]; absent is none. */
function cartItemsFrom(value: unknown): { product_id: number; price: string; quantity: number }[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw adHoc(400, 'Invalid cart_items: Expected a list of items.');
  if (value.length > 1000) throw adHoc(400, 'Invalid cart_items: Ensure this field has no more than 1000 elements.');
  return value.map((item: unknown, i) => {
    if (!item || typeof item !== 'object' || Array.isArray(item)) throw adHoc(400, `Invalid cart_items[${i}]: Invalid data. Expected a dictionary.`);
    const it = item as Record<string, unknown>;
    const productId = positiveInt(it.product_id);
    if (productId === undefined) throw adHoc(400, `Invalid cart_items[${i}].product_id: A valid integer is required.`);
    const quantity = it.quantity === undefined ? 1 : positiveInt(it.quantity);
    if (quantity === undefined) throw adHoc(400, `Invalid cart_items[${i}].quantity: A valid positive integer is required.`);
    return { product_id: productId, price: fromCents(centsFrom(it.price, `cart_items[${i}].price`)), quantity };
  });
}

export async function validateCode(ctx: Ctx, userId: number | null, body: ValidateInput): Promise<ValidateResult> {
  const code = codeFrom(body.code);
  const orderCents = centsFrom(body.order_amount, 'order_amount');
  const db = ctx.database.db;
  const p = await repo.findPromotionByCode(db, code);
  if (!p) return { valid: false, message: 'Invalid promotion code' };
  const now = new Date();
  // No cart here: a restricted code's discount is figured on the whole amount (apply/ is exact).
  const verdict = judge(p, { orderCents, applicableCents: orderCents, noApplicableItems: false, userId, usage: await repo.usageFacts(db, p.id, userId), now });
  if (!verdict.ok) return { valid: false, message: verdict.reason };
  return { valid: true, message: 'Valid', promotion: toPromotion(p, ctx.media, now), discount_amount: amount(verdict.discountCents), discount_type: p.discount_type };
}

export async function applyCode(ctx: Ctx, userId: number | null, body: ApplyInput): Promise<ApplyResult> {
  const code = codeFrom(body.code);
  const subtotal = centsFrom(body.subtotal, 'subtotal');
  const items = cartItemsFrom(body.cart_items);
  const db = ctx.database.db;
  const p = await repo.findPromotionByCode(db, code);
  if (!p) throw adHoc(404, 'Invalid promotion code');
  let hit = { cents: subtotal, count: items.length };
  if (!p.applicable_to_all) {
    // The items' categories come from the catalog; unknown products apply to nothing.
    const categories = await repo.productCategories(db, items.map((i) => i.product_id));
    const lines = items.map((i) => ({ ...i, category_id: categories.get(i.product_id) }));
    // Every id the code is restricted to, as the checkout's hold counts them (the promotion shown
    // leaves out products no longer sold and hidden categories).
    hit = applicableLines(lines, p.product_ids, p.category_ids);
  }
  const now = new Date();
  const verdict = judge(p, {
    orderCents: subtotal,
    applicableCents: hit.cents,
    noApplicableItems: !p.applicable_to_all && hit.count === 0,
    userId,
    usage: await repo.usageFacts(db, p.id, userId),
    now,
  });
  if (!verdict.ok) throw adHoc(400, verdict.reason);
  return {
    success: true,
    promotion: toPromotion(p, ctx.media, now),
    discount_amount: amount(verdict.discountCents),
    applicable_items_total: amount(hit.cents),
    final_total: amount(subtotal - verdict.discountCents),
  };
}

// ---------------------------------------------------------------------------------------------
// Staff: field checks shared by codes and campaigns

const BLANK = 'This field may not be blank.';
const CODE_TAKEN = 'promotion code with this code already exists.';
const DATETIME_FORMAT = 'Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].';
const UNIQUE: Record<string, [string, string]> = { promotion_codes_code: ['code', CODE_TAKEN] };

function throwIfAny(errors: FieldErrors): void {
  if (Object.keys(errors).length) throw new AppError('bad_request', { errors });
}

/** Staff writes: one transaction (run again if PostgreSQL picks it as a deadlock victim), a unique violation as its field error. */
async function inTransaction<T>(ctx: Ctx, fn: (trx: Db) => Promise<T>): Promise<T> {
  try {
    return await retryingTransaction(ctx, (trx) => fn(trx));
  } catch (err) {
    throw uniqueFieldError(err, UNIQUE) ?? err;
  }
}

function calendarDate(y: string, m: string, d: string): boolean {
  const day = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  return day.getUTCFullYear() === Number(y) && day.getUTCMonth() === Number(m) - 1 && day.getUTCDate() === Number(d);
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * An ISO-8601 datetime as DRF's DateTimeField takes it (a date alone is its midnight; no offset
 * means UTC, the shop's time zone): canonical text for SQL and its instant, or undefined when it
 * is no such time.
 */
export function parseDateTime(raw: string): { text: string; ms: number } | undefined {
  const m = DATETIME.exec(raw.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac, zone = 'Z'] = m as unknown as string[];
  if (!calendarDate(y!, mo!, d!) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  let offset = 'Z';
  const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone!);
  if (z) {
    if (Number(z[2]) > 14 || Number(z[3] ?? 0) > 59) return undefined;
    offset = `${z[1]}${z[2]}:${z[3] ?? '00'}`;
  }
  const text = `${y}-${mo}-${d}T${h}:${mi}:${s}${frac ? `.${frac}` : ''}${offset}`;
  return { text, ms: Date.parse(text) };
}

function dateTime(raw: string, field: string, errors: FieldErrors): { text: string; ms: number } | undefined {
  const parsed = parseDateTime(raw);
  if (!parsed) errors[field] = [DATETIME_FORMAT];
  return parsed;
}

function money(raw: string | number, field: string, errors: FieldErrors): string | undefined {
  const parsed = parseMoney(raw);
  if ('error' in parsed) errors[field] = [parsed.error];
  return 'value' in parsed ? parsed.value : undefined;
}

/** Ids given under either of a field's names, without repeats; which name was used (for errors). */
function idList(body: Record<string, unknown>, names: [string, string]): { ids: number[]; field: string } | undefined {
  const field = names.find((n) => body[n] !== undefined);
  return field ? { ids: [...new Set(body[field] as number[])], field } : undefined;
}

/** Errors for ids that name no row, in DRF's words. */
async function checkIds(trx: Db, table: 'products' | 'categories' | 'promotion_codes', list: { ids: number[]; field: string } | undefined, errors: FieldErrors): Promise<void> {
  if (!list?.ids.length) return;
  const known = await repo.existingIds(trx, table, list.ids);
  const missing = list.ids.filter((id) => !known.has(id));
  if (missing.length) errors[list.field] = missing.map((id) => `Invalid pk "${id}" - object does not exist.`);
}

// ---------------------------------------------------------------------------------------------
// Staff: promotion codes

const CODE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export function randomCode(length = 8): string {
  let code = '';
  for (let i = 0; i < length; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

/** A random code no other promotion has (36^8 codes: a clash is rare, two in a row rarer still). */
async function freeCode(trx: Db): Promise<string> {
  for (;;) {
    const code = randomCode();
    if (!(await repo.codeTaken(trx, code))) return code;
  }
}

interface PromotionDraft {
  columns: repo.PromotionUpdate;
  /** Instants of the window, for the values this request gives. */
  from?: number;
  until?: number;
  products?: { ids: number[]; field: string };
  categories?: { ids: number[]; field: string };
}

/** The columns a request sets; problems with the values go to `errors`. */
function promotionDraft(body: PromotionChanges, errors: FieldErrors): PromotionDraft {
  const c: repo.PromotionUpdate = {};
  const d: PromotionDraft = { columns: c };
  // Codes are matched without regard to case; stored upper-case, they read as shoppers type them.
  if (body.code !== undefined) c.code = body.code.toUpperCase();
  if (body.description !== undefined) c.description = body.description.trim();
  if (body.discount_type !== undefined) c.discount_type = body.discount_type as DiscountType;
  if (body.discount_value !== undefined) c.discount_value = money(body.discount_value, 'discount_value', errors);
  if (body.usage_type !== undefined) c.usage_type = body.usage_type as UsageType;
  if (body.usage_limit !== undefined) c.usage_limit = body.usage_limit;
  if (body.usage_limit_per_user !== undefined) c.usage_limit_per_user = body.usage_limit_per_user;
  if (body.valid_from !== undefined) {
    const t = dateTime(body.valid_from, 'valid_from', errors);
    c.valid_from = t?.text;
    d.from = t?.ms;
  }
  if (body.valid_until !== undefined) {
    const t = dateTime(body.valid_until, 'valid_until', errors);
    c.valid_until = t?.text;
    d.until = t?.ms;
  }
  if (body.is_active !== undefined) c.is_active = body.is_active;
  if (body.minimum_order_amount !== undefined) c.minimum_order_amount = money(body.minimum_order_amount, 'minimum_order_amount', errors);
  if (body.applicable_to_all !== undefined) c.applicable_to_all = body.applicable_to_all;
  if (body.first_order_only !== undefined) c.first_order_only = body.first_order_only;
  if (body.logged_in_only !== undefined) c.logged_in_only = body.logged_in_only;
  d.products = idList(body, ['applicable_product_ids', 'applicable_products']);
  d.categories = idList(body, ['applicable_category_ids', 'applicable_categories']);
  return d;
}

/** A new code's values where the request leaves them out (the table's defaults). */
const NEW_CODE: Pick<repo.PromotionRow, 'discount_value' | 'usage_type' | 'usage_limit' | 'applicable_to_all'> = {
  discount_value: '0.00',
  usage_type: 'single',
  usage_limit: null,
  applicable_to_all: true,
};

/**
 * The rules that join fields, checked on the code as it will be (`current` plus the request),
 * and those only the database can tell: a taken code, unknown ids, a restriction to nothing.
 */
async function checkPromotion(trx: Db, d: PromotionDraft, current: repo.PromotionRow | undefined, errors: FieldErrors): Promise<void> {
  const c = d.columns;
  const type = c.discount_type ?? current?.discount_type;
  const value = c.discount_value ?? current?.discount_value ?? NEW_CODE.discount_value;
  if ((type === 'percentage' || type === 'fixed') && !errors.discount_value) {
    if (toCents(value) === 0) errors.discount_value = [c.discount_value === undefined ? 'This field is required.' : 'Ensure this value is greater than 0.'];
    else if (type === 'percentage' && toCents(value) > 10000) errors.discount_value = ['Ensure this value is less than or equal to 100.'];
  }
  const usageType = c.usage_type ?? current?.usage_type ?? NEW_CODE.usage_type;
  const limit = c.usage_limit !== undefined ? c.usage_limit : (current?.usage_limit ?? NEW_CODE.usage_limit);
  if (usageType === 'limited' && limit === null) errors.usage_limit = ['This field is required when usage_type is limited.'];
  const from = d.from ?? (c.valid_from === undefined && current ? instant(current.valid_from) : undefined);
  const until = d.until ?? (c.valid_until === undefined && current ? instant(current.valid_until) : undefined);
  if (from !== undefined && until !== undefined && until <= from) errors.valid_until = ['Ensure valid_until is after valid_from.'];
  if (c.code !== undefined && c.code !== '' && (await repo.codeTaken(trx, c.code, current?.id))) errors.code = [CODE_TAKEN];
  await checkIds(trx, 'products', d.products, errors);
  await checkIds(trx, 'categories', d.categories, errors);
  const toAll = c.applicable_to_all ?? current?.applicable_to_all ?? NEW_CODE.applicable_to_all;
  if (!toAll) {
    const had = current ? await repo.targetCounts(trx, current.id) : { products: 0, categories: 0 };
    const products = d.products ? d.products.ids.length : had.products;
    const categories = d.categories ? d.categories.ids.length : had.categories;
    if (products + categories === 0) errors.applicable_to_all = ['Choose at least one product or category for a code that does not apply to all.'];
  }
  throwIfAny(errors);
}

async function writeTargets(trx: Db, id: number, d: PromotionDraft): Promise<void> {
  if (d.products) await repo.setProducts(trx, id, d.products.ids);
  if (d.categories) await repo.setCategories(trx, id, d.categories.ids);
}

async function promotionIn(trx: Db, id: number): Promise<repo.PromotionJson> {
  const p = await repo.findPromotion(trx, id);
  if (!p) throw new AppError('not_found');
  return p;
}

export async function listPromotions(ctx: Ctx, page: PageQuery): Promise<PageResult<Promotion>> {
  const db = ctx.database.db;
  const now = new Date();
  return paginate(
    page,
    () => repo.countCodes(db),
    async (limit, offset) => (await repo.listCodes(db, limit, offset)).map((p) => toPromotion(p, ctx.media, now)),
    DEFAULT_PAGE_SIZE,
  );
}

export async function getPromotion(ctx: Ctx, id: number): Promise<Promotion> {
  return toPromotion(await promotionIn(ctx.database.db, id), ctx.media, new Date());
}

export async function createPromotion(ctx: Ctx, body: PromotionInput): Promise<Promotion> {
  const errors: FieldErrors = {};
  const d = promotionDraft(body, errors);
  const p = await inTransaction(ctx, async (trx) => {
    await checkPromotion(trx, d, undefined, errors);
    // The body schema requires discount_type and the window, so every NOT NULL column is set.
    const values = { ...d.columns, code: d.columns.code || (await freeCode(trx)) } as repo.NewPromotion;
    const id = await repo.insertPromotion(trx, values);
    await writeTargets(trx, id, d);
    return promotionIn(trx, id);
  });
  await ctx.events.emit('promotion.created', { id: p.id });
  return toPromotion(p, ctx.media, new Date());
}

/** PUT and PATCH alike: the body schema decides which fields are required. */
export async function updatePromotion(ctx: Ctx, id: number, body: PromotionChanges): Promise<Promotion> {
  const errors: FieldErrors = {};
  const d = promotionDraft(body, errors);
  if (d.columns.code === '') errors.code = [BLANK];
  const p = await inTransaction(ctx, async (trx) => {
    const current = await repo.lockPromotion(trx, id);
    if (!current) throw new AppError('not_found');
    await checkPromotion(trx, d, current, errors);
    await repo.updatePromotion(trx, id, d.columns);
    await writeTargets(trx, id, d);
    return promotionIn(trx, id);
  });
  await ctx.events.emit('promotion.updated', { id });
  return toPromotion(p, ctx.media, new Date());
}

/** Deletes the code with its usage history; orders and checkouts that used it keep their amounts. */
export async function deletePromotion(ctx: Ctx, id: number): Promise<void> {
  const deleted = await inTransaction(ctx, async (trx) => {
    await repo.lockReferencesOf(trx, id);
    return repo.deletePromotion(trx, id);
  });
  if (!deleted) throw new AppError('not_found');
  await ctx.events.emit('promotion.deleted', { id });
}

// ---------------------------------------------------------------------------------------------
// Staff: campaigns (no cached response shows them, so they publish no events)

interface CampaignDraft {
  columns: repo.CampaignUpdate;
  start?: number;
  end?: number;
  codes?: { ids: number[]; field: string };
}

function campaignDraft(body: CampaignChanges, errors: FieldErrors): CampaignDraft {
  const c: repo.CampaignUpdate = {};
  const d: CampaignDraft = { columns: c };
  if (body.name !== undefined) {
    c.name = body.name.trim();
    if (!c.name) errors.name = [BLANK];
  }
  if (body.description !== undefined) c.description = body.description.trim();
  if (body.start_date !== undefined) {
    const t = dateTime(body.start_date, 'start_date', errors);
    c.start_date = t?.text;
    d.start = t?.ms;
  }
  if (body.end_date !== undefined) {
    const t = dateTime(body.end_date, 'end_date', errors);
    c.end_date = t?.text;
    d.end = t?.ms;
  }
  if (body.is_active !== undefined) c.is_active = body.is_active;
  d.codes = idList(body, ['promotion_code_ids', 'promotion_codes']);
  return d;
}

async function checkCampaign(trx: Db, d: CampaignDraft, current: repo.CampaignRow | undefined, errors: FieldErrors): Promise<void> {
  const c = d.columns;
  const start = d.start ?? (c.start_date === undefined && current ? instant(current.start_date) : undefined);
  const end = d.end ?? (c.end_date === undefined && current ? instant(current.end_date) : undefined);
  if (start !== undefined && end !== undefined && end <= start) errors.end_date = ['Ensure end_date is after start_date.'];
  await checkIds(trx, 'promotion_codes', d.codes, errors);
  throwIfAny(errors);
}

async function campaignIn(trx: Db, id: number): Promise<repo.CampaignJson> {
  const c = await repo.findCampaign(trx, id);
  if (!c) throw new AppError('not_found');
  return c;
}

export async function listCampaigns(ctx: Ctx, page: PageQuery): Promise<PageResult<Campaign>> {
  const db = ctx.database.db;
  const now = new Date();
  return paginate(
    page,
    () => repo.countCampaigns(db),
    async (limit, offset) => (await repo.listCampaigns(db, limit, offset)).map((c) => toCampaign(c, ctx.media, now)),
    DEFAULT_PAGE_SIZE,
  );
}

export async function getCampaign(ctx: Ctx, id: number): Promise<Campaign> {
  return toCampaign(await campaignIn(ctx.database.db, id), ctx.media, new Date());
}

export async function createCampaign(ctx: Ctx, body: CampaignInput): Promise<Campaign> {
  const errors: FieldErrors = {};
  const d = campaignDraft(body, errors);
  const c = await inTransaction(ctx, async (trx) => {
    await checkCampaign(trx, d, undefined, errors);
    // The body schema requires name and both dates, so every NOT NULL column is set.
    const id = await repo.insertCampaign(trx, d.columns as repo.NewCampaign);
    if (d.codes) await repo.setCampaignCodes(trx, id, d.codes.ids);
    return campaignIn(trx, id);
  });
  return toCampaign(c, ctx.media, new Date());
}

export async function updateCampaign(ctx: Ctx, id: number, body: CampaignChanges): Promise<Campaign> {
  const errors: FieldErrors = {};
  const d = campaignDraft(body, errors);
  const c = await inTransaction(ctx, async (trx) => {
    const current = await repo.lockCampaign(trx, id);
    if (!current) throw new AppError('not_found');
    await checkCampaign(trx, d, current, errors);
    await repo.updateCampaign(trx, id, d.columns);
    if (d.codes) await repo.setCampaignCodes(trx, id, d.codes.ids);
    return campaignIn(trx, id);
  });
  return toCampaign(c, ctx.media, new Date());
}

/** Deletes the campaign; its codes stay. */
export async function deleteCampaign(ctx: Ctx, id: number): Promise<void> {
  if (!(await repo.deleteCampaign(ctx.database.db, id))) throw new AppError('not_found');
}

// ---------------------------------------------------------------------------------------------
// Staff: analytics

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A range end: a date (its first or last microsecond) or a datetime, as SQL text; undefined when neither. */
function rangeEnd(raw: string, end: 'start' | 'end'): string | undefined {
  const m = DATE.exec(raw.trim());
  if (m) return calendarDate(m[1]!, m[2]!, m[3]!) ? `${m[0]}T${end === 'start' ? '00:00:00' : '23:59:59.999999'}Z` : undefined;
  return parseDateTime(raw)?.text;
}

/** Per code, the uses that became orders within the range (both ends included), most used first. */
export async function promotionAnalytics(ctx: Ctx, q: AnalyticsQuery): Promise<Analytics> {
  const errors: FieldErrors = {};
  const from = q.start_date === undefined ? null : (rangeEnd(q.start_date, 'start') ?? null);
  const until = q.end_date === undefined ? null : (rangeEnd(q.end_date, 'end') ?? null);
  if (q.start_date !== undefined && from === null) errors.start_date = ['Enter a valid date or datetime.'];
  if (q.end_date !== undefined && until === null) errors.end_date = ['Enter a valid date or datetime.'];
  throwIfAny(errors);
  const rows = await repo.usageByCode(ctx.database.db, from, until);
  return {
    analytics: rows.map((r) => ({
      code: r.code,
      description: r.description,
      total_uses: r.total_uses,
      total_discount: amount(toCents(r.total_discount)),
      unique_users: r.unique_users,
      conversion_rate: `${(r.all_uses > 0 ? (r.total_uses * 100) / r.all_uses : 0).toFixed(2)}%`,
    })),
    total_promotions: rows.length,
    date_range: { start: q.start_date ?? null, end: q.end_date ?? null },
  };
}
