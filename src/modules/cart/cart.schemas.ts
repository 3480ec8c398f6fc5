// Wire shapes of /api/cart/ (API-CONTRACT.md §2.3).
import { Type, type Static } from 'typebox';
import { DateTime, Decimal2 } from '../../infra/http/schema.ts';
import { ProductCard } from '../catalog/catalog.schemas.ts';

export const CartItem = Type.Object({
  id: Type.Integer(),
  product: ProductCard,
  quantity: Type.Integer(),
  total_price: Decimal2,
  total_weight: Decimal2,
  created_at: DateTime,
  updated_at: DateTime,
});

export const Cart = Type.Object({
  id: Type.Integer(),
  items: Type.Array(CartItem),
  total_items: Type.Integer({ description: 'Sum of quantities' }),
  total_price: Decimal2,
  total_weight: Decimal2,
  created_at: DateTime,
  updated_at: DateTime,
});
export type Cart = Static<typeof Cart>;

const MAX_QUANTITY = 1_000_000;
const Id = Type.Integer({ minimum: 1, maximum: 2147483647 });

export const AddBody = Type.Object({
  product_id: Id,
  quantity: Type.Integer({ minimum: 1, maximum: MAX_QUANTITY }),
});
export type AddBody = Static<typeof AddBody>;

export const UpdateBody = Type.Object({ quantity: Type.Integer({ minimum: 0, maximum: MAX_QUANTITY }) });
export const ItemParams = Type.Object({ item_id: Type.Integer({ minimum: 1, maximum: 9007199254740991 }) });
export const MergeBody = Type.Object({ session_key: Type.Optional(Type.String({ maxLength: 64 })) });
