// Wire shapes of /api/wishlist/ (API-CONTRACT.md §2.6, with §4.7).
import { Type, type Static } from 'typebox';
import { DateTime } from '../../infra/http/schema.ts';
import { ProductCard } from '../catalog/catalog.schemas.ts';

/** `added_at` (what the storefront reads) is `created_at`: when the product was first added. */
export const WishlistItem = Type.Object({ id: Type.Integer(), product: ProductCard, created_at: DateTime, added_at: DateTime });
export type WishlistItem = Static<typeof WishlistItem>;

export const Wishlist = Type.Object({
  id: Type.Integer(),
  items: Type.Array(WishlistItem, { description: 'Newest first; active products only' }),
  total_items: Type.Integer({ description: 'Items of active products' }),
  created_at: DateTime,
  updated_at: DateTime,
});
export type Wishlist = Static<typeof Wishlist>;

export const Added = Type.Object({ message: Type.String(), item: Type.Optional(WishlistItem) });
export const Message = Type.Object({ message: Type.String() });

/** `product_id` is checked by the service so that a missing one gets the contract's `{"error": …}`. */
export const ProductIdBody = Type.Object({ product_id: Type.Optional(Type.Unknown()) });
export const MoveBody = Type.Object({ product_id: Type.Optional(Type.Unknown()), quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })) });
export const ProductParams = Type.Object({ product_id: Type.Integer({ minimum: 1, maximum: 2147483647 }) });
export const ItemParams = Type.Object({ item_id: Type.Integer({ minimum: 1, maximum: 9007199254740991 }) });
