// Checkout (API-CONTRACT.md §2.5 and §4.14–16): the cart is priced on the server, its stock and
// promotion code are held, and the provider's session is opened; the payment then turns the
// checkout into an order exactly once, however many times and in whatever order the provider
// reports it. A checkout that lapses or fails gives its stock and code back.
import { randomBytes } from 'node:crypto';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { CheckoutAddress, CheckoutLine } from '../../db/schema.ts';
import type { Publish, StockMove } from '../../infra/events.ts';
import { AppError, ERRORS } from '../../infra/http/errors.ts';
import { inTransaction, type Ctx } from '../../infra/http/context.ts';
import { fromCents, toCents } from '../../infra/money.ts';
import type { Owner } from '../accounts/session.ts';
import { findListId } from '../accounts/owner.repository.ts';
import * as orders from '../orders/orders.repository.ts';
import { holdPromotion } from '../promotions/promotions.service.ts';
import * as repo from './payments.repository.ts';
import { priceCheckout } from './pricing.ts';
import { ProviderError, type PaymentEvent, type PaymentProvider, type SessionState } from './providers.ts';

export interface PaymentsDeps {
  provider: PaymentProvider;
  payments: Config['payments'];
  pricing: Config['pricing'];
}

/** The contract's ad-hoc error body, `{"error": "…"}`. */
export const adHoc = (status: number, message: string) =>
  new AppError(status === 503 ? 'service_unavailable' : status === 409 ? 'conflict' : status === 404 ? 'not_found' : 'bad_request', { status, body: { error: message } });

const ownerKey = (owner: Owner) => (owner.userId !== undefined ? `user:${owner.userId}` : `session:${owner.sessionKey}`);

export interface CheckoutInput {
  owner: Owner;
  email: string;
  address: CheckoutAddress | null;
  fulfillment: 'shipping' | 'pickup';
  promotionCode?: string;
  successUrl: string;
  cancelUrl: string;
  idempotencyKey?: string;
  /** sha256 of the request (body and caller): a key reused for another request is refused. */
  fingerprint?: string;
  /** This server's origin (the test provider's page lives here). */
  origin: string;
}

export interface CheckoutSession {
  checkout_session_id: string;
  checkout_url: string;
}

const answer = (c: repo.CheckoutRow): CheckoutSession => ({ checkout_session_id: c.public_id!, checkout_url: c.checkout_url });

/** An Idempotency-Key seen before: the same request gets the same session; another request is refused (422, as Stripe does). */
function replayed(c: repo.CheckoutRow, fingerprint: string | undefined): CheckoutSession {
  // Rows from before fingerprints (null) replay as they always did.
  if (c.request_fingerprint && fingerprint && c.request_fingerprint !== fingerprint) {
    throw new AppError('idempotency_key_reused', { body: { error: ERRORS.idempotency_key_reused.message } });
  }
  if (c.public_id) return answer(c);
  if (c.status !== 'open') throw adHoc(409, 'The checkout for this Idempotency-Key could not be created. Use a new key.');
  throw adHoc(409, 'A checkout with this Idempotency-Key is still being created. Retry shortly.');
}

/**
 * The answer already given to this owner's Idempotency-Key, if any (422 for another request). Looked
 * up before anything about the cart: a replay after the checkout was paid finds the cart emptied.
 */
export async function replayOf(ctx: Ctx, owner: Owner, idempotencyKey: string, fingerprint: string): Promise<CheckoutSession | undefined> {
  const seen = await repo.findByIdempotencyKey(ctx.database.db, ownerKey(owner), idempotencyKey);
  return seen && replayed(seen, fingerprint);
}

/** Releases what a checkout holds (stock, promotion use) and closes it; false if it was not open. */
async function releaseIn(trx: Db, publish: Publish, c: repo.CheckoutRow, status: 'expired' | 'failed'): Promise<boolean> {
  if (c.status !== 'open') return false;
  const held = await repo.reservations(trx, c.id);
  const moves = await repo.giveStock(trx, held);
  await trx.deleteFrom('stock_reservations').where('checkout_id', '=', c.id).execute();
  await trx.deleteFrom('promotion_usages').where('checkout_id', '=', c.id).where('order_id', 'is', null).execute();
  await trx.updateTable('checkouts').set({ status, updated_at: new Date().toISOString() }).where('id', '=', c.id).execute();
  if (moves.length) publish('stock.changed', repo.stockChanged(moves));
  return true;
}

