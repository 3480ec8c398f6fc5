// Who may call what: the one table of expected access for every route the app serves, the
// fixtures its requests need, and the route table read from the running app (so a route that the
// table does not classify fails the authorisation suite instead of going untested). Used by
// authz.test.ts (the matrix) and cache-safety.test.ts (which routes are personal).
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Database, Db } from '../../src/db/database.ts';
import { insertOrder } from '../../src/modules/orders/orders.repository.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import * as f from '../helpers/factories.ts';
import { photo } from '../helpers/images.ts';

/** The four callers of the matrix, in the order they are tried: the owner last, so a DELETE of A's things is refused to the others while the thing still exists. */
export const CALLERS = ['anonymous', 'b', 'staff', 'a'] as const;
export type Who = (typeof CALLERS)[number];

/**
 * - public: anyone, and the answer is the same for everyone (a shared cache may keep it);
 * - personal: anyone, but the answer is the caller's own (guest session or user, or a secret in
 *   the request such as a checkout id or an order number with its email): never shared-cached;
 * - signed-in: any signed-in user (401 anonymous);
 * - owner: customer A's record: 401 anonymous, 404 for anyone else, staff included (addresses, reviews);
 * - session-owner: a line of A's cart or wishlist: anyone may call, but another's line is 404;
 * - owner-or-staff: A's order: 401 anonymous, 403 another customer (§2.4), staff in;
 * - owner-or-staff-hidden: order tracking by id: 404 for anyone but A and staff (§4.3);
 * - staff: 401 anonymous, 403 customers;
 * - staff-403: low stock, 403 for anyone not staff, anonymous included (§2.2).
 */
export type Access = 'public' | 'personal' | 'signed-in' | 'owner' | 'session-owner' | 'owner-or-staff' | 'owner-or-staff-hidden' | 'staff' | 'staff-403';

/** 'in' = let through (2xx/3xx, or the route's `ok` statuses); a number = refused with it. */
export const EXPECTED: Record<Access, Record<Who, 'in' | 401 | 403 | 404>> = {
  public: { anonymous: 'in', b: 'in', staff: 'in', a: 'in' },
  personal: { anonymous: 'in', b: 'in', staff: 'in', a: 'in' },
  'signed-in': { anonymous: 401, b: 'in', staff: 'in', a: 'in' },
  owner: { anonymous: 401, b: 404, staff: 404, a: 'in' },
  'session-owner': { anonymous: 404, b: 404, staff: 404, a: 'in' },
  'owner-or-staff': { anonymous: 401, b: 403, staff: 'in', a: 'in' },
  'owner-or-staff-hidden': { anonymous: 404, b: 404, staff: 'in', a: 'in' },
  staff: { anonymous: 401, b: 403, staff: 'in', a: 403 },
  'staff-403': { anonymous: 403, b: 403, staff: 'in', a: 403 },
};

/** Every access kind but `public` answers with somebody's data, or is refused, per caller. */
export const isPersonal = (a: Access) => a !== 'public';

export interface Caller {
  who: Who;
  headers: Record<string, string>;
  /** Signed-in callers only. */
  user?: TestUser & { username: string };
}

export interface Req {
  url?: string;
  body?: unknown;
  /** A multipart upload (field `image`), instead of a JSON body. */
  upload?: Buffer;
  /** Merged over the caller's headers (`cookie: ''` drops the guest's session). */
  headers?: Record<string, string>;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: any;
  raw: string;
}

export interface Ctx {
  app: FastifyInstance;
  db: Db;
  callers: Record<Who, Caller>;
  fx: Fixtures;
  call(who: Who, method: string, url: string, req?: Omit<Req, 'url'>): Promise<Reply>;
}

export interface Rule {
  access: Access;
  /** The request (URL with ids filled in, body); made anew for each caller. Default: the path itself. */
  req?: (ctx: Ctx, caller: Caller) => Req | Promise<Req>;
  /** Statuses that count as let through besides 2xx/3xx (a route whose valid call is a 4xx for reasons other than who asks). */
  ok?: number[];
}

