// The performance middleware (the seed's PerformanceMonitoringMiddleware): every response carries
// X-Response-Time (X-Request-ID is set in hooks.ts); every request is counted in the request
// patterns (which Prometheus's request histogram is also made from); one slower than
// SLOW_REQUEST_MS is logged as a warning with its route, status, duration, SQL statements and
// cache hits and misses.
//
// Per-route work is set up once, when the route is registered (its label, its recorder): reading
// `request.routeOptions` on every request was seen to cost 5% of a cached answer.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { addRouteHook } from '../http/hooks.ts';
import type { RequestStats } from './requests.ts';
import { requestWork, type RequestWork } from './statements.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Request patterns over the last 1, 5 and 60 minutes. */
    requestStats: RequestStats;
  }
  interface FastifyRequest {
    /** SQL statements and cache lookups this request caused (see statements.ts). */
    work: RequestWork | undefined;
  }
}

export interface MonitoringOptions {
  /** False: no per-request work at all (the patterns stay empty); for measuring what it costs. */
  enabled: boolean;
  slowRequestMs: number;
  stats: RequestStats;
}

export function registerMonitoring(app: FastifyInstance, o: MonitoringOptions): void {
  const stats = o.stats;
  app.decorate('requestStats', stats);
  app.decorateRequest('work', undefined);
  if (!o.enabled) return;

  // The tally is entered in onRequest and, for routes that take a body, again in preValidation:
  // a body is read in a stream callback, outside the context entered before it (as
  // @fastify/request-context does).
  app.addHook('onRequest', (request, _reply, done) => {
    const work: RequestWork = { sql: 0, sqlMs: 0, cacheHits: 0, cacheMisses: 0 };
    request.work = work;
    requestWork.run(work, done);
  });
  const reenter = (request: FastifyRequest, _reply: FastifyReply, done: () => void) => (request.work ? requestWork.run(request.work, done) : done());
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('x-response-time', `${reply.elapsedTime.toFixed(1)}ms`);
    done(null, payload);
  });

  const finished = (label: string) => {
    // Also what Prometheus's request histogram is made of, at scrape time (metrics.ts).
    const recorder = stats.route(label);
    return (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      const ms = reply.elapsedTime;
      const status = reply.statusCode;
      recorder.record(status, ms, request.clientIp || request.ip);
      if (ms >= o.slowRequestMs) {
        const w = request.work;
        request.log.warn(
          { route: label, status, duration_ms: Math.round(ms), sql_statements: w?.sql ?? 0, sql_ms: Math.round(w?.sqlMs ?? 0), cache_hits: w?.cacheHits ?? 0, cache_misses: w?.cacheMisses ?? 0 },
          'slow request',
        );
      }
      done();
    };
  };
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = [route.method].flat();
    addRouteHook(route, 'onResponse', finished(`${methods.join(',')} ${route.url}`));
    if (methods.some((m) => m !== 'GET' && m !== 'HEAD')) addRouteHook(route, 'preValidation', reenter);
  });
  // Unknown paths: one label for all of them, so a scanner cannot grow the route table.
  const unrouted = finished('unmatched');
  app.addHook('onResponse', (request, reply, done) => (request.is404 ? unrouted(request, reply, done) : done()));
}
