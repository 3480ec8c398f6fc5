// Monitoring (the seed's section 6) at its paths, staff only: system health, caches, database,
// request patterns, and clearing a cache store. The original's `/monitoring/…` paths answer too
// (API-CONTRACT.md §4.18). Public: `/health/ready/` and `/health/detailed/` for load balancers,
// and `/metrics` for Prometheus from the addresses METRICS_ALLOW names.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { pendingMigrations } from '../../db/migrate.ts';
import { AppError } from '../../infra/http/errors.ts';
import { isForwarded } from '../../infra/http/proxy.ts';
import { ErrorBody } from '../../infra/http/schema.ts';
import { IpRanges } from '../../infra/limits/ip.ts';
import { unlimited } from '../../infra/limits/plugin.ts';
import { databaseReport } from '../../infra/monitoring/database.ts';
import { databaseCheck, systemReport } from '../../infra/monitoring/system.ts';
import { currentUser, staffOnly } from '../accounts/auth.ts';

const tags = ['monitoring'];
const security = [{ bearerAuth: [] }];
const refused = { 401: ErrorBody, 403: ErrorBody };
const Anything = Type.Any();
const STORES = ['default', 'api'] as const;

function bothPaths(path: string): string[] {
  return [`/api/utils/monitoring/${path}`, `/monitoring/${path}`];
}

/** `Authorization: Basic` with user `metrics` and METRICS_TOKEN as the password (Prometheus's basic_auth). */
function tokenMatches(given: string | undefined, expected: string): boolean {
  if (!given?.startsWith('Basic ')) return false;
  const a = Buffer.from(Buffer.from(given.slice(6), 'base64').toString('utf8'));
  const b = Buffer.from(`metrics:${expected}`);
  return a.length === b.length && timingSafeEqual(a, b);
}

