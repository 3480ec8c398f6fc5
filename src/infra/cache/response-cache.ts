// The HTTP response cache (the seed's CacheMiddleware): GET and HEAD of public catalog routes are
// answered from the `api` store as ready bytes, with gzip and brotli variants made once when the
// entry is stored, so a hit does no serialising and no compressing. ETag and 304, X-Cache, and a
// public Cache-Control. A route opts in with `config: cacheResponse({ keyPrefix, ttl, tags })`.
//
// The lookup runs in `onRequest`, after the hooks registered before it (request id, the Bearer
// check, and rate limits once they exist): a cached response never skips them. A route with its
// own auth hooks cannot be cached at all (checked when routes are registered).
import { createHash } from 'node:crypto';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { addRouteHook, appendVary, inputGuards } from '../http/hooks.ts';
import { isInternal } from '../limits/plugin.ts';
import { sameVersions, type Cache, type Codec } from './cache.ts';

export interface CachedResponse {
  status: number;
  type: string;
  etag: string;
  body: Buffer;
  gzip: Buffer | undefined;
  br: Buffer | undefined;
}

export interface RouteCache {
  /** The key family, e.g. `product_list`: `invalidate(['product_list:*'])` drops them all. */
  keyPrefix: string;
  /** Seconds an entry lives (invalidation usually ends it sooner). */
  ttl: number;
  /** Tags beyond the family, from the request alone (so they are known before the handler runs). */
  tags?: (request: FastifyRequest) => string[];
}

/** The seed's `@cache_response(timeout, key_prefix)`, as route config. */
export function cacheResponse(o: RouteCache): { cache: RouteCache } {
  return { cache: o };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    cache?: RouteCache;
  }
  interface FastifyRequest {
    cacheFill?: CacheFill;
  }
}

interface CacheFill {
  key: string;
  /** Tags known from the request, and their versions read before the route ran. */
  versions: number[] | undefined;
  tags: string[];
  /** Tags the route named as it made the answer (`showsTags`), checked against `since`. */
  late: string[];
  since: number;
  ttl: number;
  done: (e: CachedResponse | undefined) => void;
}

/**
 * Names what the answer being made shows, once the route knows it (the products on a list page,
 * the dimensions its query depends on): the entry is dropped when any of these tags is
 * invalidated. A no-op when the answer is not being cached.
 */
export function showsTags(request: FastifyRequest, tags: readonly string[]): void {
  request.cacheFill?.late.push(...tags);
}

function variants(body: Buffer, threshold: number): Pick<CachedResponse, 'gzip' | 'br'> {
  if (body.length < threshold) return { gzip: undefined, br: undefined };
  return {
    gzip: gzipSync(body, { level: 6 }),
    br: brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 6, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
  };
}

/** Redis holds the status, type, ETag and identity body (the store compresses it); variants are remade on the way in. */
export function responseCodec(compressThreshold: number): Codec<CachedResponse> {
  return {
    encode(r) {
      const header = Buffer.from(JSON.stringify({ s: r.status, t: r.type, e: r.etag }));
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16BE(header.length);
      return Buffer.concat([len, header, r.body]);
    },
    decode(b) {
      const n = b.readUInt16BE(0);
      const h = JSON.parse(b.subarray(2, 2 + n).toString()) as { s: number; t: string; e: string };
      const body = Buffer.from(b.subarray(2 + n));
      return { status: h.s, type: h.t, etag: h.e, body, ...variants(body, compressThreshold) };
    },
    size: (r) => r.body.length + (r.gzip?.length ?? 0) + (r.br?.length ?? 0) + 256,
  };
}

// Sorting a query costs microseconds a hit cannot spare; the same URLs come back again and again.
// Short URLs only, so the memo stays small (10,000 × 512 characters at most).
const normalised = new Map<string, string>();

const paramName = (p: string) => {
  const eq = p.indexOf('=');
  return eq === -1 ? p : p.slice(0, eq);
};