/**
 * Releases checkouts past their expiry. Called before each new checkout (so stock held by
 * abandoned checkouts is never what turns a shopper away) and by the scheduled cleanup.
 */
export async function releaseLapsed(ctx: Ctx, deps: PaymentsDeps, limit = 100): Promise<number> {
  let released = 0;
  // One checkout per transaction: each releases its products in id order, so none can deadlock
  // with a checkout taking the same products.
  while (released < limit) {
    const c = await inTransaction(ctx, async (trx, publish) => {
      const [row] = await repo.lapsedCheckouts(trx, 1);
      if (row) await releaseIn(trx, publish, row, 'expired');
      return row;
    });
    if (!c) break;
    released++;
    // So the provider cannot take a payment for what was just released (in the background:
    // a shopper's request never waits on the provider for someone else's checkout).
    if (c.public_id) void deps.provider.expire(c.public_id).catch(() => undefined);
  }
  return released;
}

export async function startCheckout(ctx: Ctx, deps: PaymentsDeps, input: CheckoutInput): Promise<CheckoutSession> {
  const db = ctx.database.db;
  const key = ownerKey(input.owner);
  if (input.idempotencyKey) {
    const seen = await repo.findByIdempotencyKey(db, key, input.idempotencyKey);
    if (seen) return replayed(seen, input.fingerprint);
  }
  const cartId = await findListId(db, 'carts', input.owner);
  if (cartId === undefined) throw adHoc(400, 'Cart is empty');
  await releaseLapsed(ctx, deps);

  const expiresAt = new Date(Date.now() + deps.payments.checkoutTtl * 1000);
  let created: { checkout: repo.CheckoutRow; replaced: repo.CheckoutRow[] };
  try {
    created = await inTransaction(ctx, async (trx, publish) => {
      if (!(await repo.lockCart(trx, cartId))) throw adHoc(400, 'Cart is empty');
      // One open checkout per cart: starting again replaces the last one and frees what it held.
      const replaced = await repo.openCheckoutsOfCart(trx, cartId);
      const lines = await repo.cartLines(trx, cartId);
      if (lines.length === 0) throw adHoc(400, 'Cart is empty');
      // Every product this transaction will touch, locked at once in id order (no deadlocks).
      const held = (await Promise.all(replaced.map((c) => repo.reservations(trx, c.id)))).flat();
      await repo.lockProducts(trx, [...held.map((h) => h.product_id), ...lines.map((l) => l.product_id)]);
      for (const c of replaced) await releaseIn(trx, publish, c, 'expired');

      const moves: StockMove[] = [];
      for (const l of lines) {
        if (!l.is_active) throw adHoc(400, `"${l.name}" is no longer available`);
        const moved = await repo.takeStock(trx, l.product_id, l.quantity);
        if (moved) moves.push(moved);
        else {
          const left = await repo.stockOf(trx, l.product_id);
          throw adHoc(400, left > 0 ? `Only ${left} of "${l.name}" left in stock` : `"${l.name}" is out of stock`);
        }
      }
      const snapshot: CheckoutLine[] = lines.map(({ product_id, name, sku, price, weight, quantity }) => ({ product_id, name, sku, price, weight, quantity }));
      const provisional = priceCheckout({ lines: snapshot, discount: 0, freeShipping: false, fulfillment: input.fulfillment }, deps.pricing);
      const checkout = await trx
        .insertInto('checkouts')
        .values({
          provider: deps.provider.name,
          cart_id: cartId,
          user_id: input.owner.userId ?? null,
          session_key: input.owner.sessionKey ?? null,
          email: input.email,
          fulfillment_method: input.fulfillment,
          lines: JSON.stringify(snapshot),
          address: input.address ? JSON.stringify(input.address) : null,
          subtotal: fromCents(provisional.subtotal),
          total_amount: fromCents(provisional.total),
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
          idempotency_key: input.idempotencyKey ?? null,
          request_fingerprint: input.fingerprint ?? null,
          owner_key: key,
          expires_at: expiresAt.toISOString(),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await trx
        .insertInto('stock_reservations')
        .values(lines.map((l) => ({ checkout_id: checkout.id, product_id: l.product_id, quantity: l.quantity })))
        .execute();

      let discount = 0;
      let freeShipping = false;
      let promotionId: number | null = null;
      if (input.promotionCode) {
        const held = await holdPromotion(trx, {
          code: input.promotionCode,
          userId: input.owner.userId ?? null,
          lines: lines.map((l) => ({ product_id: l.product_id, category_id: l.category_id, price: l.price, quantity: l.quantity })),
          checkoutId: checkout.id,
        });
        discount = toCents(held.discount);
        freeShipping = held.freeShipping;
        promotionId = held.promotionId;
      }
      const t = priceCheckout({ lines: snapshot, discount, freeShipping, fulfillment: input.fulfillment }, deps.pricing);
      const priced = await trx
        .updateTable('checkouts')
        .set({
          subtotal: fromCents(t.subtotal),
          discount_amount: fromCents(t.discount),
          shipping_cost: fromCents(t.shipping),
          tax_amount: fromCents(t.tax),
          total_amount: fromCents(t.total),
          promotion_id: promotionId,
        })
        .where('id', '=', checkout.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      publish('stock.changed', repo.stockChanged(moves));
      return { checkout: priced, replaced };
    });
  } catch (err) {
    // Two requests with one Idempotency-Key: the second waited on the first's row and lost.
    if ((err as { code?: string }).code === '23505' && input.idempotencyKey) {
      const seen = await repo.findByIdempotencyKey(db, key, input.idempotencyKey);
      if (seen) return replayed(seen, input.fingerprint);
    }
    throw err;
  }
  const { checkout, replaced } = created;
  for (const c of replaced) if (c.public_id) void deps.provider.expire(c.public_id).catch(() => undefined);

  let session: { id: string; url: string };
  try {
    session = await deps.provider.createSession({
      checkoutId: checkout.id,
      lines: checkout.lines,
      totals: {
        subtotal: toCents(checkout.subtotal),
        discount: toCents(checkout.discount_amount),
        shipping: toCents(checkout.shipping_cost),
        tax: toCents(checkout.tax_amount),
        total: toCents(checkout.total_amount),
        weight: 0,
      },
      currency: deps.payments.currency,
      email: checkout.email,
      fulfillment: checkout.fulfillment_method,
      successUrl: checkout.success_url,
      cancelUrl: checkout.cancel_url,
      expiresAt,
      metadata: {
        checkout_id: String(checkout.id),
        cart_id: String(cartId),
        ...(checkout.user_id !== null ? { user_id: String(checkout.user_id) } : {}),
        ...(checkout.session_key ? { session_key: checkout.session_key } : {}),
      },
      origin: input.origin,
    });
  } catch (err) {
    await releaseUnopened(ctx, checkout.id);
    if (err instanceof ProviderError) {
      throw adHoc(503, err.configuration ? 'Payment configuration error. Please contact support.' : 'Payment service error. Please try again later.');
    }
    throw err;
  }
  let opened: repo.CheckoutRow | undefined;
  try {
    opened = await db
      .updateTable('checkouts')
      .set({ public_id: session.id, checkout_url: session.url, updated_at: new Date().toISOString() })
      .where('id', '=', checkout.id)
      .where('status', '=', 'open')
      .returningAll()
      .executeTakeFirst();
  } catch (err) {
    // The hold committed but the session id could not be saved (the database went away, or
    // the id clashed): nobody can pay this checkout, so its stock and code use go back now,
    // not at CHECKOUT_TTL. Should the release fail too, the sweep takes it (releaseLapsed).
    void deps.provider.expire(session.id).catch(() => undefined);
    await releaseUnopened(ctx, checkout.id);
    throw err;
  }
  if (!opened) {
    // Replaced while the provider was opening it (a second click): never hand out a payable
    // session for a checkout that holds nothing.
    void deps.provider.expire(session.id).catch(() => undefined);
    throw adHoc(409, 'This checkout was replaced by a newer one from the same cart.');
  }
  return answer(opened);
}

/** Gives back what a checkout whose session never opened holds; best effort (the sweep catches what this misses). */
async function releaseUnopened(ctx: Ctx, checkoutId: number): Promise<void> {
  await inTransaction(ctx, async (trx, publish) => {
    const c = await repo.lockById(trx, checkoutId);
    if (c) await releaseIn(trx, publish, c, 'failed');
  }).catch(() => undefined); // the database is away: the sweep releases it once it is back
}

export interface Payment {
  paymentIntent: string;
  /** Cents the provider charged, when it says. */
  amountTotal: number | null;
  /** The currency it charged them in, when it says. */
  currency?: string | null;
  details: Partial<CheckoutAddress> | null;
}

/**
 * Turns a paid checkout into its order, once: a second report of the same payment finds the
 * order made by the first. A payment for a checkout that already lapsed takes the stock again if
 * it is still there; if not, the order is recorded as cancelled with a refund due, and the shop
 * still never sells more than it has.
 */
async function fulfilIn(trx: Db, publish: Publish, deps: PaymentsDeps, c: repo.CheckoutRow, payment: Payment): Promise<number> {
  if (c.status === 'complete' && c.order_id !== null) return c.order_id;
  let soldOut = false;
  if (c.status !== 'open') {
    const taken: { product_id: number; quantity: number }[] = [];
    const moves: StockMove[] = [];
    for (const l of [...c.lines].sort((a, b) => a.product_id - b.product_id)) {
      const moved = await repo.takeStock(trx, l.product_id, l.quantity);
      if (!moved) {
        soldOut = true;
        break;
      }
      taken.push(l);
      moves.push(moved);
    }
    // Sold out: what was taken goes back in this transaction, so no count moved.
    if (soldOut) await repo.giveStock(trx, taken);
    else publish('stock.changed', repo.stockChanged(moves));
  }
  // The order's amounts are what was bought and always add up; what the provider charged is
  // recorded beside them (the payment's amount, the order's amount_paid). A charge that differs
  // from the total (a tampered or misconfigured session, a currency slip) holds the order for
  // staff: it stays pending, flagged on_hold, until someone looks at it.
  const paid = payment.amountTotal ?? toCents(c.total_amount);
  const currency = payment.currency || deps.payments.currency;
  const mismatch = !soldOut && (paid !== toCents(c.total_amount) || currency !== deps.payments.currency);
  const mismatchNote = `Order placed; paid ${fromCents(paid)} ${currency.toUpperCase()} against a total of ${c.total_amount} ${deps.payments.currency.toUpperCase()} (${c.provider} ${payment.paymentIntent}): held for staff review`;
  const to = { ...(c.address ?? {}), ...Object.fromEntries(Object.entries(payment.details ?? {}).filter(([, v]) => v)) } as Partial<CheckoutAddress>;
  const email = to.email || c.email;
  const orderId = await orders.insertOrder(trx, {
    order: {
      user_id: c.user_id,
      session_key: c.session_key,
      checkout_id: c.id,
      status: soldOut ? 'cancelled' : mismatch ? 'pending' : 'processing',
      fulfillment_method: c.fulfillment_method,
      subtotal: c.subtotal,
      discount_amount: c.discount_amount,
      tax_amount: c.tax_amount,
      shipping_cost: c.shipping_cost,
      total_amount: c.total_amount,
      amount_paid: fromCents(paid),
      on_hold: mismatch,
      promotion_id: soldOut ? null : c.promotion_id,
      shipping_name: to.name ?? '',
      shipping_email: email,
      shipping_phone: to.phone ?? '',
      shipping_address: to.address ?? '',
      shipping_city: to.city ?? '',
      shipping_state: to.state ?? '',
      shipping_postal_code: to.postal_code ?? '',
      shipping_country: to.country ?? '',
      billing_name: to.name ?? '',
      billing_email: email,
      billing_address: to.address ?? '',
      billing_city: to.city ?? '',
      billing_state: to.state ?? '',
      billing_postal_code: to.postal_code ?? '',
      billing_country: to.country ?? '',
    },
    lines: c.lines,
    history: mismatch
      ? [{ status: 'pending', notes: mismatchNote }]
      : [
          { status: 'pending', notes: 'Order placed' },
          soldOut
            ? { status: 'cancelled', notes: 'Paid after the checkout lapsed and the stock was gone: refund due' }
            : { status: 'processing', notes: `Payment received (${c.provider} ${payment.paymentIntent})` },
        ],
  });
  await trx
    .insertInto('payments')
    .values({ order_id: orderId, provider: c.provider, payment_intent: payment.paymentIntent, amount: fromCents(paid), currency, status: 'completed' })
    .execute();
  await trx.deleteFrom('stock_reservations').where('checkout_id', '=', c.id).execute();
  if (soldOut) await trx.deleteFrom('promotion_usages').where('checkout_id', '=', c.id).execute();
  else if (c.promotion_id !== null) {
    // The shopper paid the discounted price, so the use counts even when the hold had lapsed
    // (and was given back) before the payment came.
    const kept = await trx.updateTable('promotion_usages').set({ order_id: orderId }).where('checkout_id', '=', c.id).returning('id').executeTakeFirst();
    if (!kept) await trx.insertInto('promotion_usages').values({ promotion_id: c.promotion_id, user_id: c.user_id, checkout_id: c.id, order_id: orderId, discount_amount: c.discount_amount }).execute();
  }
  if (c.cart_id !== null) {
    await repo.removeBoughtLines(
      trx,
      c.cart_id,
      c.lines.map((l) => l.product_id),
    );
    publish('cart.changed', { cartId: c.cart_id, userId: c.user_id });
  }
  await trx
    .updateTable('checkouts')
    .set({ status: 'complete', order_id: orderId, payment_intent: payment.paymentIntent, updated_at: new Date().toISOString() })
    .where('id', '=', c.id)
    .execute();
  publish('order.created', { id: orderId, userId: c.user_id });
  // order.paid confirms the order to the customer: not while it is held (its total is not what
  // was charged); staff accepting it (pending → processing) confirms it then.
  if (!soldOut && !mismatch) publish('order.paid', { id: orderId, userId: c.user_id });
  return orderId;
}

/** Completes a checkout from a payment the provider confirmed. Null for an unknown session. */
export async function fulfil(ctx: Ctx, deps: PaymentsDeps, publicId: string, payment: Payment): Promise<number | null> {
  return inTransaction(ctx, async (trx, publish) => {
    const c = await repo.findByPublicId(trx, publicId, true);
    return c ? fulfilIn(trx, publish, deps, c, payment) : null;
  });
}

/** Closes an open checkout whose payment failed or was abandoned, giving back what it held. */
export async function release(ctx: Ctx, publicId: string, status: 'expired' | 'failed'): Promise<boolean> {
  return inTransaction(ctx, async (trx, publish) => {
    const c = await repo.findByPublicId(trx, publicId, true);
    return c ? releaseIn(trx, publish, c, status) : false;
  });
}

/**
 * A provider webhook, handled once: the event id is recorded in the transaction that acts on it,
 * so a replay or a duplicate changes nothing, and a handling that failed is not marked as seen
 * (the provider's retry runs it again). Returns whether the event was new.
 */
export async function handleEvent(ctx: Ctx, deps: PaymentsDeps, event: PaymentEvent): Promise<boolean> {
  return inTransaction(ctx, async (trx, publish) => {
    if (!(await repo.recordEvent(trx, deps.provider.name, event.id, event.type))) return false;
    switch (event.kind) {
      case 'completed': {
        const c = await repo.findByPublicId(trx, event.session.id, true);
        if (c) await fulfilIn(trx, publish, deps, c, paymentOf(event.session));
        break;
      }
      case 'failed':
      case 'expired': {
        const c = await repo.findByPublicId(trx, event.sessionId, true);
        if (c) await releaseIn(trx, publish, c, event.kind);
        break;
      }
      case 'payment_failed':
        // A declined card leaves the session open for another try; only an order already made
        // from this payment is affected (cancelled, stock restored).
        await orders.failPayment(trx, publish, deps.provider.name, event.paymentIntent);
        break;
      case 'ignored':
        break;
    }
    return true;
  });
}

function paymentOf(s: SessionState): Payment {
  return { paymentIntent: s.paymentIntent ?? s.id, amountTotal: s.amountTotal, currency: s.currency, details: s.details };
}

export type Verification =
  | { status: 'success'; order_id: number; order_number: string; email: string }
  | { status: 'pending'; message: string }
  | { status: 'failed'; message: string };

/**
 * What the storefront's success page polls. With Stripe, a paid session is fulfilled here too,
 * so the order never waits for a webhook that is slow or lost.
 */
export async function verify(ctx: Ctx, deps: PaymentsDeps, publicId: string): Promise<Verification> {
  const db = ctx.database.db;
  let c = await repo.findByPublicId(db, publicId);
  if (!c) throw adHoc(400, 'Invalid payment session ID');
  if (c.status === 'open') {
    let state: SessionState | null;
    try {
      state = await deps.provider.retrieve(publicId);
    } catch (err) {
      if (err instanceof ProviderError) throw adHoc(503, 'Payment service error. Please try again later.');
      throw err;
    }
    if (state?.status === 'complete' && state.paid) await fulfil(ctx, deps, publicId, paymentOf(state));
    else if (state?.status === 'expired' || Date.parse(c.expires_at) < Date.now()) await release(ctx, publicId, 'expired');
    c = (await repo.findByPublicId(db, publicId))!;
  }
  if (c.status === 'complete' && c.order_id !== null) {
    const o = await db.selectFrom('orders').select(['id', 'order_number', 'shipping_email']).where('id', '=', c.order_id).executeTakeFirstOrThrow();
    return { status: 'success', order_id: o.id, order_number: o.order_number, email: o.shipping_email };
  }
  if (c.status === 'open') return { status: 'pending', message: 'Payment not completed.' };
  if (c.status === 'expired') return { status: 'failed', message: 'Payment session expired or was not completed.' };
  return { status: 'failed', message: 'Payment failed or session expired.' };
}

/** The test provider's hosted page: the checkout behind a session id, if the test provider made it. */
export async function testCheckout(ctx: Ctx, deps: PaymentsDeps, publicId: string): Promise<repo.CheckoutRow> {
  const c = deps.provider.name === 'test' ? await repo.findByPublicId(ctx.database.db, publicId) : undefined;
  if (!c || c.provider !== 'test') throw new AppError('not_found');
  return c;
}

/** Whether the payment page must ask who pays (as Stripe Checkout does when no customer_email was given). */
export const needsEmail = (c: repo.CheckoutRow): boolean => !c.email && !c.address?.email;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * A Location header that cannot fail: the URL re-serialised by the WHATWG parser (which drops
 * tabs and line breaks and percent-encodes the rest) and kept only if it is plain printable
 * ASCII on http(s). Return URLs are checked when the checkout is made; this covers rows stored
 * before that check.
 */
export function safeRedirect(url: string, fallback: string): string {
  try {
    const u = new URL(url);
    if ((u.protocol === 'http:' || u.protocol === 'https:') && /^[\x21-\x7e]+$/.test(u.href)) return u.href;
  } catch {
    /* not a URL: the fallback */
  }
  return fallback;
}

/** The test provider's "Pay" and "Decline" buttons. Returns where the shopper goes next. */
export async function testPay(ctx: Ctx, deps: PaymentsDeps, publicId: string, outcome: 'paid' | 'failed', givenEmail?: string): Promise<string> {
  const c = await testCheckout(ctx, deps, publicId);
  const storefront = deps.payments.storefrontUrl;
  const success = safeRedirect(c.success_url.replaceAll('{CHECKOUT_SESSION_ID}', encodeURIComponent(publicId)), `${storefront}/checkout/success?session_id=${encodeURIComponent(publicId)}`);
  if (c.status === 'complete') {
    if (outcome === 'paid') return success;
    throw adHoc(400, 'This checkout is already paid');
  }
  if (c.status !== 'open' || Date.parse(c.expires_at) < Date.now()) {
    await release(ctx, publicId, 'expired');
    throw adHoc(400, 'This checkout has expired');
  }
  if (outcome === 'failed') {
    await release(ctx, publicId, 'failed');
    return safeRedirect(c.cancel_url, `${storefront}/checkout/cancel`);
  }
  // A guest who gave no email gives it here, so the order can be tracked and confirmed.
  let details: Payment['details'] = null;
  if (needsEmail(c)) {
    const email = (givenEmail ?? '').trim();
    if (!email || email.length > 254 || !EMAIL.test(email)) throw adHoc(400, 'Enter a valid email address.');
    details = { email };
  }
  await fulfil(ctx, deps, publicId, { paymentIntent: `pi_test_${randomBytes(12).toString('hex')}`, amountTotal: toCents(c.total_amount), details });
  return success;
}
