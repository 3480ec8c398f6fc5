// What a service needs from the request it serves. Services take it first (Vendure's RequestContext).
import type { FastifyRequest } from 'fastify';
import type { Database } from '../../db/database.ts';
import type { Caches } from '../cache/stores.ts';
import type { Db } from '../../db/database.ts';
import type { EventBus, EventName, Publish } from '../events.ts';
import { mediaUrlFor, requestOrigin, type MediaUrl } from './urls.ts';
import { showsTags } from '../cache/response-cache.ts';
import { newWork, talliedCaches, talliedDatabase } from '../monitoring/tally.ts';

export interface Ctx {
  readonly database: Database;
  readonly media: MediaUrl;
  readonly requestId: string;
  /** Publish domain events here, after commit. */
  readonly events: EventBus;
  readonly caches: Caches;
  /**
   * What the answer being made shows (cache tags: the products on a page, the dimensions its
   * query depends on), for the response cache; absent where nothing is cached (jobs).
   */
  readonly shows?: (tags: readonly string[]) => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's context, made on first use (ctxOf). */
    ctx: Ctx | undefined;
  }
}

/** The request's context, made once per request (services may be handed it several times). */
export function ctxOf(request: FastifyRequest): Ctx {
  return (request.ctx ??= makeCtx(request));
}

function makeCtx(request: FastifyRequest): Ctx {
  const app = request.server;
  // With monitoring on, the request's SQL and cache lookups are counted for the slow-request log (tally.ts).
  const work = app.config.monitoring.requests ? (request.work ??= newWork()) : undefined;
  return {
    database: work ? talliedDatabase(app.database, work) : app.database,
    media: mediaUrlFor(requestOrigin(request), app.config.cdnUrl),
    requestId: request.id,
    events: app.events,
    caches: work ? talliedCaches(app.caches, work) : app.caches,
    shows: (tags) => showsTags(request, tags),
  };
}

/**
 * Runs `fn` in a transaction and publishes the events it queued once the transaction committed.
 * Stock and money writes lock rows in id order, but PostgreSQL may still pick one of two
 * transactions as a deadlock victim (or fail a serialization): that one is run again, twice at most.
 */
export async function inTransaction<T>(ctx: Ctx, fn: (trx: Db, publish: Publish) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const pending: [EventName, unknown][] = [];
    try {
      const result = await ctx.database.db.transaction().execute((trx) => fn(trx, (name, payload) => void pending.push([name, payload])));
      await Promise.all(pending.map(([name, payload]) => ctx.events.emit(name, payload as never)));
      return result;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= 3 || (code !== '40P01' && code !== '40001')) throw err;
    }
  }
}