/** Customer A's things, and what the routes need around them. */
export interface Fixtures {
  category: { id: number; name: string };
  product: { id: number; sku: string; name: string };
  /** For staff edits (PUT keeps its own sku). */
  editable: { id: number; sku: string; name: string; category_id: number };
  doomedProduct: number;
  doomedCategory: number;
  image: number;
  doomedImage: number;
  addressA: number;
  doomedAddressA: number;
  reviewA: number;
  doomedReviewA: number;
  orderA: { id: number; order_number: string; tracking: string };
  pendingOrder: number;
  promo: { id: number; code: string };
  doomedPromo: number;
  campaign: number;
  doomedCampaign: number;
  relationship: number;
  checkoutA: string;
  /** A's unique strings: none may appear in an answer to anyone but A (or staff). */
  secretsOfA: string[];
}

let seq = 0;
const tag = () => `${process.pid}-${++seq}-${Math.random().toString(36).slice(2, 7)}`;
const iso = (ms: number) => new Date(ms).toISOString();

/** A's cart line for `product` (added if missing), as A's cart shows it. */
async function cartLineOfA(ctx: Ctx, productId: number): Promise<number> {
  const cart = await ctx.call('a', 'POST', '/api/cart/add/', { body: { product_id: productId, quantity: 1 } });
  const line = cart.body.items?.find((i: { product: { id: number } }) => i.product.id === productId);
  if (!line) throw new Error(`no cart line for A: ${cart.status} ${cart.raw}`);
  return line.id;
}

/** A's wishlist item for `product` (added if missing). */
async function wishlistItemOfA(ctx: Ctx, productId: number): Promise<number> {
  await ctx.call('a', 'POST', '/api/wishlist/add/', { body: { product_id: productId } });
  const list = await ctx.call('a', 'GET', '/api/wishlist/');
  const item = list.body.items?.find((i: { product: { id: number } }) => i.product.id === productId);
  if (!item) throw new Error(`no wishlist item for A: ${list.raw}`);
  return item.id;
}

/** A checkout of the caller's cart (one line added first), on the built-in test provider. */
async function checkoutOf(ctx: Ctx, who: Who): Promise<string> {
  await ctx.call(who, 'POST', '/api/cart/add/', { body: { product_id: ctx.fx.product.id, quantity: 1 } });
  const r = await ctx.call(who, 'POST', '/api/payments/create-checkout-session/', { body: {} });
  if (r.status !== 200) throw new Error(`checkout for ${who}: ${r.status} ${r.raw}`);
  return r.body.checkout_session_id;
}

const selfProfile = (c: Caller) => ({ username: c.user?.username ?? 'nobody', first_name: 'Same', last_name: 'Name' });
const samePassword = (c: Caller) => ({ old_password: c.user?.password ?? 'x', new_password: c.user?.password ?? 'x', new_password_confirm: c.user?.password ?? 'x' });
const address = (type: 'shipping' | 'billing', is_default: boolean, street: string) => ({ address_type: type, street_address: street, city: 'Shiraz', state: 'Fars', postal_code: '71345', country: 'IR', is_default });

/**
 * THE table: every route of the app, with who may call it. Keys are `METHOD path` as registered
 * (`{param}` for path parameters). A route added to the app without a line here fails
 * authz.test.ts; so does a line for a route that no longer exists.
 */
