// /api/payments/ (API-CONTRACT.md §2.5, §4.4–5, §4.16): checkout sessions, their verification,
// the Stripe webhook, and the test provider's hosted page.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CheckoutAddress } from '../../db/schema.ts';
import { ctxOf } from '../../infra/http/context.ts';
import { AppError, isOutage } from '../../infra/http/errors.ts';
import { privateResponses } from '../../infra/http/hooks.ts';
import { AdHocError, ErrorBody, MixedErrorBody } from '../../infra/http/schema.ts';
import { requestOrigin } from '../../infra/http/urls.ts';
import { rateLimit, unlimited } from '../../infra/limits/plugin.ts';
import { currentUser } from '../accounts/auth.ts';
import { findListId } from '../accounts/owner.repository.ts';
import { ownerOf } from '../accounts/session.ts';
import { cartHasItems } from './payments.repository.ts';
import { adHoc, handleEvent, startCheckout, testCheckout, testPay, verify, type PaymentsDeps } from './checkout.service.ts';
import { CheckoutBody, CheckoutSession, PayBody, SessionParams, Verification, VerifyQuery, VerifyRefused } from './payments.schemas.ts';
import { SignatureError } from './providers.ts';

declare module 'fastify' {
  interface FastifyInstance {
    payments: PaymentsDeps;
  }
}

const tags = ['payments'];
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Returns go only to the storefront (an open redirect otherwise); the session id is always in the success URL. */
function returnUrl(app: FastifyInstance, given: string | undefined, fallback: string, field: string, withSession: boolean): string {
  const allowed = new Set([new URL(app.config.payments.storefrontUrl).origin, ...app.config.corsOrigins]);
  let url = fallback;
  if (given !== undefined && given !== '') {
    let parsed: URL;
    try {
      parsed = new URL(given);
    } catch {
      throw adHoc(400, `${field} is not a valid URL`);
    }
    if (!allowed.has(parsed.origin)) throw adHoc(400, `${field} must be on the storefront's origin`);
    url = given;
  }
  if (withSession && !url.includes('{CHECKOUT_SESSION_ID}')) url += `${url.includes('?') ? '&' : '?'}session_id={CHECKOUT_SESSION_ID}`;
  return url;
}

