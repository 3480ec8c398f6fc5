// What each task does. Handlers run in a worker (or inside the embedded server) with the app's
// database, caches and mailer; each is safe to run twice: an email is sent once per key, again
// only after a crash cut its send off (effects.ts), deletions and releases find nothing left to
// do the second time.
import { domainToASCII } from 'node:url';
import { sql } from 'kysely';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/database.ts';
import { makePasswordResetToken } from '../../modules/accounts/accounts.service.ts';
import { releaseLapsed } from '../../modules/payments/checkout.service.ts';
import { deleteFiles, makeLaterVariants, mediaDeps } from '../../modules/media/media.service.ts';

import { CacheWarmer } from '../cache/warming.ts';
import type { DatabaseKeyValueStore } from '../cache/database-store.ts';
import { abandonedCart, lowStockDigest, orderConfirmation, orderDelivered, orderShipped, passwordReset } from '../email/templates.ts';
import type { Mail, Mailer } from '../email/mailer.ts';
import { mediaUrlFor } from '../http/urls.ts';
import { EffectInProgress, once as onceWith, type OnceOptions } from './effects.ts';
import type { Handlers, JobQueue } from './queue.ts';

/**
 * Carts are reminded within three days of becoming abandoned (the daily task gets three tries);
 * older ones are left alone, so a reminder is never repeated once its record is trimmed.
 */
const ABANDONMENT_LOOKBACK = 3 * 86_400;

export interface TaskDeps {
  app: FastifyInstance;
  mailer: Mailer;
  queue: JobQueue;
  /** Waits for a turn under EMAIL_RATE before each send. */
  emailTurn: () => Promise<void>;
}

async function send(deps: TaskDeps, mail: Mail): Promise<void> {
  await deps.emailTurn();
  await deps.mailer.send(mail);
}

/** The domain of the sender's address, for Message-IDs; `localhost` when it has none usable there. */
export function messageDomain(from: string): string {
  const address = addressparser(from, { flatten: true })[0]?.address ?? '';
  const domain = address.includes('@') ? domainToASCII(address.slice(address.lastIndexOf('@') + 1)) : '';
  return /^[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(domain) ? domain : 'localhost';
}

/** The Message-ID of an email made by once() under `ref`: the same on every try of it. */
function messageIdOf(domain: string, ref: string): string {
  return `<${ref}@${domain}>`;
}

interface OrderForMail {
  id: number;
  status: string;
  order_number: string;
  user_id: number | null;
  shipping_name: string;
  shipping_email: string;
  subtotal: string;
  discount_amount: string;
  shipping_cost: string;
  tax_amount: string;
  total_amount: string;
  tracking_number: string;
  estimated_delivery: string | null;
  items: { name: string; quantity: number; total: string }[];
}

async function orderForMail(db: Db, id: number): Promise<OrderForMail | undefined> {
  const { rows } = await sql<OrderForMail>`
    select o.id, o.status, o.order_number, o.user_id, o.shipping_name, o.shipping_email, o.subtotal::text as subtotal, o.discount_amount::text as discount_amount,
           o.shipping_cost::text as shipping_cost, o.tax_amount::text as tax_amount, o.total_amount::text as total_amount, o.tracking_number,
           o.estimated_delivery::text as estimated_delivery,
           coalesce((select json_agg(json_build_object('name', product_name, 'quantity', quantity, 'total', total_price::text) order by id)
                     from order_items where order_id = o.id), '[]') as items
    from orders o where o.id = ${id}`.execute(db);
  return rows[0];
}

const GUEST_CART_BATCH = 500;

/**
 * Deletes guest carts untouched for `maxAge` seconds and without an open checkout, a batch per
 * transaction, in the lock order of payments.repository.ts: the carts first (skipping any a
 * checkout or a sign-in merge holds), then their checkouts, and only then the delete, whose cascade
 * takes the lines and clears the checkouts' cart_id. A single DELETE took the lines before the
 * checkouts, and deadlocked with a payment holding a checkout of the cart and removing its lines;
 * it also waited out a checkout being made and then deleted its cart all the same.
 */
async function deleteOldGuestCarts(database: Db, maxAge: number): Promise<number> {
  let deleted = 0;
  for (;;) {
    const [seen, gone] = await database.transaction().execute(async (trx) => {
      const { rows } = await sql<{ id: number }>`
        select c.id from carts c where c.session_key is not null
          and greatest(c.updated_at, coalesce((select max(greatest(ci.updated_at, ci.created_at)) from cart_items ci where ci.cart_id = c.id), c.updated_at))
              < now() - make_interval(secs => ${maxAge})
          and not exists (select 1 from checkouts k where k.cart_id = c.id and k.status = 'open')
        order by c.id limit ${GUEST_CART_BATCH}
        for update of c skip locked`.execute(trx);
      if (!rows.length) return [0, 0];
      const ids = rows.map((r) => Number(r.id));
      await trx.selectFrom('checkouts').select('id').where('cart_id', 'in', ids).orderBy('id').forNoKeyUpdate().execute();
      // Checked again with this statement's snapshot: a checkout made just before the carts were
      // locked keeps its cart (none can be made after: it would need the cart's lock).
      const r = await trx
        .deleteFrom('carts')
        .where('id', 'in', ids)
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('checkouts as k').select('k.id').whereRef('k.cart_id', '=', 'carts.id').where('k.status', '=', 'open'))))
        .executeTakeFirst();
      return [rows.length, Number(r.numDeletedRows)];
    });
    deleted += gone;
    if (seen < GUEST_CART_BATCH) return deleted;
  }
}

