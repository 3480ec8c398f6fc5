import { apiTime } from '../../infra/http/format.ts';
import type { MediaUrl } from '../../infra/http/urls.ts';
import { toProductCard } from '../catalog/catalog.mapper.ts';
import type { WishlistItemJson, WishlistRow } from './wishlist.repository.ts';
import type { Wishlist, WishlistItem } from './wishlist.schemas.ts';

export function toWishlistItem(i: WishlistItemJson, media: MediaUrl): WishlistItem {
  const created = apiTime(i.created_at);
  return { id: i.id, product: toProductCard(i.product, media), created_at: created, added_at: created };
}

export function toWishlist(w: WishlistRow, media: MediaUrl): Wishlist {
  return {
    id: w.id,
    items: w.items.map((i) => toWishlistItem(i, media)),
    total_items: w.total_items,
    created_at: apiTime(w.created_at),
    updated_at: apiTime(w.updated_at),
  };
}
