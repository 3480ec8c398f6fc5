import { apiTime } from '../../infra/http/format.ts';
import type { MediaUrl } from '../../infra/http/urls.ts';
import { toProductCard } from '../catalog/catalog.mapper.ts';
import type { CartRow } from './cart.repository.ts';
import type { Cart } from './cart.schemas.ts';

export function toCart(c: CartRow, media: MediaUrl): Cart {
  return {
    id: c.id,
    items: c.items.map((i) => ({
      id: i.id,
      product: toProductCard(i.product, media),
      quantity: i.quantity,
      total_price: i.total_price,
      total_weight: i.total_weight,
      created_at: apiTime(i.created_at),
      updated_at: apiTime(i.updated_at),
    })),
    total_items: c.total_items,
    total_price: c.total_price,
    total_weight: c.total_weight,
    created_at: apiTime(c.created_at),
    updated_at: apiTime(c.updated_at),
  };
}