/**
 * The query's parameters in name order, as the client wrote them (never decoded: two different
 * byte strings must never share a key). The sort is stable, so repeated parameters keep their
 * order, which can matter (`ordering=price&ordering=name`).
 */
export function normalUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  let normal = normalised.get(url);
  if (normal === undefined) {
    const parts = url
      .slice(q + 1)
      .split('&')
      .filter(Boolean)
      .sort((a, b) => {
        const x = paramName(a);
        const y = paramName(b);
        return x < y ? -1 : x > y ? 1 : 0;
      });
    normal = parts.length ? `${url.slice(0, q)}?${parts.join('&')}` : url.slice(0, q);
    if (url.length <= 512) {
      if (normalised.size >= 10_000) normalised.clear();
      normalised.set(url, normal);
    }
  }
  return normal;
}

/** Method-free key: origin (links in bodies are absolute), path, and the query sorted by name. */
export function responseKey(request: FastifyRequest, prefix: string): string {
  return `${prefix}:${request.protocol}://${request.host}${normalUrl(request.url)}`;
}

/**
 * If-None-Match as RFC 9110 has it: a list of entity tags compared weakly (`W/` ignored), or `*`.
 * Browsers send back the one tag they hold, which the first comparison settles.
 */
export function notModified(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header === etag) return true;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || (tag.startsWith('W/') ? tag.slice(2) : tag) === etag;
  });
}

// Named and not refused with q=0 (`br;q=0.5` is still accepted).
const ACCEPTS_BR = /\bbr\b(?!\s*;\s*q=0(?:\.0*)?(?![.\d]))/;
const ACCEPTS_GZIP = /\bgzip\b(?!\s*;\s*q=0(?:\.0*)?(?![.\d]))/;

/** The encoding to send, given Accept-Encoding and the variants at hand: brotli, else gzip, else none. */
export function acceptedEncoding(accept: string | undefined, br: boolean, gzip: boolean): 'br' | 'gzip' | undefined {
  if (!accept) return undefined;
  if (br && ACCEPTS_BR.test(accept)) return 'br';
  if (gzip && ACCEPTS_GZIP.test(accept)) return 'gzip';
  return undefined;
}

function encodingFor(request: FastifyRequest, e: CachedResponse): 'br' | 'gzip' | undefined {
  return e.gzip ? acceptedEncoding(request.headers['accept-encoding'], e.br !== undefined, true) : undefined;
}

export interface ResponseCacheOptions {
  maxAge: number;
  compressThreshold: number;
}

