import { apiTime } from '../../infra/http/format.ts';
import type { Review } from './reviews.schemas.ts';

export interface ReviewRowLike {
  id: number;
  first_name: string;
  last_name: string;
  rating: number;
  review_text: string;
  is_verified_purchase: boolean;
  created_at: string;
  updated_at: string;
  product: number;
  user: number;
}

/** "First L.", or the first name alone when there is no last name. */
export function displayName(first: string, last: string): string {
  const initial = last.trim().charAt(0);
  return initial ? `${first} ${initial.toUpperCase()}.` : first;
}

export function toReview(r: ReviewRowLike): Review {
  return {
    id: r.id,
    user_name: displayName(r.first_name, r.last_name),
    rating: r.rating,
    review_text: r.review_text,
    is_verified_purchase: r.is_verified_purchase,
    created_at: apiTime(r.created_at),
    updated_at: apiTime(r.updated_at),
    product: r.product,
    user: r.user,
  };
}

/** A review written by `author` (the caller), whose name the row does not carry. */
export function toOwnReview(r: Omit<ReviewRowLike, 'first_name' | 'last_name'>, author: { first_name: string; last_name: string }): Review {
  return toReview({ ...r, first_name: author.first_name, last_name: author.last_name });
}
