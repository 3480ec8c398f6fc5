// All promotion SQL: codes with their products and categories (one statement per page, as JSON),
// campaigns, usage counts under the code's row lock, and the staff writes.
import { sql, type Insertable, type Selectable, type Updateable } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { CampaignsTable, PromotionCodesTable } from '../../db/schema.ts';
import type { CategoryRow, ProductCardRow } from '../catalog/catalog.repository.ts';
import { PRODUCT_CARD_JSON } from '../cart/cart.repository.ts';

export type PromotionRow = Selectable<PromotionCodesTable>;

/** A code as one JSON value: money as text, timestamps in JSON's ISO form, its products and categories. */
export interface PromotionJson extends PromotionRow {
  applicable_products: ProductCardRow[];
  applicable_categories: CategoryRow[];
}

const CATEGORY_JSON = sql`json_build_object(
  'id', cat.id, 'products_count', (select count(*)::int from products x where x.category_id = cat.id and x.is_active),
  'name', cat.name, 'description', cat.description, 'image', cat.image, 'image_variants', cat.image_variants, 'is_active', cat.is_active,
  'created_at', cat.created_at, 'updated_at', cat.updated_at)`;

/**
 * Over promotion_codes aliased `pc`. `shown: 'public'` (the active list, validate/, apply/) leaves
 * out the products the shop no longer sells and the categories it hides; staff see every target.
 */
const promotionJson = (shown: 'public' | 'staff') => sql`json_build_object(
  'id', pc.id, 'code', pc.code, 'description', pc.description, 'discount_type', pc.discount_type,
  'discount_value', pc.discount_value::text, 'usage_type', pc.usage_type, 'usage_limit', pc.usage_limit,
  'usage_limit_per_user', pc.usage_limit_per_user, 'valid_from', pc.valid_from, 'valid_until', pc.valid_until,
  'is_active', pc.is_active, 'minimum_order_amount', pc.minimum_order_amount::text,
  'applicable_to_all', pc.applicable_to_all, 'first_order_only', pc.first_order_only,
  'logged_in_only', pc.logged_in_only, 'created_at', pc.created_at, 'updated_at', pc.updated_at,
  'applicable_products', coalesce((select json_agg(${PRODUCT_CARD_JSON} order by p.id)
      from promotion_products pp
      join products p on p.id = pp.product_id
      join categories cat on cat.id = p.category_id
      left join product_images mi on mi.product_id = p.id and mi.is_main
     where pp.promotion_id = pc.id${shown === 'public' ? sql` and p.is_active` : sql``}), '[]'),
  'applicable_categories', coalesce((select json_agg(${CATEGORY_JSON} order by cat.id)
      from promotion_categories pcat
      join categories cat on cat.id = pcat.category_id
     where pcat.promotion_id = pc.id${shown === 'public' ? sql` and cat.is_active` : sql``}), '[]'))`;
const PROMOTION_JSON = promotionJson('staff');
const PUBLIC_PROMOTION_JSON = promotionJson('public');

/** Shown on the public list: active, within the window, and not for signed-in customers only. */
const PUBLIC = (now: string) => sql`pc.is_active and pc.valid_from <= ${now}::timestamptz and pc.valid_until >= ${now}::timestamptz and not pc.logged_in_only`;

