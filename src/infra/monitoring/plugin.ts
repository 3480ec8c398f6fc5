// The performance middleware (the seed's PerformanceMonitoringMiddleware): every response carries
// X-Response-Time (X-Request-ID is set in hooks.ts); every request is counted in the request
// patterns (which Prometheus's request histogram is also made from); one slower than
// SLOW_REQUEST_MS is logged as a warning with its route, status, duration, SQL statements and
// cache hits and misses. The time is taken when the answer is ready to be written.
//
// Per-route work is set up once, when the route is registered (its label, its recorder): reading
// `request.routeOptions` on every request was seen to cost 5% of a cached answer.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { addRouteHook } from '../http/hooks.ts';
import type { RequestStats } from './requests.ts';
import type { RequestWork } from './tally.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Request patterns over the last 1, 5 and 60 minutes. */
    requestStats: RequestStats;
  }
  interface FastifyRequest {
    /** SQL statements and cache lookups this request caused, when it reached a handler (tally.ts). */
    work: RequestWork | undefined;
  }
}

export interface MonitoringOptions {
  /** False: no per-request work at all (the patterns stay empty); for measuring what it costs. */
  enabled: boolean;
  slowRequestMs: number;
  stats: RequestStats;
}

/** `12.3ms`: tenths by integer arithmetic, a quarter of toFixed's cost (which showed in profiles). */
export function responseTime(ms: number): string {
  const tenths = Math.round(ms * 10);
  return `${Math.trunc(tenths / 10)}.${tenths % 10}ms`;
}

type OnSend = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => void;

/** Returns the hook for the not-found route (its label is `unmatched`), or undefined when disabled. */
export function registerMonitoring(app: FastifyInstance, o: MonitoringOptions): { notFound: OnSend } | undefined {
  const stats = o.stats;
  app.decorate('requestStats', stats);
  app.decorateRequest('work', undefined);
  if (!o.enabled) return undefined;

  // One hook per request, when the answer is ready to go: the time goes into X-Response-Time, the
  // request patterns and, if slow, the log. (Separate onSend and onResponse hooks cost more than
  // the work they do, on a cached answer.)
  const finished = (label: string): OnSend => {
    // Also what Prometheus's request histogram is made of, at scrape time (metrics.ts).
    const recorder = stats.route(label);
    return (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => {
      const ms = reply.elapsedTime;
      reply.header('x-response-time', responseTime(ms));
      const status = reply.statusCode;
      recorder.record(status, ms, request.clientIp || request.ip);
      if (ms >= o.slowRequestMs) {
        // The response cache's own lookup shows in X-Cache; the rest was counted through ctxOf.
        const w = request.work;
        const state = reply.getHeader('x-cache');
        request.log.warn(
          { route: label, status, duration_ms: Math.round(ms), sql_statements: w?.sql ?? 0, sql_ms: Math.round(w?.sqlMs ?? 0), cache_hits: (w?.cacheHits ?? 0) + (state === 'HIT' ? 1 : 0), cache_misses: (w?.cacheMisses ?? 0) + (state === 'MISS' ? 1 : 0) },
          'slow request',
        );
      }
      done(null, payload);
    };
  };
  app.addHook('onRoute', (route: RouteOptions) => addRouteHook(route, 'onSend', finished(`${[route.method].flat().join(',')} ${route.url}`)));
  // Unknown paths: one label for all of them, so a scanner cannot grow the route table.
  return { notFound: finished('unmatched') };
}
