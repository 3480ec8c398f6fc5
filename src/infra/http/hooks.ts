// Per-request basics every route shares: request id, security headers (helmet's), the
// trailing-slash redirect (§4.13) and 405 for known paths called with another method.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import helmet from 'helmet';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods, RouteOptions } from 'fastify';
import { dropOriginCors, type Cors } from './cors.ts';
import { AppError, ERRORS, wrappedBody, type ErrorCode } from './errors.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Takes a well-formed X-Request-ID from the caller (so ids follow a request across services). */
export function genRequestId(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

type CspDirectives = Record<string, string[]>;

/**
 * Helmet's headers, worked out once: they never vary by request, and @fastify/helmet builds
 * helmet's middleware anew on every request. Chosen for a JSON API: nothing may run, frame or
 * embed it; the contract's X-Frame-Options DENY, nosniff and Referrer-Policy same-origin. Left
 * out: the headers that only concern HTML documents (DNS prefetch, IE downloads, agent cluster)
 * and, on API answers, the opener policy (documents only), X-XSS-Protection (helmet sends 0 to
 * turn off an auditor no current browser has) and Flash's cross-domain policies: every header
 * costs a cached answer about 1% of its throughput.
 */
export function helmetHeaders(directives: CspDirectives, document = false): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = { setHeader: (name: string, value: string) => (headers[name.toLowerCase()] = String(value)), removeHeader: (name: string) => delete headers[name.toLowerCase()] };
  helmet({
    contentSecurityPolicy: { useDefaults: false, directives },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' },
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    ...(document ? {} : { crossOriginOpenerPolicy: false, xXssProtection: false, xPermittedCrossDomainPolicies: false }),
  })({} as IncomingMessage, res as unknown as ServerResponse, () => {});
  return headers;
}

export const SECURITY_HEADERS = helmetHeaders({ defaultSrc: ["'none'"], frameAncestors: ["'none'"] });

/** For HTML pages (the API docs): they run their own scripts and styles, from here or the CDN. */
export function pageHeaders(cdnUrl: string | undefined): Record<string, string> {
  const cdn = cdnUrl ? [new URL(cdnUrl).origin] : [];
  return helmetHeaders({ defaultSrc: ["'self'", ...cdn], imgSrc: ["'self'", 'data:', ...cdn], styleSrc: ["'self'", "'unsafe-inline'", ...cdn], frameAncestors: ["'none'"] }, true);
}

// Static files are loaded by pages on other origins (the storefront) and through the CDN, and hold
// nothing private: any origin may embed and read them (WhiteNoise's default too).
const STATIC_HEADERS = { 'cross-origin-resource-policy': 'cross-origin', 'access-control-allow-origin': '*' };

/**
 * Node's parser refused the request (a malformed request line or header, headers over its size
 * limit, a request that never finished arriving): no hook runs, and Fastify's default answer had
 * none of the headers every answer carries. This one has the security headers and a request id,
 * and the contract's body shape. No CORS: the Origin header was never parsed (so a browser shows a
 * 431 for an oversized cookie as a network error; nothing on this side can change that).
 */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : 'bad_request';
  const { status, message } = ERRORS[code];
  const body = JSON.stringify(wrappedBody(code, message, status));
  this.log.debug({ err }, 'client error');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${SECURITY_LINES}X-Request-ID: ${randomUUID()}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

const SECURITY_LINES = Object.entries(SECURITY_HEADERS)
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');

/** Appends (or with `first`, prepends) a route-level hook (Fastify takes one function or an array). */
export function addRouteHook(route: RouteOptions, name: 'onRequest' | 'preValidation' | 'onResponse' | 'onSend', hook: (...args: never[]) => unknown, first = false): void {
  const existing = route[name] ? [route[name]].flat() : [];
  route[name] = (first ? [hook, ...existing] : [...existing, hook]) as never;
}

// Routes are registered with their trailing slash and matched with or without it; a GET without
// it is redirected so caches and clients converge on one URL, other methods are served as they
// are (a redirect would lose their body). Only slashed routes carry this hook.
function slashRedirect(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  const method = request.method;
  if (method === 'GET' || method === 'HEAD') {
    const url = request.url;
    const q = url.indexOf('?');
    const end = q === -1 ? url.length : q;
    if (url.charCodeAt(end - 1) !== 47) {
      reply.redirect(`${url.slice(0, end)}/${url.slice(end)}`, 301);
      return;
    }
  }
  done();
}

function headersHook(headers: Record<string, string>) {
  return (_request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    reply.headers(headers);
    done();
  };
}

/**
 * The first onRequest hook of all, so every answer that passes a hook carries what it sets: the
 * security headers, the request id and CORS (a hook after it that fails still answers with them;
 * Fastify's own errors, which run no hook, set them in app.ts). It also answers preflights, before
 * the IP guard, the Bearer check and the limits.
 */
