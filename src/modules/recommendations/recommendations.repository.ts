// All recommendation SQL: a product's recommendations, a shopper's picks from their own views,
// the shop-wide ranking (trending, most viewed), view recording and the staff's product links.
// Each function runs exactly one statement, however many products it returns. Time windows
// are index ranges on product_views (viewed_at, product_id) and orders (created_at); a product's
// category is walked featured first, then newest, on products_active_category_featured (006).
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { Owner } from '../accounts/session.ts';
import { PRODUCT_CARD_JSON } from '../cart/cart.repository.ts';
import type { ProductCardRow } from '../catalog/catalog.repository.ts';
import type { RelationshipType } from './recommendations.schemas.ts';

/** Where a recommendation comes from: a staff link's type, shared orders, or the category. */
export type RecommendationSource = RelationshipType | 'bought' | 'category';

export interface RecommendationJson {
  product: ProductCardRow;
  source: RecommendationSource;
}

/** Card columns for the picked ids `k.id` (PRODUCT_CARD_JSON's aliases). */
const CARD_JOINS = sql`join products p on p.id = k.id
      join categories cat on cat.id = p.category_id
      left join product_images mi on mi.product_id = p.id and mi.is_main`;

const since = (days: number) => sql`now() - ${days}::int * interval '1 day'`;

export interface ProductPicksLimits {
  total: number;
  bought: number;
  category: number;
  /** How many of the product's latest orders (not cancelled) "bought together" looks at. */
  orders: number;
}

/**
 * A product's recommendations, best first, and whether the product is active at all (so an
 * unknown one is told apart from one with nothing to recommend). Scores: a staff link's
 * strength, 0.7 for products in the same orders (not cancelled), 0.5 for the newest of its
 * category (featured first). Each product once, under its best reason; never the product itself.
 */
export async function productPicks(db: Db, productId: number, l: ProductPicksLimits): Promise<{ found: boolean; items: RecommendationJson[] }> {
  const { rows } = await sql<{ found: boolean; items: RecommendationJson[] }>`
    with target as (
      select id, category_id from products where id = ${productId} and is_active
    ),
    -- a product linked more than once (one link per type) counts under its strongest link
    links as (
      select distinct on (r.related_product_id) r.related_product_id as id, r.strength::float8 as score, r.relationship_type as source, r.id as link_id
        from target t
        join product_relationships r on r.product_id = t.id
        join products p on p.id = r.related_product_id and p.is_active
       order by r.related_product_id, r.strength desc, r.id
    ),
    linked as (
      select id, score, source, row_number() over (order by score desc, link_id) as rank
        from links order by score desc, link_id limit ${l.total}
    ),
    -- the product's latest orders bound the work for a best seller, and are plenty to rank by
    orders_with as (
      select o.id from target t
        join order_items oi on oi.product_id = t.id
        join orders o on o.id = oi.order_id and o.status <> 'cancelled'
       order by oi.order_id desc
       limit ${l.orders}
    ),
    bought as (
      select oi.product_id as id, row_number() over (order by count(distinct w.id) desc, oi.product_id desc) as rank
        from orders_with w
        join order_items oi on oi.order_id = w.id and oi.product_id <> ${productId}
        join products p on p.id = oi.product_id and p.is_active
       where oi.product_id not in (select id from linked)
       group by oi.product_id
       order by rank limit ${l.bought}
    ),
    -- the category as a value, so the scan is a short walk of products_active_category_featured
    same as (
      select p.id, row_number() over (order by p.is_featured desc, p.created_at desc, p.id desc) as rank
        from products p
       where p.category_id = (select category_id from target) and p.is_active and p.id <> ${productId}
         and p.id not in (select id from linked) and p.id not in (select id from bought)
       order by p.is_featured desc, p.created_at desc, p.id desc
       limit ${l.category}
    ),
    picks as (
      select id, score, source, 1 as tier, rank from linked
      union all select id, 0.7::float8, 'bought', 2, rank from bought
      union all select id, 0.5::float8, 'category', 3, rank from same
    )
    select exists (select 1 from target) as found,
           coalesce((select json_agg(json_build_object('product', ${PRODUCT_CARD_JSON}, 'source', k.source) order by k.score desc, k.tier, k.rank)
                       from (select * from picks order by score desc, tier, rank limit ${l.total}) k
                       ${CARD_JOINS}), '[]') as items`.execute(db);
  return rows[0]!;
}

// A shopper's latest views are plenty to know their taste, and a scraper's thousands cost no more.
const VIEWS_LOOKED_AT = 500;

/**
 * A shopper's picks: active products they have not viewed in the window, from the categories
 * they viewed most in it (then most recently), featured first, then newest.
 */