export const ACCESS: Record<string, Rule> = {
  // Root, health, docs, pages
  'GET /api/': { access: 'public' },
  'GET /health/': { access: 'public' },
  'GET /health/ready/': { access: 'public' },
  'GET /health/detailed/': { access: 'public' },
  'GET /robots.txt': { access: 'public' },
  'GET /api/docs/': { access: 'public' },
  'GET /api/docs/json': { access: 'public' },
  'GET /api/docs/yaml': { access: 'public' },
  'GET /dashboard/': { access: 'public' },
  // Prometheus: its own rule (address allowlist or METRICS_TOKEN), the same for every Bearer caller; loopback is allowed.
  'GET /metrics': { access: 'public' },
  'GET /static/*': { access: 'public', req: () => ({ url: '/static/dashboard/dashboard.js' }) },
  // Uploaded files; a name that was never uploaded is a 404 for everyone alike.
  'GET /media/*': { access: 'public', ok: [404], req: () => ({ url: '/media/products/none.jpg' }) },

  // Catalog
  'GET /api/products/': { access: 'public' },
  'POST /api/products/': { access: 'staff', req: (ctx) => ({ body: { name: `Made ${tag()}`, price: '12.50', category: ctx.fx.category.id, sku: `NEW-${tag()}` } }) },
  'GET /api/products/featured/': { access: 'public' },
  'GET /api/products/categories/': { access: 'public' },
  'POST /api/products/categories/': { access: 'staff', req: () => ({ body: { name: `Cat ${tag()}` } }) },
  'GET /api/products/categories/{id}/': { access: 'public', req: (ctx) => ({ url: `/api/products/categories/${ctx.fx.category.id}/` }) },
  'PUT /api/products/categories/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/products/categories/${ctx.fx.category.id}/`, body: { name: ctx.fx.category.name } }) },
  'PATCH /api/products/categories/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/products/categories/${ctx.fx.category.id}/`, body: { description: 'Edited' } }) },
  'DELETE /api/products/categories/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/products/categories/${ctx.fx.doomedCategory}/` }) },
  'GET /api/products/{id}/': { access: 'public', req: (ctx) => ({ url: `/api/products/${ctx.fx.product.id}/` }) },
  'PUT /api/products/{id}/': {
    access: 'staff',
    req: ({ fx }) => ({ url: `/api/products/${fx.editable.id}/`, body: { name: fx.editable.name, price: '11.00', category: fx.editable.category_id, sku: fx.editable.sku } }),
  },
  'PATCH /api/products/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/products/${ctx.fx.editable.id}/`, body: { price: '11.50' } }) },
  'DELETE /api/products/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/products/${ctx.fx.doomedProduct}/` }) },
  'GET /api/products/low-stock/': { access: 'staff-403' },
  'GET /api/products/search/': { access: 'public', req: () => ({ url: '/api/products/search/?q=product' }) },
  'GET /api/products/advanced-search/': { access: 'public', req: () => ({ url: '/api/products/advanced-search/?sort=newest' }) },

  // Reviews
  'GET /api/products/{id}/reviews/': { access: 'public', req: (ctx) => ({ url: `/api/products/${ctx.fx.product.id}/reviews/` }) },
  // One review per user and product: each caller reviews a product of its own.
  'POST /api/products/{id}/reviews/': {
    access: 'signed-in',
    req: async (ctx) => {
      const p = await f.product(ctx.db, { category_id: ctx.fx.category.id });
      return { url: `/api/products/${p.id}/reviews/`, body: { product: p.id, rating: 4, review_text: 'Fine print' } };
    },
  },
  'GET /api/products/reviews/{id}/': { access: 'owner', req: (ctx) => ({ url: `/api/products/reviews/${ctx.fx.reviewA}/` }) },
  'PUT /api/products/reviews/{id}/': { access: 'owner', req: (ctx) => ({ url: `/api/products/reviews/${ctx.fx.reviewA}/`, body: { product: ctx.fx.product.id, rating: 5, review_text: 'Better' } }) },
  'PATCH /api/products/reviews/{id}/': { access: 'owner', req: (ctx) => ({ url: `/api/products/reviews/${ctx.fx.reviewA}/`, body: { rating: 3 } }) },
  'DELETE /api/products/reviews/{id}/': { access: 'owner', req: (ctx) => ({ url: `/api/products/reviews/${ctx.fx.doomedReviewA}/` }) },

  // Media (staff)
  'POST /api/products/{id}/images/': { access: 'staff', req: (ctx) => ({ url: `/api/products/${ctx.fx.product.id}/images/`, body: { image_url: 'https://img.test/extra.jpg', alt_text: 'Extra' } }) },
  'PATCH /api/products/{id}/images/{imageId}/': { access: 'staff', req: (ctx) => ({ url: `/api/products/${ctx.fx.product.id}/images/${ctx.fx.image}/`, body: { alt_text: 'Edited' } }) },
  'DELETE /api/products/{id}/images/{imageId}/': { access: 'staff', req: (ctx) => ({ url: `/api/products/${ctx.fx.product.id}/images/${ctx.fx.doomedImage}/` }) },
  'PUT /api/products/categories/{id}/image/': { access: 'staff', req: async (ctx) => ({ url: `/api/products/categories/${ctx.fx.category.id}/image/`, upload: await photo(16, 16, 'png') }) },
  'DELETE /api/products/categories/{id}/image/': { access: 'staff', req: (ctx) => ({ url: `/api/products/categories/${ctx.fx.category.id}/image/` }) },

  // Accounts. Sign-in and token answers hold secrets: personal, never shared-cached.
  'POST /api/users/auth/login/': { access: 'personal', req: (ctx) => ({ body: { email: ctx.callers.a.user!.email, password: ctx.callers.a.user!.password }, headers: { cookie: '' } }) },
  'POST /api/users/auth/refresh/': { access: 'personal', req: async (ctx) => ({ body: { refresh: (await ctx.app.tokens.issue({ id: ctx.callers.a.user!.id, is_staff: false })).refresh } }) },
  'POST /api/users/auth/logout/': { access: 'personal', req: async (ctx) => ({ body: { refresh: (await ctx.app.tokens.issue({ id: ctx.callers.a.user!.id, is_staff: false })).refresh } }) },
  'POST /api/users/auth/register/': {
    access: 'personal',
    req: () => {
      const t = tag();
      return { body: { email: `new-${t}@example.com`, username: `new-${t}`, first_name: 'New', last_name: 'Comer', password: 'Quite-Long-Passphrase-9', password_confirm: 'Quite-Long-Passphrase-9' }, headers: { cookie: '' } };
    },
  },
  'GET /api/users/profile/': { access: 'signed-in' },
  'PUT /api/users/profile/': { access: 'signed-in', req: (_ctx, c) => ({ body: selfProfile(c) }) },
  'PATCH /api/users/profile/': { access: 'signed-in', req: () => ({ body: { first_name: 'Patched' } }) },
  'PUT /api/users/password/change/': { access: 'signed-in', req: (_ctx, c) => ({ body: samePassword(c) }) },
  'PATCH /api/users/password/change/': { access: 'signed-in', req: (_ctx, c) => ({ body: samePassword(c) }) },
  'POST /api/users/password/reset/': { access: 'personal', req: (ctx) => ({ body: { email: ctx.callers.a.user!.email } }) },
  // A made-up token is a 400 whoever asks; what matters is that nobody is refused for who they are.
  'POST /api/users/password/reset/confirm/': { access: 'personal', ok: [400], req: () => ({ body: { token: 'not-a-real-token', new_password: 'Quite-Long-Passphrase-9', new_password_confirm: 'Quite-Long-Passphrase-9' } }) },
  'GET /api/users/addresses/': { access: 'signed-in' },
  // At most one default and one other address per type and user: callers add a non-default shipping one.
  'POST /api/users/addresses/': { access: 'signed-in', req: () => ({ body: address('shipping', false, `New Street ${tag()}`) }) },
  'GET /api/users/addresses/{id}/': { access: 'owner', req: (ctx) => ({ url: `/api/users/addresses/${ctx.fx.addressA}/` }) },
  'PUT /api/users/addresses/{id}/': { access: 'owner', req: (ctx) => ({ url: `/api/users/addresses/${ctx.fx.addressA}/`, body: address('billing', true, ctx.fx.secretsOfA[1]!) }) },
  'PATCH /api/users/addresses/{id}/': { access: 'owner', req: (ctx) => ({ url: `/api/users/addresses/${ctx.fx.addressA}/`, body: { city: 'Isfahan' } }) },
  'DELETE /api/users/addresses/{id}/': { access: 'owner', req: (ctx) => ({ url: `/api/users/addresses/${ctx.fx.doomedAddressA}/` }) },
  'POST /api/users/newsletter/subscribe/': { access: 'personal', req: () => ({ body: { email: `news-${tag()}@example.com` } }) },
  'POST /api/users/newsletter/unsubscribe/': { access: 'personal', req: () => ({ body: { email: `news-${tag()}@example.com` } }) },

  // Cart: the caller's own (user, else guest session)
  'GET /api/cart/': { access: 'personal' },
  'POST /api/cart/add/': { access: 'personal', req: (ctx) => ({ body: { product_id: ctx.fx.product.id, quantity: 1 } }) },
  'PUT /api/cart/items/{item_id}/': { access: 'session-owner', req: async (ctx) => ({ url: `/api/cart/items/${await cartLineOfA(ctx, ctx.fx.product.id)}/`, body: { quantity: 2 } }) },
  'DELETE /api/cart/items/{item_id}/remove/': { access: 'session-owner', req: async (ctx) => ({ url: `/api/cart/items/${await cartLineOfA(ctx, ctx.fx.editable.id)}/remove/` }) },
  'DELETE /api/cart/clear/': { access: 'personal' },
  'POST /api/cart/merge/': { access: 'signed-in', req: () => ({ body: { session_key: 'x'.repeat(32) } }) },

  // Wishlist: the caller's own
  'GET /api/wishlist/': { access: 'personal' },
  'DELETE /api/wishlist/': { access: 'personal' },
  'POST /api/wishlist/add/': { access: 'personal', req: (ctx) => ({ body: { product_id: ctx.fx.product.id } }) },
  'DELETE /api/wishlist/remove/{product_id}/': {
    access: 'session-owner',
    req: async (ctx) => {
      await wishlistItemOfA(ctx, ctx.fx.editable.id);
      return { url: `/api/wishlist/remove/${ctx.fx.editable.id}/` };
    },
  },
  'POST /api/wishlist/clear/': { access: 'personal' },
  'POST /api/wishlist/move-to-cart/{product_id}/': { access: 'personal', req: (ctx) => ({ url: `/api/wishlist/move-to-cart/${ctx.fx.product.id}/`, body: { product_id: ctx.fx.product.id, quantity: 1 } }) },
  'POST /api/wishlist/items/': { access: 'personal', req: (ctx) => ({ body: { product_id: ctx.fx.product.id } }) },
  'DELETE /api/wishlist/items/{item_id}/': { access: 'session-owner', req: async (ctx) => ({ url: `/api/wishlist/items/${await wishlistItemOfA(ctx, ctx.fx.product.id)}/` }) },

  // Promotions
  'GET /api/promotions/active/': { access: 'public' },
  // A caller's own uses and orders count: personal.
  'POST /api/promotions/validate/': { access: 'personal', req: (ctx) => ({ body: { code: ctx.fx.promo.code, order_amount: 50 } }) },
  'POST /api/promotions/apply/': { access: 'personal', req: (ctx) => ({ body: { code: ctx.fx.promo.code, subtotal: 50 } }) },
  'GET /api/promotions/codes/': { access: 'staff' },
  'POST /api/promotions/codes/': { access: 'staff', req: () => ({ body: { discount_type: 'fixed', discount_value: '5', valid_from: '2030-01-01', valid_until: '2030-02-01' } }) },
  'GET /api/promotions/codes/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/promotions/codes/${ctx.fx.promo.id}/` }) },
  'PUT /api/promotions/codes/{id}/': {
    access: 'staff',
    req: (ctx) => ({ url: `/api/promotions/codes/${ctx.fx.promo.id}/`, body: { code: ctx.fx.promo.code, discount_type: 'percentage', discount_value: '10', valid_from: iso(Date.now() - 86_400_000), valid_until: iso(Date.now() + 86_400_000) } }),
  },
  'PATCH /api/promotions/codes/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/promotions/codes/${ctx.fx.promo.id}/`, body: { description: 'Edited' } }) },
  'DELETE /api/promotions/codes/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/promotions/codes/${ctx.fx.doomedPromo}/` }) },
  'GET /api/promotions/campaigns/': { access: 'staff' },
  'POST /api/promotions/campaigns/': { access: 'staff', req: () => ({ body: { name: `Camp ${tag()}`, start_date: '2030-01-01', end_date: '2030-02-01' } }) },
  'GET /api/promotions/campaigns/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/promotions/campaigns/${ctx.fx.campaign}/` }) },
  'PUT /api/promotions/campaigns/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/promotions/campaigns/${ctx.fx.campaign}/`, body: { name: 'Renamed', start_date: '2030-01-01', end_date: '2030-02-01' } }) },
  'PATCH /api/promotions/campaigns/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/promotions/campaigns/${ctx.fx.campaign}/`, body: { is_active: false } }) },
  'DELETE /api/promotions/campaigns/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/promotions/campaigns/${ctx.fx.doomedCampaign}/` }) },
  'GET /api/promotions/analytics/': { access: 'staff' },

  // Orders
  'GET /api/orders/': { access: 'signed-in' },
  'GET /api/orders/statistics/': { access: 'staff' },
  'GET /api/orders/{id}/': { access: 'owner-or-staff', req: (ctx) => ({ url: `/api/orders/${ctx.fx.orderA.id}/` }) },
  'PATCH /api/orders/{id}/status/': { access: 'staff', req: (ctx) => ({ url: `/api/orders/${ctx.fx.pendingOrder}/status/`, body: { status: 'processing' } }) },
  // PUT without a status changes nothing (§2.4).
  'PUT /api/orders/{id}/status/': { access: 'staff', req: (ctx) => ({ url: `/api/orders/${ctx.fx.orderA.id}/status/`, body: {} }) },
  // Whoever knows the number and the email may track: the answer is that order's, so personal.
  'POST /api/orders/track/guest/': { access: 'personal', req: (ctx) => ({ body: { order_number: ctx.fx.orderA.order_number, email: ctx.callers.a.user!.email } }) },
  'GET /api/orders/track/id/{id}/': { access: 'owner-or-staff-hidden', req: (ctx) => ({ url: `/api/orders/track/id/${ctx.fx.orderA.id}/` }) },
  'GET /api/orders/track/{tracking_number}/': { access: 'personal', req: (ctx) => ({ url: `/api/orders/track/${ctx.fx.orderA.tracking}/` }) },

  // Payments: the caller's cart, or a checkout whose id is the capability
  'POST /api/payments/create-checkout-session/': {
    access: 'personal',
    req: async (ctx, c) => {
      await ctx.call(c.who, 'POST', '/api/cart/add/', { body: { product_id: ctx.fx.product.id, quantity: 1 } });
      return { body: {} };
    },
  },
  // The test provider's checkout is still open: 400 "not completed" for whoever holds the id.
  'GET /api/payments/verify-checkout-session/': { access: 'personal', ok: [400], req: (ctx) => ({ url: `/api/payments/verify-checkout-session/?session_id=${ctx.fx.checkoutA}` }) },
  // Signed by the provider or refused (400), whoever sends it: the Bearer caller plays no part.
  'POST /api/payments/stripe-webhook/': { access: 'personal', ok: [400], req: () => ({ body: { id: 'evt_x', type: 'checkout.session.completed' } }) },
  'GET /api/payments/test-checkout/{id}/': { access: 'personal', req: (ctx) => ({ url: `/api/payments/test-checkout/${ctx.fx.checkoutA}/` }) },
  'POST /api/payments/test-checkout/{id}/': { access: 'personal', req: async (ctx) => ({ url: `/api/payments/test-checkout/${await checkoutOf(ctx, 'a')}/`, body: { outcome: 'failed' } }) },

  // Recommendations
  'GET /api/recommendations/product/{id}/': { access: 'personal', req: (ctx) => ({ url: `/api/recommendations/product/${ctx.fx.product.id}/` }) },
  'GET /api/recommendations/personalized/': { access: 'personal' },
  'GET /api/recommendations/trending/': { access: 'public' },
  'POST /api/recommendations/relationships/': {
    access: 'staff',
    req: async (ctx) => ({ body: { product_id: ctx.fx.product.id, related_product_id: (await f.product(ctx.db, { category_id: ctx.fx.category.id })).id, relationship_type: 'similar', strength: 0.5 } }),
  },
  'DELETE /api/recommendations/relationships/{id}/': { access: 'staff', req: (ctx) => ({ url: `/api/recommendations/relationships/${ctx.fx.relationship}/` }) },

  // Monitoring and limits (staff); the system report is 503 while a part is unhealthy.
  'GET /api/utils/monitoring/system/': { access: 'staff', ok: [503] },
  'GET /monitoring/system/': { access: 'staff', ok: [503] },
  'GET /api/utils/monitoring/cache/': { access: 'staff' },
  'GET /monitoring/cache/': { access: 'staff' },
  'GET /api/utils/monitoring/database/': { access: 'staff' },
  'GET /monitoring/database/': { access: 'staff' },
  'GET /api/utils/monitoring/requests/': { access: 'staff' },
  'GET /monitoring/requests/': { access: 'staff' },
  'POST /api/utils/monitoring/cache/clear/': { access: 'staff', req: () => ({ body: { store: 'default' } }) },
  'POST /monitoring/cache/clear/': { access: 'staff', req: () => ({ body: { store: 'default' } }) },
  'GET /api/utils/rate-limits/blocked/': { access: 'staff' },
  // Limits are off in the test app, so no address is blocked: 404 for staff.
  'DELETE /api/utils/rate-limits/blocked/{ip}/': { access: 'staff', ok: [404], req: () => ({ url: '/api/utils/rate-limits/blocked/203.0.113.9/' }) },
};

