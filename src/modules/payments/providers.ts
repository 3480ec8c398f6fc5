// Payment providers behind one interface: Stripe Checkout (the official `stripe` package) when
// STRIPE_SECRET_KEY is set, else the built-in test provider, whose hosted page is served by this
// server (payments.routes.ts) so a purchase works offline.
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import type { Config } from '../../config.ts';
import type { CheckoutAddress, CheckoutLine } from '../../db/schema.ts';
import { toCents } from '../../infra/money.ts';
import type { Totals } from './pricing.ts';

export interface SessionRequest {
  checkoutId: number;
  lines: readonly CheckoutLine[];
  totals: Totals;
  currency: string;
  email: string;
  fulfillment: 'shipping' | 'pickup';
  successUrl: string;
  cancelUrl: string;
  expiresAt: Date;
  metadata: Record<string, string>;
  /** This server's origin, for the test provider's hosted page. */
  origin: string;
}

/** The provider's view of a checkout session. */
export interface SessionState {
  id: string;
  status: 'open' | 'complete' | 'expired';
  paid: boolean;
  paymentIntent: string | null;
  /** What the provider charged, in cents (hundredths, whatever the currency's own minor unit). */
  amountTotal: number | null;
  /** The currency charged (lower case), when the provider says. */
  currency: string | null;
  /** Who paid and where it goes, when the provider collected it. */
  details: Partial<CheckoutAddress> | null;
}

/** A provider's webhook event, in the terms the checkout acts on. */
export type PaymentEvent = { id: string; type: string } & (
  | { kind: 'completed'; session: SessionState }
  | { kind: 'failed'; sessionId: string }
  | { kind: 'expired'; sessionId: string }
  | { kind: 'payment_failed'; paymentIntent: string }
  | { kind: 'ignored' }
);

export class SignatureError extends Error {}

/** The provider said no (bad key, outage): a 503 for the shopper, never a half-made checkout. */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly configuration = false,
  ) {
    super(message);
  }
}

export interface PaymentProvider {
  readonly name: 'stripe' | 'test';
  createSession(req: SessionRequest): Promise<{ id: string; url: string }>;
  /** The session as the provider sees it now; null when the provider keeps no state of its own. */
  retrieve(id: string): Promise<SessionState | null>;
  /** Closes an open session so it can no longer be paid (best effort). */
  expire(id: string): Promise<void>;
  /** Verifies a webhook's signature and reads it. Throws SignatureError. */
  webhookEvent(raw: Buffer, signature: string | undefined): PaymentEvent;
}

/** The built-in provider: sessions are this server's own page; payments are confirmed on it. */
export class TestPaymentProvider implements PaymentProvider {
  readonly name = 'test';

  async createSession(req: SessionRequest): Promise<{ id: string; url: string }> {
    const id = `cs_test_${randomBytes(24).toString('base64url')}`;
    return { id, url: `${req.origin}/api/payments/test-checkout/${id}/` };
  }

  async retrieve(): Promise<null> {
    return null;
  }

  async expire(): Promise<void> {}

  webhookEvent(): PaymentEvent {
    throw new SignatureError('the test provider sends no webhooks');
  }
}

type StripeSession = Stripe.Checkout.Session & {
  collected_information?: { shipping_details?: { name?: string | null; address?: Stripe.Address | null } | null } | null;
  shipping_details?: { name?: string | null; address?: Stripe.Address | null } | null;
};

function stateOf(s: StripeSession): SessionState {
  const customer = s.customer_details;
  const shipping = s.collected_information?.shipping_details ?? s.shipping_details ?? null;
  const address = shipping?.address ?? customer?.address ?? null;
  return {
    id: s.id,
    status: s.status === 'complete' ? 'complete' : s.status === 'expired' ? 'expired' : 'open',
    paid: s.payment_status === 'paid' || s.payment_status === 'no_payment_required',
    paymentIntent: typeof s.payment_intent === 'string' ? s.payment_intent : (s.payment_intent?.id ?? null),
    amountTotal: s.amount_total === null || s.amount_total === undefined ? null : fromStripeAmount(s.amount_total, s.currency),
    currency: typeof s.currency === 'string' && /^[a-z]{3}$/i.test(s.currency) ? s.currency.toLowerCase() : null,
    details: {
      name: shipping?.name ?? customer?.name ?? '',
      email: customer?.email ?? s.customer_email ?? '',
      phone: customer?.phone ?? '',
      address: [address?.line1, address?.line2].filter(Boolean).join(', '),
      city: address?.city ?? '',
      state: address?.state ?? '',
      postal_code: address?.postal_code ?? '',
      country: address?.country ?? '',
    },
  };
}

/**
 * Stripe counts amounts in the currency's smallest unit, which is not always a hundredth: these
 * have none (1 JPY is 1) and these three (1 KWD is 1000). The shop keeps cents (hundredths of the
 * price) everywhere; they are converted at Stripe's door, both ways. A zero-decimal price with a
 * fraction is rounded, and the order is then held, its paid amount differing from its total.
 */
const ZERO_DECIMAL = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);
const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/** Cents (hundredths) as the amount Stripe takes in `currency`. */
export function toStripeAmount(cents: number, currency: string): number {
  const c = currency.toLowerCase();
  if (ZERO_DECIMAL.has(c)) return Math.round(cents / 100);
  if (THREE_DECIMAL.has(c)) return cents * 10;
  return cents;
}

/** An amount Stripe reports in `currency` as cents (hundredths). */
export function fromStripeAmount(amount: number, currency: string | null | undefined): number {
  const c = (currency ?? '').toLowerCase();
  if (ZERO_DECIMAL.has(c)) return amount * 100;
  if (THREE_DECIMAL.has(c)) return Math.round(amount / 10);
  return amount;
}

