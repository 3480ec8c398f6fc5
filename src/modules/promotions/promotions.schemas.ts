// Wire shapes of /api/promotions/ (API-CONTRACT.md §2.7, with §4.6), as TypeBox schemas.
import { Type, type Static } from 'typebox';
import { DateTime, Decimal2, Nullable, Paginated } from '../../infra/http/schema.ts';
import { Category, ProductCard } from '../catalog/catalog.schemas.ts';

export const DISCOUNT_TYPES = ['percentage', 'fixed', 'free_shipping'] as const;
export const USAGE_TYPES = ['single', 'limited', 'unlimited'] as const;
export type DiscountType = (typeof DISCOUNT_TYPES)[number];
export type UsageType = (typeof USAGE_TYPES)[number];

export const Promotion = Type.Object({
  id: Type.Integer(),
  code: Type.String(),
  description: Type.String(),
  discount_type: Type.String({ enum: [...DISCOUNT_TYPES] }),
  discount_value: Decimal2,
  usage_type: Type.String({ enum: [...USAGE_TYPES] }),
  usage_limit: Nullable(Type.Integer()),
  usage_limit_per_user: Type.Integer(),
  valid_from: DateTime,
  valid_until: DateTime,
  is_active: Type.Boolean(),
  is_valid: Type.Boolean({ description: 'Active and now within valid_from..valid_until' }),
  minimum_order_amount: Decimal2,
  applicable_to_all: Type.Boolean(),
  applicable_products: Type.Array(ProductCard),
  applicable_categories: Type.Array(Category),
  first_order_only: Type.Boolean(),
  logged_in_only: Type.Boolean(),
  created_at: DateTime,
  updated_at: DateTime,
});
export type Promotion = Static<typeof Promotion>;
export const PromotionPage = Paginated(Promotion);

export const Campaign = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  start_date: DateTime,
  end_date: DateTime,
  is_active: Type.Boolean(),
  is_running: Type.Boolean({ description: 'Active and now within start_date..end_date' }),
  promotion_codes: Type.Array(Promotion),
  created_at: DateTime,
  updated_at: DateTime,
});
export type Campaign = Static<typeof Campaign>;
export const CampaignPage = Paginated(Campaign);

/** Lists here take `page` only: page_size is a catalog extension (§1.5, §4.1). */
export const PageQuery = Type.Object({ page: Type.Optional(Type.String({ description: 'Page number (1-based) or `last`' })) });

// validate/ and apply/ answer every refusal in the contract's ad-hoc `{"error": …}` shape, so
// their fields are checked by the service, not the schema (which would give the wrapped shape).
export const ValidateBody = Type.Object({
  code: Type.Optional(Type.Unknown({ description: 'The code, in any case' })),
  order_amount: Type.Optional(Type.Unknown({ description: 'Decimal string or number; default 0' })),
});
export type ValidateInput = Static<typeof ValidateBody>;

export const ValidateResult = Type.Object({
  valid: Type.Boolean(),
  message: Type.String(),
  promotion: Type.Optional(Promotion),
  discount_amount: Type.Optional(Type.Number()),
  discount_type: Type.Optional(Type.String({ enum: [...DISCOUNT_TYPES] })),
});
export type ValidateResult = Static<typeof ValidateResult>;

export const ApplyBody = Type.Object({
  code: Type.Optional(Type.Unknown()),
  subtotal: Type.Optional(Type.Unknown({ description: 'Decimal string or number; default 0' })),
  cart_items: Type.Optional(Type.Unknown({ description: '[{product_id, price, quantity}]; needed for codes restricted to products or categories' })),
});
export type ApplyInput = Static<typeof ApplyBody>;

export const ApplyResult = Type.Object({
  success: Type.Literal(true),
  promotion: Promotion,
  discount_amount: Type.Number(),
  applicable_items_total: Type.Number(),
  final_total: Type.Number(),
});
export type ApplyResult = Static<typeof ApplyResult>;

// Staff writes. Unknown keys pass validation, so read-only fields sent back (id, is_valid,
// timestamps…) are ignored. Datetimes and amounts are checked by the service, with DRF's messages.
const DecimalInput = (description: string) =>
  Type.Unsafe<string | number>({ type: ['string', 'number'], maxLength: 40, description: `${description}: a decimal string or number, at most 2 places` });
