import type { Ctx } from '../../infra/http/context.ts';
import { paginate, type PageQuery, type PageResult } from '../../infra/http/pagination.ts';
import { toReview } from './reviews.mapper.ts';
import * as repo from './reviews.repository.ts';
import type { Review } from './reviews.schemas.ts';

/** A product's reviews, newest first (an unknown product simply has none, as in DRF). */
export async function listReviews(ctx: Ctx, productId: number, page: PageQuery): Promise<PageResult<Review>> {
  return paginate(
    page,
    () => ctx.database.read((db) => repo.countForProduct(db, productId)),
    async (limit, offset) => (await ctx.database.read((db) => repo.listForProduct(db, productId, limit, offset))).map(toReview),
  );
}