// ---------------------------------------------------------------------------------------------
// The route table, as the running app has it

/** `METHOD path` with `{param}`s and no trailing slash, so registered paths and table keys compare. */
export function routeKey(method: string, path: string): string {
  const p = path.replace(/:(\w+)/g, '{$1}');
  return `${method} ${p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p}`;
}

/**
 * Every (method, path) the router holds, from `printRoutes` (hidden routes included, which the
 * OpenAPI document leaves out). HEAD (made for every GET) and the CORS preflight are left out.
 * This includes the 405 answers registered for a known path's other methods: callers tell those
 * apart by asking.
 */
export function routerEntries(app: FastifyInstance): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  const stack: string[] = [];
  // The radix tree as printed (each line one edge label); `commonPrefix: false` would be easier to
  // read but leaves wildcard routes (`/static/*`) out.
  for (const line of app.printRoutes().split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2] === '(empty root node)' ? '' : m[2]!);
    const path = stack.join('');
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
      if (method !== 'HEAD' && method !== 'OPTIONS') out.push({ method, path });
    }
  }
  return out;
}

/** Documented operations of the OpenAPI document, as route keys. */
export function documentedRoutes(app: FastifyInstance): string[] {
  const doc = app.swagger() as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => routeKey(m.toUpperCase(), path)));
}