export interface StripeOptions {
  secretKey: string;
  webhookSecret: string;
  /** Where the Stripe API is (tests point it at a local server). */
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
}

/** How far a webhook's signed timestamp may be from now, either way (Stripe's default tolerance). */
export const WEBHOOK_TOLERANCE_S = 300;

export class StripePaymentProvider implements PaymentProvider {
  readonly name = 'stripe';
  readonly stripe: Stripe;

  constructor(private readonly o: StripeOptions) {
    this.stripe = new Stripe(o.secretKey, { maxNetworkRetries: 2, timeout: 20_000, ...(o.host ? { host: o.host, port: o.port, protocol: o.protocol } : {}) });
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Stripe.errors.StripeAuthenticationError || err instanceof Stripe.errors.StripePermissionError) {
        throw new ProviderError(err.message, true);
      }
      if (err instanceof Stripe.errors.StripeError) throw new ProviderError(err.message);
      throw err;
    }
  }

  async createSession(req: SessionRequest): Promise<{ id: string; url: string }> {
    const money = (name: string, cents: number, quantity = 1) => ({ quantity, price_data: { currency: req.currency, unit_amount: toStripeAmount(cents, req.currency), product_data: { name } } });
    const items = req.lines.map((l) => money(l.name, toCents(l.price), l.quantity));
    if (req.totals.shipping > 0) items.push(money('Shipping', req.totals.shipping));
    if (req.totals.tax > 0) items.push(money('Tax', req.totals.tax));
    // The same checkout never makes two Stripe sessions or coupons, even when a call is retried
    // (the package retries with the key it was given). The random part keeps the key unique beyond
    // this database: another deployment or test schema on the same Stripe account has its own
    // checkout 1, and Stripe would answer it with this one's session (or an idempotency error)
    // for 24 hours.
    const idempotencyKey = `pasargad-checkout-${req.checkoutId}-${randomBytes(8).toString('hex')}`;
    const discounts =
      req.totals.discount > 0
        ? [{ coupon: (await this.call(() => this.stripe.coupons.create({ amount_off: toStripeAmount(req.totals.discount, req.currency), currency: req.currency, duration: 'once', max_redemptions: 1 }, { idempotencyKey: `${idempotencyKey}-coupon` }))).id }]
        : undefined;
    const session = await this.call(() =>
      this.stripe.checkout.sessions.create(
        {
          mode: 'payment',
          line_items: items,
          discounts,
          customer_email: req.email || undefined,
          client_reference_id: String(req.checkoutId),
          metadata: req.metadata,
          payment_intent_data: { metadata: req.metadata },
          success_url: req.successUrl,
          cancel_url: req.cancelUrl,
          expires_at: Math.floor(req.expiresAt.getTime() / 1000),
          ...(req.fulfillment === 'shipping' ? { shipping_address_collection: { allowed_countries: ['US', 'CA'] } } : {}),
        },
        { idempotencyKey },
      ),
    );
    if (!session.url) throw new ProviderError('Stripe returned a session without a URL');
    return { id: session.id, url: session.url };
  }

  async retrieve(id: string): Promise<SessionState | null> {
    try {
      return stateOf((await this.stripe.checkout.sessions.retrieve(id)) as StripeSession);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeInvalidRequestError && err.statusCode === 404) return null;
      return this.call(() => Promise.reject(err));
    }
  }

  async expire(id: string): Promise<void> {
    await this.stripe.checkout.sessions.expire(id).catch(() => undefined);
  }

  webhookEvent(raw: Buffer, signature: string | undefined): PaymentEvent {
    if (!signature) throw new SignatureError('no Stripe-Signature header');
    // The package refuses a timestamp older than its tolerance but takes any in the future; a
    // signed event dated ahead is refused the same way (clocks may differ by the tolerance). The
    // package reads the last `t=` of the header: every one is checked, so an earlier one cannot
    // stand in for it.
    const latest = Date.now() / 1000 + WEBHOOK_TOLERANCE_S;
    for (const item of signature.split(',')) {
      const [k, v] = item.split('=');
      if (k?.trim() === 't' && !(Number(v) <= latest)) throw new SignatureError('timestamp too far in the future');
    }
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(raw, signature, this.o.webhookSecret, WEBHOOK_TOLERANCE_S);
    } catch (err) {
      throw new SignatureError((err as Error).message);
    }
    const base = { id: event.id, type: event.type };
    switch (event.type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded': {
        const state = stateOf(event.data.object as StripeSession);
        // Card payments are paid at completion; delayed methods finish with async_payment_succeeded.
        return state.paid ? { ...base, kind: 'completed', session: state } : { ...base, kind: 'ignored' };
      }
      case 'checkout.session.async_payment_failed':
        return { ...base, kind: 'failed', sessionId: event.data.object.id };
      case 'checkout.session.expired':
        return { ...base, kind: 'expired', sessionId: event.data.object.id };
      case 'payment_intent.payment_failed':
        return { ...base, kind: 'payment_failed', paymentIntent: event.data.object.id };
      default:
        return { ...base, kind: 'ignored' };
    }
  }
}

export function paymentProvider(config: Config['payments'], stripeApi?: Pick<StripeOptions, 'host' | 'port' | 'protocol'>): PaymentProvider {
  if (!config.stripeSecretKey) return new TestPaymentProvider();
  return new StripePaymentProvider({ secretKey: config.stripeSecretKey, webhookSecret: config.stripeWebhookSecret ?? '', ...stripeApi });
}