export async function countActive(db: Db, now: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from promotion_codes pc where ${PUBLIC(now)}`.execute(db);
  return rows[0]!.n;
}

export async function listActive(db: Db, now: string, limit: number, offset: number): Promise<PromotionJson[]> {
  const { rows } = await sql<{ promotion: PromotionJson }>`
    select ${PUBLIC_PROMOTION_JSON} as promotion from promotion_codes pc
     where ${PUBLIC(now)}
     order by pc.created_at desc, pc.id desc limit ${limit} offset ${offset}`.execute(db);
  return rows.map((r) => r.promotion);
}

export async function countCodes(db: Db): Promise<number> {
  return (await db.selectFrom('promotion_codes').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow()).n;
}

export async function listCodes(db: Db, limit: number, offset: number): Promise<PromotionJson[]> {
  const { rows } = await sql<{ promotion: PromotionJson }>`
    select ${PROMOTION_JSON} as promotion from promotion_codes pc
     order by pc.created_at desc, pc.id desc limit ${limit} offset ${offset}`.execute(db);
  return rows.map((r) => r.promotion);
}

export async function findPromotion(db: Db, id: number): Promise<PromotionJson | undefined> {
  const { rows } = await sql<{ promotion: PromotionJson }>`select ${PROMOTION_JSON} as promotion from promotion_codes pc where pc.id = ${id}`.execute(db);
  return rows[0]?.promotion;
}

/** By code, in any case (the unique index is on upper(code)), as the public sees it, with every id it is restricted to. */
export async function findPromotionByCode(db: Db, code: string): Promise<(PromotionJson & { product_ids: number[]; category_ids: number[] }) | undefined> {
  const { rows } = await sql<{ promotion: PromotionJson; product_ids: number[]; category_ids: number[] }>`
    select ${PUBLIC_PROMOTION_JSON} as promotion,
           coalesce((select json_agg(pp.product_id) from promotion_products pp where pp.promotion_id = pc.id), '[]') as product_ids,
           coalesce((select json_agg(pcat.category_id) from promotion_categories pcat where pcat.promotion_id = pc.id), '[]') as category_ids
      from promotion_codes pc where upper(pc.code) = upper(${code}::text)`.execute(db);
  const r = rows[0];
  return r && { ...r.promotion, product_ids: r.product_ids, category_ids: r.category_ids };
}

export interface LockedPromotion extends PromotionRow {
  product_ids: number[];
  category_ids: number[];
}

/**
 * The code's row, locked until the transaction ends, with the ids it is restricted to. Every hold
 * of one code queues here, so the usages each one counts include those committed before it.
 * Lock order 6 (after the products, see payments.repository.ts), FOR NO KEY UPDATE: holds still
 * queue on each other, but a payment inserting its order (whose foreign key takes KEY SHARE on the
 * code) never waits on a checkout holding the code, so the two cannot deadlock.
 */
export async function lockByCode(db: Db, code: string): Promise<LockedPromotion | undefined> {
  const { rows } = await sql<LockedPromotion>`
    select pc.*,
           coalesce((select json_agg(pp.product_id) from promotion_products pp where pp.promotion_id = pc.id), '[]') as product_ids,
           coalesce((select json_agg(pcat.category_id) from promotion_categories pcat where pcat.promotion_id = pc.id), '[]') as category_ids
      from promotion_codes pc
     where upper(pc.code) = upper(${code}::text)
       for no key update of pc`.execute(db);
  return rows[0];
}

export interface UsageFacts {
  /** Every use of the code: held by open checkouts and kept by orders. */
  total: number;
  /** Those of this user (0 for a guest). */
  mine: number;
  /** Whether this user has ever placed an order (false for a guest). */
  has_orders: boolean;
}

export async function usageFacts(db: Db, promotionId: number, userId: number | null): Promise<UsageFacts> {
  const { rows } = await sql<UsageFacts>`
    select (select count(*)::int from promotion_usages u where u.promotion_id = ${promotionId}) as total,
           (select count(*)::int from promotion_usages u where u.promotion_id = ${promotionId} and u.user_id = ${userId}) as mine,
           exists (select 1 from orders o where o.user_id = ${userId}) as has_orders`.execute(db);
  return rows[0]!;
}

/** product id → category id, for the given products that exist. */
export async function productCategories(db: Db, productIds: number[]): Promise<Map<number, number>> {
  if (productIds.length === 0) return new Map();
  const rows = await db.selectFrom('products').select(['id', 'category_id']).where('id', 'in', productIds).execute();
  return new Map(rows.map((r) => [r.id, r.category_id]));
}

export async function insertUsage(db: Db, u: { promotionId: number; userId: number | null; checkoutId: number; discount: string }): Promise<void> {
  await db.insertInto('promotion_usages').values({ promotion_id: u.promotionId, user_id: u.userId, checkout_id: u.checkoutId, discount_amount: u.discount }).execute();
}

// Staff writes. Services run them in one transaction and pass its `trx`.

export type NewPromotion = Insertable<PromotionCodesTable>;
export type PromotionUpdate = Updateable<PromotionCodesTable>;

/** A staff edit's lock: NO KEY UPDATE (the code is not a foreign key's target column), so orders paid meanwhile do not wait. */
export async function lockPromotion(db: Db, id: number): Promise<PromotionRow | undefined> {
  return db.selectFrom('promotion_codes').selectAll().where('id', '=', id).forNoKeyUpdate().executeTakeFirst();
}

export async function codeTaken(db: Db, code: string, exceptId?: number): Promise<boolean> {
  let qb = db.selectFrom('promotion_codes').select('id').where(sql<boolean>`upper(code) = upper(${code}::text)`);
  if (exceptId !== undefined) qb = qb.where('id', '<>', exceptId);
  return (await qb.executeTakeFirst()) !== undefined;
}

export async function insertPromotion(db: Db, values: NewPromotion): Promise<number> {
  return (await db.insertInto('promotion_codes').values(values).returning('id').executeTakeFirstOrThrow()).id;
}

/** Applies `changes` and bumps updated_at. */
export async function updatePromotion(db: Db, id: number, changes: PromotionUpdate): Promise<void> {
  await db.updateTable('promotion_codes').set({ ...changes, updated_at: sql<string>`now()` }).where('id', '=', id).execute();
}

/**
 * Before a code is deleted: the checkouts and orders that point at it (their promotion_id is set
 * null by the delete) are locked first, in id order, as every other write path takes checkouts and
 * orders before a promotion code (payments.repository.ts). Without this, the delete held the code
 * while waiting for a checkout a payment held, and the payment waited for the code.
 */
export async function lockReferencesOf(db: Db, id: number): Promise<void> {
  await db.selectFrom('checkouts').select('id').where('promotion_id', '=', id).orderBy('id').forNoKeyUpdate().execute();
  await db.selectFrom('orders').select('id').where('promotion_id', '=', id).orderBy('id').forNoKeyUpdate().execute();
}

/** Deletes the code (its usages, links and campaign memberships go with it); false when there is none. */
export async function deletePromotion(db: Db, id: number): Promise<boolean> {
  const r = await db.deleteFrom('promotion_codes').where('id', '=', id).executeTakeFirst();
  return r.numDeletedRows > 0n;
}

/** How many products and categories the code is restricted to. */
export async function targetCounts(db: Db, id: number): Promise<{ products: number; categories: number }> {
  const { rows } = await sql<{ products: number; categories: number }>`
    select (select count(*)::int from promotion_products where promotion_id = ${id}) as products,
           (select count(*)::int from promotion_categories where promotion_id = ${id}) as categories`.execute(db);
  return rows[0]!;
}

/**
 * Which of these ids exist, each row held FOR KEY SHARE (in id order) until the transaction ends:
 * a staff write takes the rows its links will point at before it touches the links, as a
 * deletion of one of them (which takes the row, then deletes its links) does. Checking without
 * the lock, a campaign write deleted its link to a code, then waited for the code a deletion
 * held, while the deletion waited for that link: a deadlock.
 */
export async function existingIds(db: Db, table: 'products' | 'categories' | 'promotion_codes', ids: number[]): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const rows = await db.selectFrom(table).select('id').where('id', 'in', [...new Set(ids)].sort((a, b) => a - b)).orderBy('id').forKeyShare().execute();
  return new Set(rows.map((r) => r.id));
}

export async function setProducts(db: Db, promotionId: number, productIds: number[]): Promise<void> {
  await db.deleteFrom('promotion_products').where('promotion_id', '=', promotionId).execute();
  if (productIds.length) await db.insertInto('promotion_products').values(productIds.map((product_id) => ({ promotion_id: promotionId, product_id }))).execute();
}

export async function setCategories(db: Db, promotionId: number, categoryIds: number[]): Promise<void> {
  await db.deleteFrom('promotion_categories').where('promotion_id', '=', promotionId).execute();
  if (categoryIds.length) await db.insertInto('promotion_categories').values(categoryIds.map((category_id) => ({ promotion_id: promotionId, category_id }))).execute();
}

// Campaigns.

export type CampaignRow = Selectable<CampaignsTable>;
export type NewCampaign = Insertable<CampaignsTable>;
export type CampaignUpdate = Updateable<CampaignsTable>;

export interface CampaignJson extends CampaignRow {
  promotion_codes: PromotionJson[];
}

function selectCampaigns() {
  return sql`
    select cm.id, cm.name, cm.description, cm.start_date, cm.end_date, cm.is_active, cm.created_at, cm.updated_at,
           coalesce((select json_agg(${PROMOTION_JSON} order by pc.id)
               from campaign_codes cc join promotion_codes pc on pc.id = cc.promotion_id
              where cc.campaign_id = cm.id), '[]') as promotion_codes
      from campaigns cm`;
}

export async function countCampaigns(db: Db): Promise<number> {
  return (await db.selectFrom('campaigns').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow()).n;
}

export async function listCampaigns(db: Db, limit: number, offset: number): Promise<CampaignJson[]> {
  const { rows } = await sql<CampaignJson>`${selectCampaigns()} order by cm.created_at desc, cm.id desc limit ${limit} offset ${offset}`.execute(db);
  return rows;
}

export async function findCampaign(db: Db, id: number): Promise<CampaignJson | undefined> {
  const { rows } = await sql<CampaignJson>`${selectCampaigns()} where cm.id = ${id}`.execute(db);
  return rows[0];
}

export async function lockCampaign(db: Db, id: number): Promise<CampaignRow | undefined> {
  return db.selectFrom('campaigns').selectAll().where('id', '=', id).forNoKeyUpdate().executeTakeFirst();
}

export async function insertCampaign(db: Db, values: NewCampaign): Promise<number> {
  return (await db.insertInto('campaigns').values(values).returning('id').executeTakeFirstOrThrow()).id;
}

export async function updateCampaign(db: Db, id: number, changes: CampaignUpdate): Promise<void> {
  await db.updateTable('campaigns').set({ ...changes, updated_at: sql<string>`now()` }).where('id', '=', id).execute();
}

export async function deleteCampaign(db: Db, id: number): Promise<boolean> {
  const r = await db.deleteFrom('campaigns').where('id', '=', id).executeTakeFirst();
  return r.numDeletedRows > 0n;
}

export async function setCampaignCodes(db: Db, campaignId: number, promotionIds: number[]): Promise<void> {
  await db.deleteFrom('campaign_codes').where('campaign_id', '=', campaignId).execute();
  if (promotionIds.length) await db.insertInto('campaign_codes').values(promotionIds.map((promotion_id) => ({ campaign_id: campaignId, promotion_id }))).execute();
}

// Analytics.

export interface AnalyticsRow {
  code: string;
  description: string;
  total_uses: number;
  total_discount: string;
  unique_users: number;
  all_uses: number;
}

/**
 * Per code, its uses that became orders placed within [from, until] (null: open): how many, the
 * discount given, distinct customers, and all such uses ever. Most used first.
 */
export async function usageByCode(db: Db, from: string | null, until: string | null): Promise<AnalyticsRow[]> {
  const inRange = sql`(${from}::timestamptz is null or o.created_at >= ${from}::timestamptz) and (${until}::timestamptz is null or o.created_at <= ${until}::timestamptz)`;
  const { rows } = await sql<AnalyticsRow>`
    select pc.code, pc.description,
           (count(u.id) filter (where ${inRange}))::int as total_uses,
           coalesce(sum(u.discount_amount) filter (where ${inRange}), 0)::numeric(12, 2)::text as total_discount,
           (count(distinct u.user_id) filter (where ${inRange}))::int as unique_users,
           count(u.id)::int as all_uses
      from promotion_codes pc
      left join (promotion_usages u join orders o on o.id = u.order_id) on u.promotion_id = pc.id
     group by pc.id
     order by total_uses desc, pc.created_at desc, pc.id desc`.execute(db);
  return rows;
}