export async function viewerPicks(db: Db, owner: Owner, days: number, limit: number): Promise<ProductCardRow[]> {
  // Matches the partial index of each kind of viewer.
  const whose = owner.userId !== undefined ? sql`v.user_id = ${owner.userId}` : sql`v.session_key = ${owner.sessionKey}`;
  const { rows } = await sql<{ product: ProductCardRow }>`
    with seen as (
      select v.product_id, v.viewed_at from product_views v
       where ${whose} and v.viewed_at >= ${since(days)}
       order by v.viewed_at desc
       limit ${VIEWS_LOOKED_AT}
    ),
    cats as (
      select p.category_id, count(*) as views, max(s.viewed_at) as last_seen
        from seen s join products p on p.id = s.product_id
       group by p.category_id
       order by views desc, last_seen desc, p.category_id
       limit ${limit}
    ),
    k as (
      select x.id, c.views, c.last_seen, c.category_id, x.is_featured, x.created_at
        from cats c
        cross join lateral (
          select p.id, p.is_featured, p.created_at from products p
           where p.category_id = c.category_id and p.is_active and p.id not in (select product_id from seen)
           order by p.is_featured desc, p.created_at desc, p.id desc
           limit ${limit}) x
       order by c.views desc, c.last_seen desc, c.category_id, x.is_featured desc, x.created_at desc, x.id desc
       limit ${limit}
    )
    select ${PRODUCT_CARD_JSON} as product from k ${CARD_JOINS}
     order by k.views desc, k.last_seen desc, k.category_id, k.is_featured desc, k.created_at desc, k.id desc`.execute(db);
  return rows.map((r) => r.product);
}

export interface Ranking {
  /** The window, in days back from now. */
  days: number;
  /** Points per unit ordered in the window (orders not cancelled); 0 counts views alone. */
  unitWeight: number;
  limit: number;
}

export interface Scored {
  id: number;
  score: number;
}

/**
 * The `limit` products with the most points in the window: a view is a point, a unit ordered
 * `unitWeight`. Ties go to the newer product (the higher id). Reads views and orders only
 * (index ranges on their time columns), never products: an inactive one is left out later.
 */
export async function topScored(db: Db, r: Ranking): Promise<Scored[]> {
  const units =
    r.unitWeight > 0
      ? sql`union all
        select oi.product_id, ${r.unitWeight}::int * sum(oi.quantity)
          from orders o join order_items oi on oi.order_id = o.id
         where o.created_at >= ${since(r.days)} and o.status <> 'cancelled' and oi.product_id is not null
         group by oi.product_id`
      : sql``;
  const { rows } = await sql<Scored>`
    select product_id as id, sum(points)::int as score from (
      select v.product_id, count(*) as points from product_views v
       where v.viewed_at >= ${since(r.days)}
       group by v.product_id
      ${units}
    ) s
    group by product_id
    order by score desc, product_id desc
    limit ${r.limit}`.execute(db);
  return rows;
}

/**
 * Cards of the active products among `scored`, most points first; ties, and the places left
 * when too few scored (a new shop), go to featured products first, then the newest.
 */
export async function rankedCards(db: Db, scored: Scored[], limit: number): Promise<ProductCardRow[]> {
  const { rows } = await sql<{ product: ProductCardRow }>`
    with scores as (
      select * from unnest(${scored.map((s) => s.id)}::bigint[], ${scored.map((s) => s.score)}::int[]) as s (id, score)
    ),
    -- enough unscored products to fill every place in the order ties are broken in
    candidates as (
      select id from scores
      union (select id from products where is_active and is_featured order by created_at desc, id desc limit ${limit})
      union (select id from products where is_active order by created_at desc, id desc limit ${limit})
    ),
    k as (
      select p.id, coalesce(s.score, 0) as score, p.is_featured, p.created_at
        from candidates c
        join products p on p.id = c.id and p.is_active
        left join scores s on s.id = c.id
       order by score desc, p.is_featured desc, p.created_at desc, p.id desc
       limit ${limit}
    )
    select ${PRODUCT_CARD_JSON} as product from k ${CARD_JOINS}
     order by k.score desc, k.is_featured desc, k.created_at desc, k.id desc`.execute(db);
  return rows.map((x) => x.product);
}

/** One view of an active product by a user or a guest session (nothing for any other product). */
export async function recordView(db: Db, productId: number, owner: Owner): Promise<void> {
  await sql`
    insert into product_views (product_id, user_id, session_key)
    select id, ${owner.userId ?? null}::bigint, ${owner.sessionKey ?? null}::varchar
      from products where id = ${productId} and is_active`.execute(db);
}

// Staff links.

export interface RelationshipRow {
  id: number;
  product_id: number;
  related_product_id: number;
  relationship_type: RelationshipType;
  strength: string;
  created_at: string;
}

/** The ids among `ids` that name a product, active or not. */
export async function existingProductIds(db: Db, ids: number[]): Promise<number[]> {
  const rows = await db.selectFrom('products').select('id').where('id', 'in', ids).execute();
  return rows.map((r) => r.id);
}

/** Adds the link, or sets the strength of the same link (same products and type); `created` tells which. */
export async function upsertRelationship(
  db: Db,
  v: { product_id: number; related_product_id: number; relationship_type: RelationshipType; strength: number },
): Promise<RelationshipRow & { created: boolean }> {
  const { rows } = await sql<RelationshipRow & { created: boolean }>`
    insert into product_relationships (product_id, related_product_id, relationship_type, strength)
    values (${v.product_id}, ${v.related_product_id}, ${v.relationship_type}, ${v.strength})
    on conflict (product_id, related_product_id, relationship_type) do update set strength = excluded.strength
    returning id, product_id, related_product_id, relationship_type, strength::text, created_at, (xmax = 0) as created`.execute(db);
  return rows[0]!;
}

/** Deletes a link; the product it recommended for, or undefined when there was none. */
export async function deleteRelationship(db: Db, id: number): Promise<number | undefined> {
  const row = await db.deleteFrom('product_relationships').where('id', '=', id).returning('product_id').executeTakeFirst();
  return row?.product_id;
}
