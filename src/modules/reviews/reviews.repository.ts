// Review SQL. Rating aggregates on products are kept by a trigger (migration 001), in the same
// transaction as each review write.
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { ReviewRowLike } from './reviews.mapper.ts';

export async function countForProduct(db: Db, productId: number): Promise<number> {
  const row = await db
    .selectFrom('reviews')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('product_id', '=', productId)
    .executeTakeFirstOrThrow();
  return row.n;
}

export async function listForProduct(db: Db, productId: number, limit: number, offset: number): Promise<ReviewRowLike[]> {
  return db
    .selectFrom('reviews as r')
    .innerJoin('users as u', 'u.id', 'r.user_id')
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
    .where('r.product_id', '=', productId)
    .orderBy('r.created_at', 'desc')
    .orderBy('r.id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}
