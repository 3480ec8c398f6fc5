// What a service needs from the request it serves. Services take it first (Vendure's RequestContext).
import type { FastifyRequest } from 'fastify';
import type { Database } from '../../db/database.ts';
import type { Caches } from '../cache/stores.ts';
import type { EventBus } from '../events.ts';
import { mediaUrlFor, requestOrigin, type MediaUrl } from './urls.ts';

export interface Ctx {
  readonly database: Database;
  readonly media: MediaUrl;
  readonly requestId: string;
  /** Publish domain events here, after commit. */
  readonly events: EventBus;
  readonly caches: Caches;
}

export function ctxOf(request: FastifyRequest): Ctx {
  const app = request.server;
  return { database: app.database, media: mediaUrlFor(requestOrigin(request), app.config.cdnUrl), requestId: request.id, events: app.events, caches: app.caches };
}
