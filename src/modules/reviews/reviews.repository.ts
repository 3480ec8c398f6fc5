// Review SQL. Rating aggregates on products are kept by a trigger (migration 001), in the same
// transaction as each review write.
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { ReviewRowLike } from './reviews.mapper.ts';

/**
 * What the public may see of a product's reviews: none while the product is inactive (as for a
 * product that does not exist), and none written by a deactivated account.
 */
function publicReviews(db: Db, productId: number) {
  return db
    .selectFrom('reviews as r')
    .innerJoin('products as p', (j) => j.onRef('p.id', '=', 'r.product_id').on('p.is_active', '=', true))
    .innerJoin('users as u', (j) => j.onRef('u.id', '=', 'r.user_id').on('u.is_active', '=', true))
    .where('r.product_id', '=', productId);
}

export async function countForProduct(db: Db, productId: number): Promise<number> {
  const row = await publicReviews(db, productId).select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
  return row.n;
}

export async function listForProduct(db: Db, productId: number, limit: number, offset: number): Promise<ReviewRowLike[]> {
  return publicReviews(db, productId)
    .select([
      'r.id',
      'u.first_name',
      'u.last_name',
      'r.rating',
      'r.review_text',
      'r.is_verified_purchase',
      'r.created_at',
      'r.updated_at',
      'r.product_id as product',
      'r.user_id as user',
    ])
    .orderBy('r.created_at', 'desc')
    .orderBy('r.id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

/** A review without its author's name (the author is the caller, whose name the service has). */
export type OwnReviewRow = Omit<ReviewRowLike, 'first_name' | 'last_name'>;

const OWN_REVIEW_COLUMNS = [
  'id',
  'rating',
  'review_text',
  'is_verified_purchase',
  'created_at',
  'updated_at',
  'product_id as product',
  'user_id as user',
] as const;

export interface NewReview {
  productId: number;
  userId: number;
  rating: number;
  reviewText: string;
}

/** Inserts the review if its product exists and is active; undefined otherwise. */
export async function insertForActiveProduct(db: Db, r: NewReview): Promise<OwnReviewRow | undefined> {
  const { rows } = await sql<OwnReviewRow>`
    insert into reviews (product_id, user_id, rating, review_text)
    select p.id, ${r.userId}::bigint, ${r.rating}::smallint, ${r.reviewText}::text
      from products p
     where p.id = ${r.productId} and p.is_active
    returning id, rating, review_text, is_verified_purchase, created_at, updated_at, product_id as product, user_id as user`.execute(db);
  return rows[0];
}

export async function findOwn(db: Db, id: number, userId: number): Promise<OwnReviewRow | undefined> {
  return db.selectFrom('reviews').select(OWN_REVIEW_COLUMNS).where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
}

/** Applies the changes and bumps updated_at; undefined when the user has no such review. */
export async function updateOwn(db: Db, id: number, userId: number, changes: { rating?: number; review_text?: string }): Promise<OwnReviewRow | undefined> {
  return db
    .updateTable('reviews')
    .set({ ...changes, updated_at: sql<string>`now()` })
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .returning(OWN_REVIEW_COLUMNS)
    .executeTakeFirst();
}

/** Deletes the review; its product id, or undefined when the user has no such review. */
export async function deleteOwn(db: Db, id: number, userId: number): Promise<number | undefined> {
  const row = await db.deleteFrom('reviews').where('id', '=', id).where('user_id', '=', userId).returning('product_id').executeTakeFirst();
  return row?.product_id;
}
