// CORS for the storefront (API-CONTRACT.md §1.4): the origins in CORS_ORIGINS get their origin
// echoed with credentials, on every answer. A browser shows an answer without
// Access-Control-Allow-Origin to the page as a network error, whatever its status, so a 401 the
// storefront should refresh on, a 429 or a 403 from the IP block must carry it as much as a 200.
//
// Hence not @fastify/cors: its hook ran wherever it was registered, after any hook registered
// before it, and a hook that failed (the Bearer check, the IP guard) skipped it. Here the headers
// are set by the first onRequest hook of all (hooks.ts) and by the handler of Fastify's own errors
// (app.ts), the two places every answer starts from; the error handler keeps them. Per origin the
// headers are worked out once; a request pays one Map lookup.
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface CorsOptions {
  origins: readonly string[];
  allowedHeaders: readonly string[];
  methods: readonly string[];
  maxAge: number;
}

export interface Cors {
  /** Sets Vary: Origin, and the allowed origin's headers. */
  headers(request: FastifyRequest, reply: FastifyReply): void;
  /** Answers an OPTIONS request (a preflight) and returns true; false for any other method. */
  preflight(request: FastifyRequest, reply: FastifyReply): boolean;
}

export function cors(o: CorsOptions): Cors {
  const granted = new Map(o.origins.map((origin) => [origin, { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true' }]));
  const preflightHeaders = {
    'access-control-allow-methods': o.methods.join(', '),
    'access-control-allow-headers': o.allowedHeaders.join(', '),
    'access-control-max-age': String(o.maxAge),
  };
  return {
    headers(request, reply) {
      // Every answer varies by Origin, also one to no origin or another: a shared cache must not
      // hand it to the storefront (or the storefront's to anyone else).
      reply.header('vary', 'Origin');
      const origin = request.headers.origin;
      if (origin === undefined) return;
      const h = granted.get(origin);
      if (h) reply.headers(h);
    },
    preflight(request, reply) {
      if (request.method !== 'OPTIONS') return false;
      // As before (@fastify/cors's strict preflight): an OPTIONS without the two headers of a
      // preflight is not one.
      if (request.headers.origin === undefined || request.headers['access-control-request-method'] === undefined) {
        reply.code(400).type('text/plain').send('Invalid Preflight Request');
        return true;
      }
      // Answered before the IP guard, the Bearer check and the limits (a browser sends no
      // credentials with it); an origin not allowed gets an empty 200 and no grant, as Django's.
      if (granted.has(request.headers.origin)) reply.headers(preflightHeaders);
      reply.code(200).header('content-length', '0').send();
      return true;
    },
  };
}

/**
 * For routes whose files any page may read (static files, media: `config: { cors: false }`): they
 * set `Access-Control-Allow-Origin: *` themselves, and answer every origin alike.
 */
export function dropOriginCors(_request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  reply.removeHeader('access-control-allow-credentials');
  reply.removeHeader('access-control-allow-origin');
  if (reply.getHeader('vary') === 'Origin') reply.removeHeader('vary');
  done();
}
