// Wire shapes of /api/payments/ (API-CONTRACT.md §2.5, with §4.4–5 and §4.16).
import { Type, type Static } from 'typebox';

export const Address = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 200 })),
  email: Type.Optional(Type.String({ maxLength: 254 })),
  phone: Type.Optional(Type.String({ maxLength: 30 })),
  address: Type.Optional(Type.String({ maxLength: 500 })),
  city: Type.Optional(Type.String({ maxLength: 100 })),
  state: Type.Optional(Type.String({ maxLength: 100 })),
  postal_code: Type.Optional(Type.String({ maxLength: 20 })),
  country: Type.Optional(Type.String({ maxLength: 100 })),
});

/** Everything is optional: the storefront sends only `success_url` and `cancel_url`. */
export const CheckoutBody = Type.Object({
  success_url: Type.Optional(Type.String({ maxLength: 2000 })),
  cancel_url: Type.Optional(Type.String({ maxLength: 2000 })),
  promotion_code: Type.Optional(Type.String({ maxLength: 50 })),
  fulfillment_method: Type.Optional(Type.Union([Type.Literal('shipping'), Type.Literal('pickup')])),
  email: Type.Optional(Type.String({ maxLength: 254 })),
  shipping_address: Type.Optional(Address),
});
export type CheckoutBody = Static<typeof CheckoutBody>;

export const CheckoutSession = Type.Object({ checkout_session_id: Type.String(), checkout_url: Type.String() });

export const VerifyQuery = Type.Object({ session_id: Type.Optional(Type.String({ maxLength: 255 })) });

export const Verification = Type.Object({
  status: Type.String({ description: 'success, pending or failed' }),
  message: Type.Optional(Type.String()),
  order_id: Type.Optional(Type.Integer()),
  order_number: Type.Optional(Type.String()),
  email: Type.Optional(Type.String()),
});

export const VerifyRefused = Type.Object({ error: Type.Optional(Type.String()), status: Type.Optional(Type.String()), message: Type.Optional(Type.String()) });

export const SessionParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 255 }) });
/** `email`: asked by the page when the checkout has none (a guest who gave none). */
export const PayBody = Type.Object({ outcome: Type.Union([Type.Literal('paid'), Type.Literal('failed')]), email: Type.Optional(Type.String({ maxLength: 1000 })) });
