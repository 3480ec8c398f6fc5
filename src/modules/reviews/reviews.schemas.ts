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
export const ProductIdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2147483647 }) });
