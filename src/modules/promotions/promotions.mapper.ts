// Promotion and campaign rows to wire objects (the response schemas then serialise them).
import { apiTime } from '../../infra/http/format.ts';
import type { MediaUrl } from '../../infra/http/urls.ts';
import { toCategory, toProductCard } from '../catalog/catalog.mapper.ts';
import type { CampaignJson, PromotionJson } from './promotions.repository.ts';
import type { Campaign, Promotion } from './promotions.schemas.ts';

/** A database timestamp (text or JSON form) as epoch milliseconds. */
export function instant(value: string): number {
  return Date.parse(apiTime(value));
}

/** Whether `now` falls within [from, until], both ends included. */
export function within(from: string, until: string, now: Date): boolean {
  const t = now.getTime();
  return instant(from) <= t && t <= instant(until);
}

export function toPromotion(p: PromotionJson, media: MediaUrl, now: Date): Promotion {
  return {
    id: p.id,
    code: p.code,
    description: p.description,
    discount_type: p.discount_type,
    discount_value: p.discount_value,
    usage_type: p.usage_type,
    usage_limit: p.usage_limit,
    usage_limit_per_user: p.usage_limit_per_user,
    valid_from: apiTime(p.valid_from),
    valid_until: apiTime(p.valid_until),
    is_active: p.is_active,
    is_valid: p.is_active && within(p.valid_from, p.valid_until, now),
    minimum_order_amount: p.minimum_order_amount,
    applicable_to_all: p.applicable_to_all,
    applicable_products: p.applicable_products.map((r) => toProductCard(r, media)),
    applicable_categories: p.applicable_categories.map((r) => toCategory(r, media)),
    first_order_only: p.first_order_only,
    logged_in_only: p.logged_in_only,
    created_at: apiTime(p.created_at),
    updated_at: apiTime(p.updated_at),
  };
}

export function toCampaign(c: CampaignJson, media: MediaUrl, now: Date): Campaign {
  return {
    id: c.id,
    name: c.name,
    description: c.description,
    start_date: apiTime(c.start_date),
    end_date: apiTime(c.end_date),
    is_active: c.is_active,
    is_running: c.is_active && within(c.start_date, c.end_date, now),
    promotion_codes: c.promotion_codes.map((p) => toPromotion(p, media, now)),
    created_at: apiTime(c.created_at),
    updated_at: apiTime(c.updated_at),
  };
}
