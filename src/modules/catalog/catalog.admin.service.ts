// Staff catalog management: products and categories are created, changed and deactivated (never
// deleted, so orders keep their history), and the low-stock report. Each write is one
// transaction; its event is published after the commit.
import type { Db } from '../../db/database.ts';
import type { Ctx } from '../../infra/http/context.ts';
import { AppError, uniqueFieldError, type FieldErrors } from '../../infra/http/errors.ts';
import * as repo from './catalog.repository.ts';
import { toCategory, toProductCard, toProductDetail } from './catalog.mapper.ts';
import type { Category, CategoryChanges, CategoryInput, LowStockResult, ProductChanges, ProductDetail, ProductInput } from './catalog.schemas.ts';

const SKU_TAKEN = 'product with this sku already exists.';
const NAME_TAKEN = 'category with this name already exists.';
const BLANK = 'This field may not be blank.';

/**
 * DRF's DecimalField(max_digits=10, decimal_places=2, min_value=0): the value as SQL text, or
 * DRF's message. Only plain decimal notation is accepted.
 */
export function parseMoney(raw: string | number): { value: string } | { error: string } {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(String(raw).trim());
  if (!m || (!m[2] && !m[3])) return { error: 'A valid number is required.' };
  const whole = m[2]!.replace(/^0+/, '');
  const fraction = m[3] ?? '';
  if (whole.length + fraction.length > 10) return { error: 'Ensure that there are no more than 10 digits in total.' };
  if (fraction.length > 2) return { error: 'Ensure that there are no more than 2 decimal places.' };
  if (whole.length > 8) return { error: 'Ensure that there are no more than 8 digits before the decimal point.' };
  if (m[1] === '-' && /[1-9]/.test(whole + fraction)) return { error: 'Ensure this value is greater than or equal to 0.' };
  return { value: `${whole || '0'}.${fraction.padEnd(2, '0')}` };
}

function money(raw: string | number, field: string, errors: FieldErrors): string {
  const parsed = parseMoney(raw);
  if ('error' in parsed) errors[field] = [parsed.error];
  return 'value' in parsed ? parsed.value : '';
}

/** Trimmed, as DRF's CharField does; a required field must keep some text. */
function nonBlank(raw: string, field: string, errors: FieldErrors): string {
  const value = raw.trim();
  if (!value) errors[field] = [BLANK];
  return value;
}

function throwIfAny(errors: FieldErrors): void {
  if (Object.keys(errors).length) throw new AppError('bad_request', { errors });
}

/** The product columns a request sets; problems with the values go to `errors`. */
function productColumns(body: ProductChanges, errors: FieldErrors): repo.ProductUpdate {
  const c: repo.ProductUpdate = {};
  if (body.name !== undefined) c.name = nonBlank(body.name, 'name', errors);
  if (body.description !== undefined) c.description = body.description.trim();
  if (body.price !== undefined) c.price = money(body.price, 'price', errors);
  if (body.category !== undefined) c.category_id = body.category;
  if (body.sku !== undefined) c.sku = nonBlank(body.sku, 'sku', errors);
  if (body.stock_quantity !== undefined) c.stock_quantity = body.stock_quantity;
  if (body.weight !== undefined) c.weight = money(body.weight, 'weight', errors);
  if (body.dimensions !== undefined) c.dimensions = body.dimensions.trim();
  if (body.material !== undefined) c.material = body.material.trim();
  if (body.print_time !== undefined) c.print_time = body.print_time;
  if (body.is_active !== undefined) c.is_active = body.is_active;
  if (body.is_featured !== undefined) c.is_featured = body.is_featured;
  if (body.low_stock_threshold !== undefined) c.low_stock_threshold = body.low_stock_threshold;
  return c;
}

/** Adds the errors only the database can tell (unknown category, taken sku) and throws if any. */
async function checkProduct(trx: Db, c: repo.ProductUpdate, errors: FieldErrors, id?: number): Promise<void> {
  if (c.category_id !== undefined && !(await repo.categoryExists(trx, c.category_id))) {
    errors.category = [`Invalid pk "${c.category_id}" - object does not exist.`];
  }
  if (c.sku && (await repo.skuTaken(trx, c.sku, id))) errors.sku = [SKU_TAKEN];
  throwIfAny(errors);
}

function categoryColumns(body: CategoryChanges, errors: FieldErrors): repo.CategoryUpdate {
  const c: repo.CategoryUpdate = {};
  if (body.name !== undefined) c.name = nonBlank(body.name, 'name', errors);
  if (body.description !== undefined) c.description = body.description.trim();
  if (body.is_active !== undefined) c.is_active = body.is_active;
  return c;
}