export const monitoringRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const config = app.config;
  const paths = { data: config.dataDir, media: config.media.s3 ? undefined : config.media.dir };

  for (const url of bothPaths('system/')) {
    app.get(url, {
      schema: { tags, security, summary: 'Health of every part, CPU, memory and event-loop delay (staff); 503 when unhealthy', response: { 200: Anything, 503: Anything, ...refused } },
      onRequest: staffOnly,
      handler: async (_request, reply) => {
        const report = await systemReport(app, paths);
        return reply.code(report.status === 'unhealthy' ? 503 : 200).send(report);
      },
    });
  }

  for (const url of bothPaths('cache/')) {
    app.get(url, {
      schema: { tags, security, summary: 'Per-store hits, misses, hit rate, keys, memory and evictions (staff)', response: { 200: Anything, ...refused } },
      onRequest: staffOnly,
      handler: async () => {
        const stores = await app.caches.stats();
        const out: Record<string, unknown> = {};
        for (const [name, s] of Object.entries(stores)) {
          out[name] = {
            backend: s.backend,
            available: s.available,
            hits: s.hits,
            misses: s.misses,
            hit_rate: Math.round(s.hitRate * 10_000) / 10_000,
            keys: s.keys,
            ...(s.remoteKeys === undefined ? {} : { redis_keys: s.remoteKeys }),
            memory_bytes: s.memoryBytes,
            evictions: s.evictions,
            ...(s.backend === 'redis' ? { redis_raw_bytes: s.rawBytes, redis_stored_bytes: s.storedBytes } : {}),
          };
        }
        return { timestamp: new Date().toISOString(), stores: out };
      },
    });
  }

  for (const url of bothPaths('database/')) {
    app.get(url, {
      schema: { tags, security, summary: 'Pool use, statement counts and times, slow statements, table sizes, pg_stat_statements (staff)', response: { 200: Anything, ...refused } },
      onRequest: staffOnly,
      handler: async () => databaseReport(app),
    });
  }

  for (const url of bothPaths('requests/')) {
    app.get(url, {
      schema: { tags, security, summary: 'Request patterns over 1, 5 and 60 minutes, and a per-5-second series of the last 5 minutes (staff)', response: { 200: Anything, ...refused } },
      onRequest: staffOnly,
      handler: async () => ({
        timestamp: new Date().toISOString(),
        windows: { '1m': app.requestStats.window(1), '5m': app.requestStats.window(5), '60m': app.requestStats.window(60) },
        series: app.requestStats.series(),
      }),
    });
  }

  for (const url of bothPaths('cache/clear/')) {
    app.post(url, {
      schema: {
        tags,
        security,
        summary: 'Empty a cache store, or drop the keys matching a pattern (staff; logged)',
        description: 'The `session` store is not offered: it holds revoked tokens, which must stay revoked.',
        body: Type.Optional(
          Type.Object({
            store: Type.Optional(Type.Union([Type.Literal('default'), Type.Literal('api'), Type.Literal('all')], { default: 'all' })),
            pattern: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\s]+$' })),
          }),
        ),
        response: { 200: Type.Object({ cleared: Type.Array(Type.String()), pattern: Type.Union([Type.String(), Type.Null()]) }), 400: ErrorBody, ...refused },
      },
      onRequest: staffOnly,
      handler: async (request) => {
        const store = request.body?.store ?? 'all';
        const pattern = request.body?.pattern ?? null;
        const names = store === 'all' ? [...STORES] : [store];
        for (const name of names) {
          const cache = app.caches[name];
          if (pattern) await cache.invalidate([pattern]);
          else await cache.clear();
        }
        const user = await currentUser(request);
        request.log.warn({ staff_user: user?.id, staff_email: user?.email, stores: names, pattern }, 'cache cleared by staff');
        return { cleared: names, pattern };
      },
    });
  }

  // Readiness: the database answers and every migration is applied. Cheap enough to poll: once
  // every migration has been seen applied, a poll is one `select 1`. Public, so no error text
  // (a driver's message can name hosts and users): that goes to the log.
  let migrated = false;
  app.get('/health/ready/', {
    config: unlimited,
    schema: { tags, summary: 'Readiness for load balancers: database reachable, migrations applied (503 otherwise)', response: { 200: Anything, 503: Anything } },
    handler: async (request, reply) => {
      const database = await databaseCheck(app);
      if (database.error) request.log.warn({ err: database.error }, 'readiness: database unreachable');
      const pending = database.status !== 'healthy' || migrated ? [] : await pendingMigrations(app.database).catch(() => ['(unknown)']);
      if (database.status === 'healthy' && pending.length === 0) migrated = true;
      const ready = database.status === 'healthy' && pending.length === 0;
      return reply
        .code(ready ? 200 : 503)
        .header('cache-control', 'no-store')
        .send({ status: ready ? 'ready' : 'not_ready', database: database.status, pending_migrations: pending });
    },
  });

  // The contract's detailed health: always 200, each part's status and message.
  // Public, so answered from a report at most 5 s old (each report touches the database, Redis and
  // the disk), and without error texts.
  let detailed: { at: number; report: Promise<Awaited<ReturnType<typeof systemReport>>> } | undefined;
  app.get('/health/detailed/', {
    config: unlimited,
    schema: { tags, summary: 'Each part of the server with a status and message (always 200; at most 5 s old)', response: { 200: Anything } },
    handler: async (_request, reply) => {
      if (!detailed || Date.now() - detailed.at > 5000) detailed = { at: Date.now(), report: systemReport(app, paths) };
      const r = await detailed.report;
      const say = (c: { status: string } | undefined, ok: string) => (!c ? undefined : { status: c.status === 'healthy' ? 'healthy' : c.status === 'degraded' ? 'warning' : 'unhealthy', message: c.status === 'healthy' ? ok : `${c.status}: see the staff system report` });
      const cacheChecks = Object.entries(r.checks).filter(([k]) => k.startsWith('cache_'));
      const cacheOk = cacheChecks.every(([, c]) => c.status === 'healthy');
      const memShare = 1 - r.host.memory_free_bytes / r.host.memory_total_bytes;
      return reply.header('cache-control', 'no-store').send({
        status: r.status === 'healthy' ? 'healthy' : r.status === 'degraded' ? 'warning' : 'unhealthy',
        service: 'Pasargad Prints API',
        version: '1.0.0',
        checks: {
          database: say(r.checks.database, 'Database connection successful'),
          cache: { status: cacheOk ? 'healthy' : 'warning', message: cacheOk ? 'Cache stores answering' : 'A cache store is unreachable; serving from the database' },
          stripe: { status: config.payments.stripeSecretKey ? 'healthy' : 'warning', message: config.payments.stripeSecretKey ? 'Stripe configured' : 'Built-in test payment provider' },
          email: { status: config.email.host ? 'healthy' : 'warning', message: config.email.host ? 'SMTP configured' : 'Emails written to the outbox folder' },
          disk_space: say(r.checks.disk, `${r.checks.disk?.free_percent}% free`),
          memory: { status: memShare > 0.9 ? 'warning' : 'healthy', message: `${Math.round(memShare * 100)}% of host memory in use` },
        },
      });
    },
  });

  // Prometheus. Allowed addresses scrape without a token; METRICS_TOKEN, when set, lets any
  // address in with basic auth `metrics:<token>` (Basic, not Bearer: Bearer is the API's JWT).
  const allowed = new IpRanges(config.monitoring.metricsAllow);
  app.get('/metrics', {
    config: unlimited,
    schema: { hide: true },
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      const token = config.monitoring.metricsToken;
      // A forwarded request from a proxy we do not trust (on this host, its address is loopback)
      // is somebody else's: an allowed address alone does not let it in. From a trusted proxy the
      // client's address has replaced the peer's (TRUSTED_PROXIES, X-Forwarded-For); from any
      // other peer, or named only in X-Real-IP or Forwarded (which Fastify does not read), it has not.
      const forwardedByStranger = isForwarded(request.headers) && request.ip === request.socket.remoteAddress;
      const byAddress = allowed.has(request.clientIp) && !forwardedByStranger;
      if (!byAddress && !(token && tokenMatches(request.headers.authorization, token))) throw new AppError('permission_denied');
      const body = await app.metrics.registry.metrics();
      return reply.header('cache-control', 'no-store').type(app.metrics.registry.contentType).send(body);
    },
  });
};