// ---------------------------------------------------------------------------------------------
// Callers and fixtures

async function withUsername(database: Database, u: TestUser): Promise<TestUser & { username: string }> {
  const row = await database.db.selectFrom('users').select('username').where('id', '=', u.id).executeTakeFirstOrThrow();
  return { ...u, username: row.username };
}

async function multipartBody(bytes: Buffer): Promise<{ payload: Buffer; contentType: string }> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'image.png');
  const req = new Request('http://x/', { method: 'POST', body: form });
  return { payload: Buffer.from(await req.arrayBuffer()), contentType: req.headers.get('content-type')! };
}

export function makeCall(app: FastifyInstance, callers: () => Record<Who, Caller>) {
  return async (who: Who, method: string, url: string, req: Omit<Req, 'url'> = {}): Promise<Reply> => {
    const opts: InjectOptions = { method: method as InjectOptions['method'], url, headers: { host: 'shop.test', ...callers()[who].headers, ...(req.headers ?? {}) } };
    if (req.upload) {
      const { payload, contentType } = await multipartBody(req.upload);
      opts.payload = payload;
      opts.headers = { ...opts.headers, 'content-type': contentType };
    } else if (req.body !== undefined) opts.payload = req.body as object;
    const res = await app.inject(opts);
    let body: any;
    try {
      body = res.json();
    } catch {
      body = undefined;
    }
    return { status: res.statusCode, headers: res.headers, body, raw: res.body };
  };
}