async function checkCategory(trx: Db, c: repo.CategoryUpdate, errors: FieldErrors, id?: number): Promise<void> {
  if (c.name && (await repo.categoryNameTaken(trx, c.name, id))) errors.name = [NAME_TAKEN];
  throwIfAny(errors);
}

const UNIQUE: Record<string, [string, string]> = { products_sku_key: ['sku', SKU_TAKEN], categories_name_key: ['name', NAME_TAKEN] };

async function inTransaction<T>(ctx: Ctx, fn: (trx: Db) => Promise<T>): Promise<T> {
  try {
    return await ctx.database.db.transaction().execute(fn);
  } catch (err) {
    throw uniqueFieldError(err, UNIQUE) ?? err;
  }
}

async function productDetail(trx: Db, id: number): Promise<repo.ProductDetailRow> {
  const row = await repo.findProductDetail(trx, id, false);
  if (!row) throw new AppError('not_found');
  return row;
}

async function categoryRow(trx: Db, id: number): Promise<repo.CategoryRow> {
  const row = await repo.findCategory(trx, id, false);
  if (!row) throw new AppError('not_found');
  return row;
}

export async function createProduct(ctx: Ctx, body: ProductInput): Promise<ProductDetail> {
  const errors: FieldErrors = {};
  // The body schema requires name, price, category and sku, so every NOT NULL column is set.
  const values = productColumns(body, errors) as repo.NewProduct;
  const { row, after } = await inTransaction(ctx, async (trx) => {
    await checkProduct(trx, values, errors);
    const id = await repo.insertProduct(trx, values);
    return { row: await productDetail(trx, id), after: (await repo.productFacts(trx, id))! };
  });
  await ctx.events.emit('product.created', { id: row.id, after });
  return toProductDetail(row, ctx.media);
}

/** PUT and PATCH alike: the body schema decides which fields are required. */
export async function updateProduct(ctx: Ctx, id: number, body: ProductChanges): Promise<ProductDetail> {
  const errors: FieldErrors = {};
  const changes = productColumns(body, errors);
  const { row, before, after } = await inTransaction(ctx, async (trx) => {
    const before = await repo.productFacts(trx, id, true);
    if (!before) throw new AppError('not_found');
    await checkProduct(trx, changes, errors, id);
    await repo.updateProduct(trx, id, changes);
    return { row: await productDetail(trx, id), before, after: (await repo.productFacts(trx, id))! };
  });
  await ctx.events.emit('product.updated', { id, fields: Object.keys(changes), before, after });
  return toProductDetail(row, ctx.media);
}

export async function deactivateProduct(ctx: Ctx, id: number): Promise<void> {
  const before = await inTransaction(ctx, async (trx) => {
    const found = await repo.productFacts(trx, id, true);
    if (!found) throw new AppError('not_found');
    await repo.updateProduct(trx, id, { is_active: false });
    return found;
  });
  await ctx.events.emit('product.deleted', { id, before });
}

export async function createCategory(ctx: Ctx, body: CategoryInput): Promise<Category> {
  const errors: FieldErrors = {};
  const values = categoryColumns(body, errors) as repo.NewCategory;
  const row = await inTransaction(ctx, async (trx) => {
    await checkCategory(trx, values, errors);
    return categoryRow(trx, await repo.insertCategory(trx, values));
  });
  await ctx.events.emit('category.created', { id: row.id });
  return toCategory(row, ctx.media);
}

export async function updateCategory(ctx: Ctx, id: number, body: CategoryChanges): Promise<Category> {
  const errors: FieldErrors = {};
  const changes = categoryColumns(body, errors);
  const row = await inTransaction(ctx, async (trx) => {
    if (!(await repo.lockCategory(trx, id))) throw new AppError('not_found');
    await checkCategory(trx, changes, errors, id);
    await repo.updateCategory(trx, id, changes);
    return categoryRow(trx, id);
  });
  await ctx.events.emit('category.updated', { id, fields: Object.keys(changes) });
  return toCategory(row, ctx.media);
}

/** Deactivates the category only; its products stay as they are. */
export async function deactivateCategory(ctx: Ctx, id: number): Promise<void> {
  if (!(await repo.updateCategory(ctx.database.db, id, { is_active: false }))) throw new AppError('not_found');
  await ctx.events.emit('category.deleted', { id });
}

/** Active products with 0 < stock ≤ their threshold, lowest stock first. */
export async function lowStock(ctx: Ctx): Promise<LowStockResult> {
  // The primary: staff look here right after their own stock edits, and the list is not cached.
  const rows = await repo.listProductCards(ctx.database.db, { stock: 'low_stock' }, 'stock_asc');
  const results = rows.map((r) => toProductCard(r, ctx.media));
  return { results, count: results.length };
}
