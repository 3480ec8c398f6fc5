// Wire shapes of /api/recommendations/ (API-CONTRACT.md §2.8): plain arrays of product cards,
// and the staff's hand-made links between products.
import { Type, type Static } from 'typebox';
import { DateTime } from '../../infra/http/schema.ts';
import { ProductCard } from '../catalog/catalog.schemas.ts';

export const RecommendedProduct = Type.Object({
  ...ProductCard.properties,
  recommendation_reason: Type.String({ examples: ['Similar Product', 'Frequently bought together', 'Same category'] }),
});
export type RecommendedProduct = Static<typeof RecommendedProduct>;

export const RecommendedProducts = Type.Array(RecommendedProduct, { description: 'Best first, at most 8' });
export const ProductCards = (max: number) => Type.Array(ProductCard, { description: `Best first, at most ${max}` });

export const RELATIONSHIP_TYPES = ['similar', 'complementary', 'bundle', 'upgrade'] as const;
export type RelationshipType = (typeof RELATIONSHIP_TYPES)[number];

const ProductId = (description: string) => Type.Integer({ minimum: 1, maximum: 2147483647, description });

export const RelationshipBody = Type.Object({
  product_id: ProductId('The product whose page shows the recommendation'),
  related_product_id: ProductId('The product recommended there'),
  // One type list, so a wrong value gets one clear message rather than one per literal.
  relationship_type: Type.Unsafe<RelationshipType>(Type.String({ enum: [...RELATIONSHIP_TYPES] })),
  strength: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Score among the recommendations, 0 to 1 (two places); default 1' })),
});
export type RelationshipInput = Static<typeof RelationshipBody>;

export const Relationship = Type.Object({
  id: Type.Integer(),
  product_id: Type.Integer(),
  related_product_id: Type.Integer(),
  relationship_type: Type.String(),
  strength: Type.Number(),
  created_at: DateTime,
});
export type Relationship = Static<typeof Relationship>;