/** Who pays and where it goes: as given, else the signed-in user's default shipping address. */
async function addressFor(request: FastifyRequest, given: CheckoutBody['shipping_address']): Promise<{ email: string; address: CheckoutAddress | null }> {
  const user = await currentUser(request);
  const email = (user?.email ?? given?.email ?? (request.body as CheckoutBody | undefined)?.email ?? '').trim();
  if (email && !EMAIL.test(email)) throw adHoc(400, 'Enter a valid email address.');
  const blank: CheckoutAddress = { name: '', email, phone: '', address: '', city: '', state: '', postal_code: '', country: '' };
  if (given) return { email, address: { ...blank, ...Object.fromEntries(Object.entries(given).map(([k, v]) => [k, String(v ?? '').trim()])), email } };
  if (!user) return { email, address: null };
  const saved = await ctxOf(request).database.db
    .selectFrom('addresses')
    .selectAll()
    .where('user_id', '=', user.id)
    .where('address_type', '=', 'shipping')
    .orderBy('is_default', 'desc')
    .orderBy('id')
    .executeTakeFirst();
  const name = [user.first_name, user.last_name].filter(Boolean).join(' ');
  if (!saved) return { email, address: { ...blank, name, phone: user.phone } };
  return {
    email,
    address: {
      name,
      email,
      phone: user.phone,
      address: [saved.street_address, saved.apartment].filter(Boolean).join(', '),
      city: saved.city,
      state: saved.state,
      postal_code: saved.postal_code,
      country: saved.country,
    },
  };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The payment provider's outage is the contract's `{"error": …}`; the database, session store or
 * disk away is the wrapped error every route gives: each must go out as it is (a typed 503 cut
 * the wrapped one down to `{"error":"true"}`).
 */
const Unavailable = MixedErrorBody('`{"error": …}` when the payment provider fails; the wrapped error (`service_unavailable`, `storage_read_only`) when the database, session store or disk is away');

export const paymentRoutes: FastifyPluginAsyncTypebox = async (app) => {
  privateResponses(app);

  app.post('/api/payments/create-checkout-session/', {
    config: rateLimit('checkout', '10/hour'),
    schema: {
      tags,
      summary: "Check out the current cart: prices it, holds its stock and promotion code, and opens the provider's payment page",
      description: 'Send an `Idempotency-Key` header to make retries safe: the same key returns the same session and never a second order or charge.',
      body: CheckoutBody,
      response: { 200: CheckoutSession, 400: MixedErrorBody('{"error": "Cart is empty"} and other refusals'), 409: AdHocError, 500: MixedErrorBody('`{"error": …}` when the checkout could not be made; the wrapped `internal` error for any other fault'), 503: Unavailable, 507: ErrorBody },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const owner = (await ownerOf(request, reply, true))!;
      // §2.5: the empty cart is the first thing checked.
      const db = ctxOf(request).database.db;
      const cartId = await findListId(db, 'carts', owner);
      if (cartId === undefined || !(await cartHasItems(db, cartId))) throw adHoc(400, 'Cart is empty');
      const key = request.headers['idempotency-key'];
      const idempotencyKey = typeof key === 'string' && key.trim() ? key.trim() : undefined;
      if (idempotencyKey && idempotencyKey.length > 255) throw adHoc(400, 'Idempotency-Key is longer than 255 characters');
      const storefront = app.config.payments.storefrontUrl;
      const { email, address } = await addressFor(request, body.shipping_address);
      return startCheckout(ctxOf(request), app.payments, {
        owner,
        email,
        address,
        fulfillment: body.fulfillment_method ?? 'shipping',
        promotionCode: body.promotion_code?.trim() || undefined,
        successUrl: returnUrl(app, body.success_url, `${storefront}/checkout/success`, 'success_url', true),
        cancelUrl: returnUrl(app, body.cancel_url, `${storefront}/checkout/cancel`, 'cancel_url', false),
        idempotencyKey,
        origin: requestOrigin(request),
      }).catch((err: unknown) => {
        // The database, the session store or the disk away is the server's state, not this
        // checkout's failure: answered 503/507 as any other write is then.
        if (err instanceof AppError || isOutage(err)) throw err;
        request.log.error({ err }, 'checkout failed');
        throw new AppError('internal', { body: { error: 'Failed to create checkout session. Please try again.' } });
      });
    },
  });

  app.get('/api/payments/verify-checkout-session/', {
    schema: { tags, summary: 'Where a checkout stands: success (with the order), pending, or failed', querystring: VerifyQuery, response: { 200: Verification, 400: VerifyRefused, 503: Unavailable, 507: ErrorBody } },
    handler: async (request, reply) => {
      const id = request.query.session_id?.trim();
      if (!id) throw adHoc(400, 'Session ID is required');
      const v = await verify(ctxOf(request), app.payments, id);
      if (v.status === 'failed') return reply.code(400).send(v);
      return v;
    },
  });

  // The webhook reads the raw bytes: the signature is over them, not over re-serialised JSON.
  await app.register(async (hook) => {
    hook.removeAllContentTypeParsers();
    hook.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    hook.post('/api/payments/stripe-webhook/', {
      // The provider calls from its own addresses, and each call is signed: never limited.
      config: unlimited,
      // 400 and 500 are empty when the handler refuses (the contract), but a body the error handler
      // writes (a Content-Length that does not match, an unexpected failure) must keep its shape:
      // a `null` schema would serialise it to `null`.
      schema: {
        tags,
        summary: 'Stripe events (signed); each event id is handled once',
        response: { 200: { type: 'null' }, 400: MixedErrorBody('Empty for a missing or bad signature; the wrapped error for a malformed request'), 500: MixedErrorBody('Empty when handling the event failed (the provider retries)') },
      },
      handler: async (request, reply) => {
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const signature = request.headers['stripe-signature'];
        let event;
        try {
          event = app.payments.provider.webhookEvent(raw, typeof signature === 'string' ? signature : undefined);
        } catch (err) {
          if (err instanceof SignatureError) {
            request.log.warn({ reason: err.message }, 'webhook refused: bad signature');
            return reply.code(400).send();
          }
          throw err;
        }
        try {
          const fresh = await handleEvent(ctxOf(request), app.payments, event);
          request.log.info({ event: event.id, type: event.type, fresh }, 'payment webhook');
        } catch (err) {
          // Not recorded as seen: the provider retries and the handling runs again.
          request.log.error({ err, event: event.id, type: event.type }, 'payment webhook failed');
          return reply.code(500).send();
        }
        return reply.code(200).send();
      },
    });
  });

  // The test provider's hosted payment page (§4.16): what Stripe Checkout is with a real key.
  app.get('/api/payments/test-checkout/:id/', {
    schema: { tags, summary: 'Test provider: the payment page of a checkout (HTML)', params: SessionParams, hide: true },
    handler: async (request, reply) => {
      const c = await testCheckout(ctxOf(request), app.payments, request.params.id);
      const lines = c.lines.map((l) => `<li>${l.quantity} × ${escapeHtml(l.name)} at $${escapeHtml(l.price)}</li>`).join('');
      const action = `/api/payments/test-checkout/${encodeURIComponent(request.params.id)}/`;
      const button = (outcome: string, label: string) => `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="outcome" value="${outcome}"><button>${label}</button></form>`;
      const page = `<!doctype html><html><head><meta charset="utf-8"><title>Test payment</title></head><body>
<h1>Test payment</h1><p>No money moves: this is the built-in test provider.</p><ul>${lines}</ul>
<p>Items $${c.subtotal} − discount $${c.discount_amount} + shipping $${c.shipping_cost} + tax $${c.tax_amount} = <strong>$${c.total_amount}</strong></p>
${c.status === 'open' ? button('paid', 'Pay') + button('failed', 'Decline') : `<p>This checkout is ${escapeHtml(c.status)}.</p>`}
</body></html>`;
      return reply.type('text/html; charset=utf-8').send(page);
    },
  });

  app.post('/api/payments/test-checkout/:id/', {
    config: rateLimit('order_create', '5/hour'),
    schema: { tags, summary: 'Test provider: pay or decline a checkout, then return to the storefront', params: SessionParams, body: PayBody, hide: true },
    handler: async (request, reply) => {
      const next = await testPay(ctxOf(request), app.payments, request.params.id, request.body.outcome);
      return reply.redirect(next, 303);
    },
  });
};
