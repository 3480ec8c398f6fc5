// Reviews: the public list, and each user's own reviews (one per product). Rating aggregates on
// the product follow every write through the reviews triggers, in the write's own statement.
import type { Ctx } from '../../infra/http/context.ts';
import { AppError, fieldError } from '../../infra/http/errors.ts';
import { paginate, type PageQuery, type PageResult } from '../../infra/http/pagination.ts';
import type { UserRow } from '../accounts/accounts.repository.ts';
import { toOwnReview, toReview } from './reviews.mapper.ts';
import * as repo from './reviews.repository.ts';
import type { Review, ReviewChanges, ReviewInput } from './reviews.schemas.ts';

type Author = Pick<UserRow, 'id' | 'first_name' | 'last_name'>;

/** A product's reviews, newest first (an unknown product simply has none, as in DRF). */
export async function listReviews(ctx: Ctx, productId: number, page: PageQuery): Promise<PageResult<Review>> {
  return paginate(
    page,
    () => ctx.database.read((db) => repo.countForProduct(db, productId)),
    async (limit, offset) => (await ctx.database.read((db) => repo.listForProduct(db, productId, limit, offset))).map(toReview),
  );
}

/** Trimmed, as DRF's CharField does, and never blank. */
function reviewText(raw: string): string {
  const text = raw.trim();
  if (!text) throw fieldError('review_text', 'This field may not be blank.');
  return text;
}

/**
 * A second review of the same product breaks the unique constraint: 409, as the contract says.
 * So does a product that does not exist or is inactive.
 */
export async function createReview(ctx: Ctx, author: Author, productId: number, body: ReviewInput): Promise<Review> {
  const row = await repo.insertForActiveProduct(ctx.database.db, { productId, userId: author.id, rating: Number(body.rating), reviewText: reviewText(body.review_text) });
  if (!row) throw new AppError('conflict');
  await ctx.events.emit('review.created', { id: row.id, productId });
  return toOwnReview(row, author);
}

/** The caller's own review; anyone else's is as missing as one that does not exist. */
export async function getOwnReview(ctx: Ctx, author: Author, id: number): Promise<Review> {
  const row = await repo.findOwn(ctx.database.db, id, author.id);
  if (!row) throw new AppError('not_found');
  return toOwnReview(row, author);
}

/** PUT and PATCH alike: the body schema decides which fields are required. */
export async function updateOwnReview(ctx: Ctx, author: Author, id: number, body: ReviewChanges): Promise<Review> {
  const changes: { rating?: number; review_text?: string } = {};
  if (body.rating !== undefined) changes.rating = Number(body.rating);
  if (body.review_text !== undefined) changes.review_text = reviewText(body.review_text);
  const row = await repo.updateOwn(ctx.database.db, id, author.id, changes);
  if (!row) throw new AppError('not_found');
  await ctx.events.emit('review.updated', { id, productId: row.product });
  return toOwnReview(row, author);
}

export async function deleteOwnReview(ctx: Ctx, author: Author, id: number): Promise<void> {
  const productId = await repo.deleteOwn(ctx.database.db, id, author.id);
  if (productId === undefined) throw new AppError('not_found');
  await ctx.events.emit('review.deleted', { id, productId });
}