export function registerResponseCache(app: FastifyInstance, api: Cache<CachedResponse>, o: ResponseCacheOptions): void {
  const cacheControl = `public, max-age=${o.maxAge}, stale-while-revalidate=${o.maxAge * 2}`;
  // Concurrent misses of one key wait for the first one's answer instead of all running the route,
  // as long as no write happened since that one started.
  const filling = new Map<string, { promise: Promise<CachedResponse | undefined>; versions: number[] | undefined }>();

  // The lookup is a route-level hook, added last: after every app-wide hook (request id, the
  // Bearer check, rate limits) and any of the route's own onRequest hooks. Hooks that run later
  // (preValidation, preHandler) would be skipped by a hit, so a cached route may not have them.
  const isGuardOnly = (route: RouteOptions) => [route.preValidation].flat().every((h) => h && inputGuards.has(h));
  app.addHook('onRoute', (route: RouteOptions) => {
    const cfg = (route.config as { cache?: RouteCache } | undefined)?.cache;
    if (!cfg) return;
    if (route.preHandler || (route.preValidation && !isGuardOnly(route))) {
      throw new Error(`${route.url}: a cached route cannot have preValidation or preHandler hooks (a cache hit would skip them)`);
    }
    addRouteHook(route, 'onRequest', (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => lookupHook(cfg, request, reply, done));
    addRouteHook(route, 'onSend', fillHook, true);
  });

  function headers(reply: FastifyReply, e: CachedResponse, state: 'HIT' | 'MISS'): void {
    reply.header('x-cache', state);
    reply.header('etag', e.etag);
    reply.header('cache-control', cacheControl);
    if (reply.hasHeader('vary')) appendVary(reply, 'Accept-Encoding');
    else reply.header('vary', 'Accept-Encoding');
  }

  function serve(request: FastifyRequest, reply: FastifyReply, e: CachedResponse): FastifyReply {
    headers(reply, e, 'HIT');
    if (notModified(request.headers['if-none-match'], e.etag)) return reply.code(304).send();
    const encoding = encodingFor(request, e);
    reply.code(e.status).type(e.type);
    if (encoding) reply.header('content-encoding', encoding);
    return reply.send(encoding === 'br' ? e.br : encoding === 'gzip' ? e.gzip : e.body);
  }

  // Callback style, so a hit held in memory is answered without a promise or a tick.
  function lookupHook(cfg: RouteCache, request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
    if (request.method !== 'GET' && request.method !== 'HEAD') return done();
    const key = responseKey(request, cfg.keyPrefix);
    const hot = api.peek(key, !isInternal(request));
    if (hot) {
      serve(request, reply, hot);
      return;
    }
    lookup(request, reply, cfg, key).then(
      (served) => {
        if (!served) done();
      },
      (err: unknown) => done(err as Error),
    );
  }

  /** Redis, or the answer another request is already making; else this request will fill the entry. */
  async function lookup(request: FastifyRequest, reply: FastifyReply, cfg: RouteCache, key: string): Promise<boolean> {
    const hit = await api.get(key, !isInternal(request));
    if (hit) {
      serve(request, reply, hit);
      return true;
    }
    const tags = cfg.tags?.(request) ?? [];
    const versions = await api.versionsFor(key, tags);
    const pending = filling.get(key);
    if (pending && versions && pending.versions && sameVersions(pending.versions, versions)) {
      const shared = await pending.promise;
      if (shared) {
        serve(request, reply, shared);
        return true;
      }
      return false;
    }
    let done!: (e: CachedResponse | undefined) => void;
    const mine = { promise: new Promise<CachedResponse | undefined>((resolve) => (done = resolve)), versions };
    filling.set(key, mine);
    let finished = false;
    const finish = (e: CachedResponse | undefined) => {
      if (finished) return;
      finished = true;
      if (filling.get(key) === mine) filling.delete(key);
      done(e);
    };
    // However this request ends (an error, the client gone), nobody is left waiting on it.
    reply.raw.once('close', () => finish(undefined));
    request.cacheFill = { key, tags, late: [], since: api.mark(), ttl: cfg.ttl, versions, done: finish };
    return false;
  }

  // A miss fills the entry as its answer goes out. First among the route's onSend hooks, so the
  // monitoring's timing and X-Cache reading come after it.
  function fillHook(request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void {
    const fill = request.cacheFill;
    if (!fill) return done(null, payload);
    request.cacheFill = undefined;
    fillEntry(request, reply, payload, fill).then(
      (out) => done(null, out),
      (err: unknown) => done(err as Error),
    );
  }


  async function fillEntry(request: FastifyRequest, reply: FastifyReply, payload: unknown, fill: NonNullable<FastifyRequest['cacheFill']>): Promise<unknown> {
    if (reply.statusCode !== 200 || (typeof payload !== 'string' && !Buffer.isBuffer(payload))) {
      fill.done(undefined);
      return payload;
    }
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const entry: CachedResponse = {
      status: 200,
      type: String(reply.getHeader('content-type') ?? 'application/json'),
      etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
      body,
      ...variants(body, o.compressThreshold),
    };
    if (fill.versions) await api.setShowing(fill.key, entry, { ttl: fill.ttl, tags: fill.tags, versions: fill.versions }, fill.late, fill.since);
    fill.done(entry);
    headers(reply, entry, 'MISS');
    if (notModified(request.headers['if-none-match'], entry.etag)) {
      reply.code(304);
      return '';
    }
    const encoding = encodingFor(request, entry);
    if (!encoding) return body;
    reply.header('content-encoding', encoding);
    return encoding === 'br' ? entry.br : entry.gzip;
  }

}
