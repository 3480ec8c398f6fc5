// /api/payments/ (API-CONTRACT.md §2.5, §4.4–5, §4.16): checkout sessions, their verification,
// the Stripe webhook, and the test provider's hosted page.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CheckoutAddress } from '../../db/schema.ts';
import { ctxOf } from '../../infra/http/context.ts';
import { AppError, fieldError, isOutage } from '../../infra/http/errors.ts';
import { privateResponses } from '../../infra/http/hooks.ts';
import { AdHocError, ErrorBody, MixedErrorBody } from '../../infra/http/schema.ts';
import { requestOrigin } from '../../infra/http/urls.ts';
import { rateLimit, unlimited } from '../../infra/limits/plugin.ts';
import { currentUser } from '../accounts/auth.ts';
import { findListId } from '../accounts/owner.repository.ts';
import { ownerOf } from '../accounts/session.ts';
import { cartHasItems } from './payments.repository.ts';
import { adHoc, handleEvent, needsEmail, replayOf, startCheckout, testCheckout, testPay, verify, type PaymentsDeps } from './checkout.service.ts';
import { CheckoutBody, CheckoutSession, PayBody, SessionParams, Verification, VerifyQuery, VerifyRefused } from './payments.schemas.ts';
import { SignatureError } from './providers.ts';

declare module 'fastify' {
  interface FastifyInstance {
    payments: PaymentsDeps;
  }
}

const tags = ['payments'];
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

const SESSION_PLACEHOLDER = '{CHECKOUT_SESSION_ID}';

/**
 * Returns go only to the storefront (an open redirect otherwise); the session id is always in the
 * success URL. A URL is stored as the WHATWG parser writes it (non-ASCII percent-encoded, no
 * credentials), so the Location header of the redirect after paying, and Stripe, always take it;
 * control characters (CR/LF: a header injection) are refused rather than silently dropped.
 */
function returnUrl(app: FastifyInstance, given: string | undefined, fallback: string, field: string, withSession: boolean): string {
  const allowed = new Set([new URL(app.config.payments.storefrontUrl).origin, ...app.config.corsOrigins]);
  let url = fallback;
  if (given !== undefined && given.trim() !== '') {
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(given)) throw fieldError(field, 'Enter a valid URL: control characters such as line breaks are not allowed.');
    let parsed: URL;
    try {
      parsed = new URL(given.trim());
    } catch {
      throw fieldError(field, 'Enter a valid URL.');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw fieldError(field, 'Enter a valid URL.');
    if (!allowed.has(parsed.origin)) throw fieldError(field, `${field} must be on the storefront's origin`);
    parsed.username = '';
    parsed.password = '';
    // The parser encodes the braces of the placeholder in a path; Stripe looks for them as they are.
    url = parsed.href.replaceAll('%7BCHECKOUT_SESSION_ID%7D', SESSION_PLACEHOLDER);
    if (url.length > 2048) throw fieldError(field, 'Ensure this URL has no more than 2048 characters once encoded.');
  }
  if (withSession && !url.includes(SESSION_PLACEHOLDER)) {
    const hash = url.indexOf('#');
    const [base, fragment] = hash < 0 ? [url, ''] : [url.slice(0, hash), url.slice(hash)];
    url = `${base}${base.includes('?') ? '&' : '?'}session_id=${SESSION_PLACEHOLDER}${fragment}`;
  }
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

/** JSON with object keys sorted at every level: the same request in any key order is the same text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v ?? null);
}

/**
 * What an Idempotency-Key is bound to: who asks (the owner the key is scoped to, and the signed-in
 * user, whose email and address the checkout takes) and every field of the body the checkout
 * reads. Fields the checkout ignores (a client's own totals) do not count.
 */
function fingerprint(owner: string, userId: number | null, body: CheckoutBody): string {
  const read: Record<string, unknown> = {};
  for (const k of ['success_url', 'cancel_url', 'promotion_code', 'fulfillment_method', 'email', 'shipping_address'] as const) if (body[k] !== undefined) read[k] = body[k];
  return createHash('sha256').update(canonical({ owner, user: userId, body: read })).digest('hex');
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
      description:
        'Send an `Idempotency-Key` header to make retries safe: the same key with the same request returns the same session and never a second order or charge; the same key with a different request (body or caller) is `422`.',
      body: CheckoutBody,
      response: {
        200: CheckoutSession,
        400: MixedErrorBody('{"error": "Cart is empty"} and other refusals; a bad `success_url`/`cancel_url` is a field error'),
        409: AdHocError,
        422: AdHocError, 500: MixedErrorBody('`{"error": …}` when the checkout could not be made; the wrapped `internal` error for any other fault'), 503: Unavailable, 507: ErrorBody },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const owner = (await ownerOf(request, reply, true))!;
      const key = request.headers['idempotency-key'];
      const idempotencyKey = typeof key === 'string' && key.trim() ? key.trim() : undefined;
      if (idempotencyKey && idempotencyKey.length > 255) throw adHoc(400, 'Idempotency-Key is longer than 255 characters');
      const user = await currentUser(request);
      const owned = owner.userId !== undefined ? `user:${owner.userId}` : `session:${owner.sessionKey}`;
      // A request already answered gets its answer again, whatever its cart holds now (a checkout
      // that was paid has emptied it).
      if (idempotencyKey) {
        const seen = await replayOf(ctxOf(request), owner, idempotencyKey, fingerprint(owned, user?.id ?? null, body));
        if (seen) return seen;
      }
      // §2.5: otherwise the empty cart is the first thing checked.
      const db = ctxOf(request).database.db;
      const cartId = await findListId(db, 'carts', owner);
      if (cartId === undefined || !(await cartHasItems(db, cartId))) throw adHoc(400, 'Cart is empty');
      const storefront = app.config.payments.storefrontUrl;
      const { email, address } = await addressFor(request, body.shipping_address);
      const successUrl = returnUrl(app, body.success_url, `${storefront}/checkout/success`, 'success_url', true);
      const cancelUrl = returnUrl(app, body.cancel_url, `${storefront}/checkout/cancel`, 'cancel_url', false);
      return startCheckout(ctxOf(request), app.payments, {
        owner,
        email,
        address,
        fulfillment: body.fulfillment_method ?? 'shipping',
        promotionCode: body.promotion_code?.trim() || undefined,
        successUrl,
        cancelUrl,
        idempotencyKey,
        fingerprint: idempotencyKey ? fingerprint(owned, user?.id ?? null, body) : undefined,
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
      // With no email for the checkout (a guest who gave none), the page asks for it, as Stripe
      // Checkout does: the order needs it for its confirmation and for guest tracking.
      const askEmail = needsEmail(c) ? '<label>Email <input type="email" name="email" autocomplete="email" maxlength="254" required></label> ' : '';
      const button = (outcome: string, label: string) =>
        `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="outcome" value="${outcome}">${outcome === 'paid' ? askEmail : ''}<button>${label}</button></form>`;
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
      const next = await testPay(ctxOf(request), app.payments, request.params.id, request.body.outcome, request.body.email);
      return reply.redirect(next, 303);
    },
  });
};
