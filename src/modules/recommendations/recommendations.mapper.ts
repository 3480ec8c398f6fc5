// Recommendation rows to wire objects.
import { apiTime } from '../../infra/http/format.ts';
import type { MediaUrl } from '../../infra/http/urls.ts';
import { toProductCard } from '../catalog/catalog.mapper.ts';
import type { RecommendationJson, RecommendationSource, RelationshipRow } from './recommendations.repository.ts';
import type { RecommendedProduct, Relationship } from './recommendations.schemas.ts';

/** The reasons the storefront shows (the original's relationship type labels and its own words). */
const REASONS: Record<RecommendationSource, string> = {
  similar: 'Similar Product',
  complementary: 'Complementary Product',
  bundle: 'Bundle Suggestion',
  upgrade: 'Upgrade Option',
  bought: 'Frequently bought together',
  category: 'Same category',
};

export function toRecommendedProduct(r: RecommendationJson, media: MediaUrl): RecommendedProduct {
  return { ...toProductCard(r.product, media), recommendation_reason: REASONS[r.source] };
}

export function toRelationship(r: RelationshipRow): Relationship {
  return {
    id: r.id,
    product_id: r.product_id,
    related_product_id: r.related_product_id,
    relationship_type: r.relationship_type,
    strength: Number(r.strength),
    created_at: apiTime(r.created_at),
  };
}