export function taskHandlers(deps: TaskDeps): Handlers {
  const { app } = deps;
  const db = () => app.database.db;
  const config = app.config;
  const storefront = config.payments.storefrontUrl;
  const domain = messageDomain(config.email.from);
  const effects: OnceOptions = { staleMs: config.jobs.lockMs, log: app.log };
  const once = (db: Db, key: string, job: string, effect: (ref: string) => Promise<void>) => onceWith(db, key, job, effect, effects);
  const ctx = () => ({ database: app.database, media: mediaUrlFor(config.publicUrl ?? `http://localhost:${config.port}`, config.cdnUrl), requestId: 'job', events: app.events, caches: app.caches });

  return {
    async send_order_confirmation({ id, payload }) {
      const o = await orderForMail(db(), payload.orderId);
      if (!o || !o.shipping_email) return;
      // Sent late (a retry, the missed-email sweep) for an order cancelled since: nothing to confirm.
      if (o.status === 'cancelled' || o.status === 'refunded') return;
      const trackUrl = o.user_id === null ? `${storefront}/track-order` : `${storefront}/orders/${o.id}`;
      const mail = orderConfirmation({
        orderNumber: o.order_number,
        name: o.shipping_name,
        lines: o.items,
        subtotal: o.subtotal,
        discount: o.discount_amount,
        shipping: o.shipping_cost,
        tax: o.tax_amount,
        total: o.total_amount,
        trackUrl,
        guest: o.user_id === null,
      });
      await once(db(), `order-confirmation:${o.id}`, id, (ref) => send(deps, { to: o.shipping_email, messageId: messageIdOf(domain, ref), ...mail }));
    },

    async send_order_status_email({ id, payload }) {
      const o = await orderForMail(db(), payload.orderId);
      if (!o || !o.shipping_email) return;
      // Sent late for an order whose status went back since (shipped by mistake): not news any more.
      if (payload.status === 'shipped' ? o.status !== 'shipped' && o.status !== 'delivered' : o.status !== 'delivered') return;
      const mail =
        payload.status === 'shipped'
          ? orderShipped({ orderNumber: o.order_number, name: o.shipping_name, trackingNumber: o.tracking_number, estimatedDelivery: o.estimated_delivery, trackUrl: `${storefront}/track-order` })
          : orderDelivered({ orderNumber: o.order_number, name: o.shipping_name });
      await once(db(), `order-${payload.status}:${o.id}`, id, (ref) => send(deps, { to: o.shipping_email, messageId: messageIdOf(domain, ref), ...mail }));
    },

    async send_password_reset({ id, payload }) {
      // Once per request (its ref, made when it was queued; the job id for jobs queued before
      // there was one): a retry after a crash does not mail a second link.
      await once(db(), `password-reset:${payload.ref ?? id}`, id, async (ref) => {
        const made = await makePasswordResetToken(db(), app.sessions.store, payload.email, config.auth.passwordResetTtl);
        if (!made) return;
        const url = `${storefront}/reset-password?token=${encodeURIComponent(made.token)}`;
        await send(deps, { to: made.user.email, messageId: messageIdOf(domain, ref), ...passwordReset({ name: made.user.first_name, url, minutes: Math.round(config.auth.passwordResetTtl / 60) }) });
      });
    },

    // One digest naming every product newly at or below its threshold; a product is named again
    // only after it was restocked above it. The names are recorded for this job before the send
    // (and taken back if it fails), so a rerun of the job after a crash sends the digest it was
    // making (plus any product newly low), and a later job does not name them again.
    async check_low_stock({ id }) {
      const named = await db()
        .transaction()
        .execute(async (trx) => {
          await sql`delete from low_stock_alerts a using products p where p.id = a.product_id and (p.stock_quantity > p.low_stock_threshold or not p.is_active)`.execute(trx);
          await sql`
            insert into low_stock_alerts (product_id, job)
            select p.id, ${id} from products p where p.is_active and p.stock_quantity <= p.low_stock_threshold
            on conflict do nothing`.execute(trx);
          const { rows } = await sql<{ id: number; name: string; sku: string; stock: number; threshold: number }>`
            select p.id, p.name, p.sku, p.stock_quantity as stock, p.low_stock_threshold as threshold
            from low_stock_alerts a join products p on p.id = a.product_id where a.job = ${id}
            order by p.stock_quantity, p.id`.execute(trx);
          return rows;
        });
      if (!named.length) return;
      let to = [...config.email.lowStockTo];
      if (!to.length) to = (await db().selectFrom('users').select('email').where('is_staff', '=', true).where('is_active', '=', true).orderBy('id').execute()).map((u) => u.email);
      if (!to.length) {
        app.log.warn({ products: named.length }, 'low stock: no staff account or LOW_STOCK_EMAILS to tell');
        return;
      }
      try {
        await once(db(), `low-stock:${id}`, id, (ref) => send(deps, { to, messageId: messageIdOf(domain, ref), ...lowStockDigest(named) }));
      } catch (err) {
        // Not sent: named again next time. (Unless another run of this job is sending it now.)
        if (!(err instanceof EffectInProgress)) await db().deleteFrom('low_stock_alerts').where('job', '=', id).execute();
        throw err;
      }
    },

    async cleanup_expired_sessions() {
      const store = app.sessions.store as Partial<DatabaseKeyValueStore>;
      const sessions = typeof store.purgeExpired === 'function' ? await store.purgeExpired() : 0;
      const checkouts = await releaseLapsed(ctx(), app.payments, 1000);
      app.log.info({ sessions, checkouts }, 'cleanup: expired sessions and lapsed checkout holds removed');
    },

    async release_lapsed_checkouts() {
      await releaseLapsed(ctx(), app.payments, 1000);
    },

    // A signed-in user's cart untouched for ABANDONED_CART_AFTER gets one reminder per
    // abandonment (keyed by its last change, so touching it starts a new one); guest carts
    // untouched for GUEST_CART_MAX_AGE are deleted.
    async process_abandoned_carts({ id }) {
      const { rows } = await sql<{ cart_id: number; last: string; email: string; first_name: string; items: { name: string; quantity: number }[] }>`
        select c.id as cart_id, extract(epoch from greatest(c.updated_at, max(ci.updated_at), max(ci.created_at)))::text as last, u.email, u.first_name,
               json_agg(json_build_object('name', p.name, 'quantity', ci.quantity) order by ci.id) as items
        from carts c join users u on u.id = c.user_id and u.is_active
        join cart_items ci on ci.cart_id = c.id join products p on p.id = ci.product_id
        group by c.id, u.email, u.first_name
        having greatest(c.updated_at, max(ci.updated_at), max(ci.created_at)) < now() - make_interval(secs => ${config.jobs.abandonedCartAfter})
           and greatest(c.updated_at, max(ci.updated_at), max(ci.created_at)) >= now() - make_interval(secs => ${config.jobs.abandonedCartAfter + ABANDONMENT_LOOKBACK})
        order by max(ci.updated_at) desc limit 5000`.execute(db());
      let reminded = 0;
      for (const r of rows) {
        const sent = await once(db(), `abandoned-cart:${r.cart_id}:${r.last}`, id, (ref) => send(deps, { to: r.email, messageId: messageIdOf(domain, ref), ...abandonedCart({ name: r.first_name, items: r.items, cartUrl: `${storefront}/cart` }) }));
        if (sent) reminded++;
      }
      const deleted = await deleteOldGuestCarts(db(), config.jobs.guestCartMaxAge);
      app.log.info({ reminded, guestCartsDeleted: deleted }, 'abandoned carts processed');
    },

    async warm_cache() {
      if (!config.cache.enabled) return;
      const r = await new CacheWarmer(app, config).warm();
      app.log.info(r, 'cache warmed');
    },

    // The order emails are queued after their write commits (wireJobEvents), so a process that
    // dies in between, or while Redis is away and the add waits in memory, loses the job. This
    // finds the paid orders, shipments and deliveries of the last day that have no email record
    // and queues their jobs again under the same job ids: a job that is still waiting, retrying
    // or failed for good keeps that id, so only a lost one is added. Five minutes' grace leaves
    // the normal path its time; the newest come first, as a shopper may be waiting for them.
    async send_missed_order_emails() {
      const { rows } = await sql<{ id: number; kind: 'confirmation' | 'shipped' | 'delivered' }>`
        with recent as (
          select o.id, 'confirmation' as kind from orders o
          where o.created_at > now() - interval '1 day' and o.created_at < now() - interval '5 minutes'
            and exists (select 1 from order_status_history h where h.order_id = o.id and h.status = 'processing' and h.created_by is null)
          union all
          select o.id, 'shipped' from orders o where o.shipped_at > now() - interval '1 day' and o.shipped_at < now() - interval '5 minutes'
          union all
          select o.id, 'delivered' from orders o where o.delivered_at > now() - interval '1 day' and o.delivered_at < now() - interval '5 minutes'
        )
        select r.id, r.kind from recent r join orders o on o.id = r.id
        where o.shipping_email <> ''
          and not exists (select 1 from job_effects e where e.key = case r.kind when 'confirmation' then 'order-confirmation:' else 'order-' || r.kind || ':' end || r.id)
        order by r.id desc limit 1000`.execute(db());
      for (const r of rows) {
        if (r.kind === 'confirmation') await deps.queue.add('send_order_confirmation', { orderId: r.id }, { jobId: `order-confirmation:${r.id}` });
        else await deps.queue.add('send_order_status_email', { orderId: r.id, status: r.kind }, { jobId: `order-${r.kind}:${r.id}` });
      }
      // Most of these adds find their job still there (waiting, retrying, failed for good) and do nothing.
      if (rows.length) app.log.info({ emails: rows.length }, 'order emails without a record: their jobs queued again where lost');
    },

    async trim_jobs() {
      const trimmed = 'trim' in deps.queue ? await (deps.queue as { trim(c: number, f: number): Promise<number> }).trim(config.jobs.keepCompleted * 1000, config.jobs.keepFailed * 1000) : 0;
      // Effect records must outlive every retry of their job and the abandoned-cart look-back.
      const keep = Math.max(config.jobs.keepFailed, ABANDONMENT_LOOKBACK + config.jobs.abandonedCartAfter + 86_400);
      const effects = await sql`delete from job_effects where done_at < now() - make_interval(secs => ${keep})`.execute(db());
      app.log.info({ jobs: trimmed, effects: Number(effects.numAffectedRows ?? 0) }, 'finished jobs trimmed');
    },

    async make_image_variants({ payload }) {
      const started = performance.now();
      await makeLaterVariants(ctx(), mediaDeps(app), payload);
      app.log.info({ ...payload, ms: Math.round(performance.now() - started) }, 'image variants made');
    },

    async delete_media_files({ payload }) {
      await deleteFiles(ctx(), mediaDeps(app), payload.keys);
    },
  };
}