const DateTimeInput = (description: string) => Type.String({ maxLength: 64, description: `${description}: ISO-8601; without an offset it is UTC` });
const Ids = (description: string) => Type.Array(Type.Integer({ minimum: 1, maximum: 2147483647 }), { maxItems: 1000, description });

const PromotionFields = {
  code: Type.Optional(
    Type.String({ maxLength: 50, pattern: '^[A-Za-z0-9_-]*$', 'x-message': 'Use only letters, digits, "-" and "_".', description: 'Stored upper-case; empty on create: a random 8-character code' }),
  ),
  description: Type.Optional(Type.String({ maxLength: 1000 })),
  discount_type: Type.String({ enum: [...DISCOUNT_TYPES] }),
  discount_value: Type.Optional(DecimalInput('Percent (0-100) or amount off; required unless free_shipping')),
  usage_type: Type.Optional(Type.String({ enum: [...USAGE_TYPES], description: 'Default single' })),
  usage_limit: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 2147483647, description: 'Uses in all; required for limited' }))),
  usage_limit_per_user: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Default 1' })),
  valid_from: DateTimeInput('Start'),
  valid_until: DateTimeInput('End, after valid_from'),
  is_active: Type.Optional(Type.Boolean()),
  minimum_order_amount: Type.Optional(DecimalInput('Minimum order amount')),
  applicable_to_all: Type.Optional(Type.Boolean()),
  applicable_product_ids: Type.Optional(Ids('Product ids the code is restricted to (replaces the list)')),
  applicable_products: Type.Optional(Ids('Alias of applicable_product_ids')),
  applicable_category_ids: Type.Optional(Ids('Category ids the code is restricted to (replaces the list)')),
  applicable_categories: Type.Optional(Ids('Alias of applicable_category_ids')),
  first_order_only: Type.Optional(Type.Boolean()),
  logged_in_only: Type.Optional(Type.Boolean()),
};
/** POST and PUT: discount_type and the validity window are required; fields left out keep their value (PUT) or default (POST). */
export const PromotionBody = Type.Object(PromotionFields);
export type PromotionInput = Static<typeof PromotionBody>;
export const PromotionPatch = Type.Partial(Type.Object(PromotionFields));
export type PromotionChanges = Static<typeof PromotionPatch>;

const CampaignFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Type.String({ maxLength: 100_000 })),
  start_date: DateTimeInput('Start'),
  end_date: DateTimeInput('End, after start_date'),
  is_active: Type.Optional(Type.Boolean()),
  promotion_code_ids: Type.Optional(Ids('Ids of the promotion codes in the campaign (replaces the list)')),
  promotion_codes: Type.Optional(Ids('Alias of promotion_code_ids')),
};
export const CampaignBody = Type.Object(CampaignFields);
export type CampaignInput = Static<typeof CampaignBody>;
export const CampaignPatch = Type.Partial(Type.Object(CampaignFields));
export type CampaignChanges = Static<typeof CampaignPatch>;

export const AnalyticsQuery = Type.Object({
  start_date: Type.Optional(Type.String({ maxLength: 64, description: 'YYYY-MM-DD or a datetime; uses from then on' })),
  end_date: Type.Optional(Type.String({ maxLength: 64, description: 'YYYY-MM-DD (the whole day) or a datetime; uses up to then' })),
});
export type AnalyticsQuery = Static<typeof AnalyticsQuery>;

export const Analytics = Type.Object({
  analytics: Type.Array(
    Type.Object({
      code: Type.String(),
      description: Type.String(),
      total_uses: Type.Integer({ description: 'Orders placed with the code in the range' }),
      total_discount: Type.Number(),
      unique_users: Type.Integer({ description: 'Distinct signed-in customers among those uses' }),
      conversion_rate: Type.String({ description: "The range's share of all the code's uses, e.g. \"25.00%\"" }),
    }),
  ),
  total_promotions: Type.Integer(),
  date_range: Type.Object({ start: Nullable(Type.String()), end: Nullable(Type.String()) }),
});
export type Analytics = Static<typeof Analytics>;
