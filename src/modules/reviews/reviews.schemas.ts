import { Type, type Static } from 'typebox';
import { DateTime, PageQuerySchema, Paginated } from '../../infra/http/schema.ts';

export const Review = Type.Object({
  id: Type.Integer(),
  user_name: Type.String({ description: '"First L." or the first name alone' }),
  rating: Type.Integer({ minimum: 1, maximum: 5 }),
  review_text: Type.String(),
  is_verified_purchase: Type.Boolean(),
  created_at: DateTime,
  updated_at: DateTime,
  product: Type.Integer(),
  user: Type.Integer(),
});
export type Review = Static<typeof Review>;

export const ReviewPage = Paginated(Review);
export const ReviewListQuery = Type.Object(PageQuerySchema);
/** `/api/products/reviews/{id}/`: the same kind of path id, naming a review. */

// Whole stars. No `type`, so anything else (7, 2.5, "abc", true) gets one message from the enum:
// DRF's `"7" is not a valid choice.` Numeric strings are accepted, as DRF's ChoiceField does.
const STARS = [1, 2, 3, 4, 5];
const Rating = Type.Unsafe<number | string>({ enum: [...STARS, ...STARS.map(String)], description: 'Whole stars, 1 to 5' });
const ReviewText = Type.String({ minLength: 1, maxLength: 5000, description: 'Trimmed; may not be blank' });

/** `is_verified_purchase`, `user` and the timestamps are read-only: sent values are ignored. */
export const ReviewBody = Type.Object({
  product: Type.Optional(Type.Integer({ description: 'Ignored: the product in the URL wins' })),
  rating: Rating,
  review_text: ReviewText,
});
export type ReviewInput = Static<typeof ReviewBody>;
export const ReviewPut = Type.Object({ rating: Rating, review_text: ReviewText });
export const ReviewPatch = Type.Partial(ReviewPut);
export type ReviewChanges = Static<typeof ReviewPatch>;