/** Customer A (with a cart, wishlist, address, review, order and checkout), customer B, staff, and a guest with its own session. */
export async function setUp(app: FastifyInstance, database: Database): Promise<Ctx> {
  const db = database.db;
  const secret = tag();
  const a = await withUsername(database, await signedIn(app, database, { first_name: 'Alice', last_name: `Secretson${secret.replace(/\W/g, '')}` }));
  const b = await withUsername(database, await signedIn(app, database, { first_name: 'Bob' }));
  const staff = await withUsername(database, await signedIn(app, database, { staff: true }));
  const callers: Record<Who, Caller> = {
    anonymous: { who: 'anonymous', headers: {} },
    b: { who: 'b', headers: b.headers, user: b },
    staff: { who: 'staff', headers: staff.headers, user: staff },
    a: { who: 'a', headers: a.headers, user: a },
  };
  const call = makeCall(app, () => callers);
  const ctx = { app, db, callers, call } as Ctx;

  // The guest gets a session of its own by putting something in its cart.
  const category = await f.category(db);
  const product = await f.product(db, { category_id: category.id, stock_quantity: 100_000 });
  const editable = await f.product(db, { category_id: category.id, stock_quantity: 100_000 });
  const guest = await call('anonymous', 'POST', '/api/cart/add/', { body: { product_id: product.id, quantity: 1 } });
  const cookie = String([guest.headers['set-cookie']].flat()[0] ?? '').split(';')[0]!;
  if (!cookie.startsWith('sessionid=')) throw new Error(`no guest session: ${guest.status} ${guest.raw}`);
  callers.anonymous.headers = { cookie };

  const street = `${secret} Secret Lane`;
  const addressA = await call('a', 'POST', '/api/users/addresses/', { body: address('billing', true, street) });
  const doomedAddressA = await call('a', 'POST', '/api/users/addresses/', { body: address('billing', false, `${secret} Doomed Road`) });
  const reviewA = await call('a', 'POST', `/api/products/${product.id}/reviews/`, { body: { product: product.id, rating: 5, review_text: 'Lovely' } });
  const doomedReviewA = await call('a', 'POST', `/api/products/${editable.id}/reviews/`, { body: { product: editable.id, rating: 2, review_text: 'Meh' } });
  for (const r of [addressA, doomedAddressA, reviewA, doomedReviewA]) if (r.status !== 201) throw new Error(`fixture: ${r.status} ${r.raw}`);

  const placed = (status: 'processing' | 'pending') =>
    db.transaction().execute((trx) =>
      insertOrder(trx, {
        order: { user_id: a.id, session_key: null, checkout_id: null, status, subtotal: '10.00', total_amount: '10.00', promotion_id: null, shipping_email: a.email, shipping_name: 'Alice Secretson' },
        lines: [{ product_id: product.id, name: product.name, sku: product.sku, price: '10.00', weight: '100.00', quantity: 1 }],
        history: [{ status: 'pending', notes: 'Order placed' }],
      }),
    );
  const orderId = await placed('processing');
  const tracking = `TRK${secret.replace(/\W/g, '').toUpperCase()}`;
  const order = await db.updateTable('orders').set({ tracking_number: tracking }).where('id', '=', orderId).returning(['id', 'order_number']).executeTakeFirstOrThrow();
  const pendingOrder = await placed('pending');

  const promo = (code: string) =>
    db
      .insertInto('promotion_codes')
      .values({ code, discount_type: 'percentage', discount_value: '10.00', usage_type: 'unlimited', valid_from: iso(Date.now() - 86_400_000), valid_until: iso(Date.now() + 86_400_000) })
      .returning(['id', 'code'])
      .executeTakeFirstOrThrow();
  const campaign = () =>
    db.insertInto('campaigns').values({ name: `Campaign ${tag()}`, start_date: iso(Date.now()), end_date: iso(Date.now() + 86_400_000) }).returning('id').executeTakeFirstOrThrow();
  const related = await f.product(db, { category_id: category.id });
  const relationship = await db.insertInto('product_relationships').values({ product_id: product.id, related_product_id: related.id, relationship_type: 'bundle', strength: '0.70' }).returning('id').executeTakeFirstOrThrow();

  ctx.fx = {
    category: { id: category.id, name: category.name },
    product: { id: product.id, sku: product.sku, name: product.name },
    editable: { id: editable.id, sku: editable.sku, name: editable.name, category_id: category.id },
    doomedProduct: (await f.product(db, { category_id: category.id })).id,
    doomedCategory: (await f.category(db)).id,
    image: (await f.image(db, product.id, { is_main: true })).id,
    doomedImage: (await f.image(db, product.id)).id,
    addressA: addressA.body.id,
    doomedAddressA: doomedAddressA.body.id,
    reviewA: reviewA.body.id,
    doomedReviewA: doomedReviewA.body.id,
    orderA: { id: order.id, order_number: order.order_number, tracking },
    pendingOrder,
    promo: await promo(`AUTHZ${secret.replace(/\W/g, '').toUpperCase()}`.slice(0, 40)),
    doomedPromo: (await promo(`GONE${secret.replace(/\W/g, '').toUpperCase()}`.slice(0, 40))).id,
    campaign: (await campaign()).id,
    doomedCampaign: (await campaign()).id,
    relationship: relationship.id,
    checkoutA: '',
    // A's email, street and surname: never in an answer to the guest or to B.
    secretsOfA: [a.email, street, `Secretson${secret.replace(/\W/g, '')}`],
  };
  ctx.fx.checkoutA = await checkoutOf(ctx, 'a');
  return ctx;
}