export function registerHttpHooks(app: FastifyInstance, cors: Cors): void {
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('x-request-id', request.id);
    cors.headers(request, reply);
    if (!cors.preflight(request, reply)) done();
  });
  const docsHeaders = headersHook(pageHeaders(app.config.cdnUrl));
  const staticHeaders = headersHook(STATIC_HEADERS);
  app.addHook('onRoute', (route: RouteOptions) => {
    // Before the static headers, which set the `*` it must not remove.
    if ((route.config as { cors?: false } | undefined)?.cors === false) addRouteHook(route, 'onRequest', dropOriginCors);
    if (route.url.startsWith('/api/docs')) addRouteHook(route, 'onRequest', docsHeaders);
    if (route.url.startsWith('/static/')) addRouteHook(route, 'onRequest', staticHeaders);
    if (route.url.endsWith('/') && [route.method].flat().some((m) => m === 'GET' || m === 'HEAD')) addRouteHook(route, 'onRequest', slashRedirect);
  });
}

// AJV's coercion accepts what JavaScript's Number() does: "Infinity", "0x10", " 7 ". Numbers in
// a URL must be plain decimal text; anything else is left as a non-number so validation rejects
// it with the usual field error (or 404 for a path id).
const DECIMAL = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?$/;
const INTEGER = /^-?\d+$/;

type Props = Record<string, { type?: string | string[]; items?: { type?: string } }> | undefined;

function sanitise(values: Record<string, unknown>, props: Props, dropEmpty: boolean): void {
  for (const key of Object.keys(values)) {
    const v = values[key];
    // django-filter treats `?min_price=` as not given.
    if (dropEmpty && v === '') {
      delete values[key];
      continue;
    }
    const prop = props?.[key];
    const type = prop?.type ?? prop?.items?.type;
    if (type !== 'number' && type !== 'integer') continue;
    const ok = type === 'integer' ? INTEGER : DECIMAL;
    // AJV would also take true as 1 and null as 0; DRF refuses both.
    const fix = (x: unknown) => ((typeof x === 'string' && !ok.test(x)) || typeof x === 'boolean' || x === null ? 'not-a-number' : x);
    values[key] = Array.isArray(v) ? v.map(fix) : fix(v);
  }
}

/** The input guards, which a cache hit may skip: it answers a request already validated once. */
export const inputGuards = new WeakSet<object>();

export function registerInputGuards(app: FastifyInstance): void {
  // Attached per route, with the route's schema in hand (no lookup per request).
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as { querystring?: { properties?: Props }; params?: { properties?: Props }; body?: { properties?: Props } } | undefined;
    if (!schema?.querystring && !schema?.params && !schema?.body) return;
    const guard = (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      const body = request.body;
      if (schema.body && body && typeof body === 'object' && !Array.isArray(body)) sanitise(body as Record<string, unknown>, schema.body.properties, false);
      if (schema.querystring && request.query && typeof request.query === 'object') sanitise(request.query as Record<string, unknown>, schema.querystring.properties, true);
      if (schema.params && request.params && typeof request.params === 'object') sanitise(request.params as Record<string, unknown>, schema.params.properties, false);
      done();
    };
    inputGuards.add(guard);
    addRouteHook(route, 'preValidation', guard);
  });
}

const METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Collects the API's routes as they are registered; `seal()`, called after every module is in,
 * answers the methods a path lacks with 405 and an Allow header, as DRF does.
 */
export function methodNotAllowed(app: FastifyInstance): { seal(): void } {
  const routes = new Map<string, Set<string>>();
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.config && (route.config as { methodNotAllowed?: boolean }).methodNotAllowed) return;
    if (!route.url.endsWith('/') || route.url.startsWith('/api/docs')) return;
    const methods = routes.get(route.url) ?? new Set<string>();
    for (const m of [route.method].flat()) methods.add(m);
    routes.set(route.url, methods);
  });
  return {
    seal() {
      for (const [url, methods] of routes) {
        const missing = METHODS.filter((m) => !methods.has(m));
        if (missing.length === 0) continue;
        const allow = [...methods, 'OPTIONS'].join(', ');
        app.route({
          method: missing,
          url,
          config: { methodNotAllowed: true },
          schema: { hide: true },
          handler: async (request) => {
            throw new AppError('method_not_allowed', { message: `Method "${request.method}" not allowed.`, headers: { allow } });
          },
        });
      }
    },
  };
}

/** Adds names to the Vary header, keeping those already there (CORS adds Origin). */
// The same few Vary values meet on every request (CORS's Origin, then Accept-Encoding on a cached
// answer): the merged value is remembered rather than parsed again.
const varyMerged = new Map<string, string>();

export function appendVary(reply: FastifyReply, ...names: string[]): void {
  const current = String(reply.getHeader('vary') ?? '');
  const key = `${current}\n${names.join(',')}`;
  let merged = varyMerged.get(key);
  if (merged === undefined) {
    const have = new Set(current.split(',').map((v) => v.trim().toLowerCase()).filter(Boolean));
    const added = names.filter((n) => !have.has(n.toLowerCase()));
    merged = added.length ? [current, ...added].filter(Boolean).join(', ') : current;
    if (varyMerged.size < 100) varyMerged.set(key, merged);
  }
  if (merged !== current) reply.header('vary', merged);
}

/** A response with one person's data: no shared cache may keep it, and it depends on who asks. */
export function markPrivate(reply: FastifyReply): void {
  reply.header('cache-control', 'private, no-store');
  appendVary(reply, 'Authorization', 'Cookie');
}

/** For a plugin whose every route answers with one person's data (profile, cart, wishlist). */
export function privateResponses(app: FastifyInstance): void {
  app.addHook('onRequest', (_request, reply, done) => {
    markPrivate(reply);
    done();
  });
}
