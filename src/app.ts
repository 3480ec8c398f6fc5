// buildApp(config): composes plugins and routes into a Fastify instance. It never listens;
// server.ts does that, tests use app.inject().
import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Config } from './config.ts';
import { openDatabase, readPrimaryAfterChanges, type Database } from './db/database.ts';
import { wireInvalidation } from './infra/cache/invalidation.ts';
import { wireCatalogInvalidation } from './modules/catalog/catalog.events.ts';
import { registerResponseCache } from './infra/cache/response-cache.ts';
import { openCaches, openSessionStore, type Caches } from './infra/cache/stores.ts';
import type { KeyValueStore } from './infra/cache/store.ts';
import { EventBus } from './infra/events.ts';
import { cors } from './infra/http/cors.ts';
import { ERRORS, registerErrorHandlers, registerNotFound, wrappedBody } from './infra/http/errors.ts';
import { clientErrorHandler, genRequestId, methodNotAllowed, registerHttpHooks, registerInputGuards, SECURITY_HEADERS } from './infra/http/hooks.ts';
import { docsRoutes } from './infra/http/docs.routes.ts';
import { dashboardRoutes } from './modules/monitoring/dashboard.routes.ts';
import { rootRoutes } from './infra/http/root.routes.ts';
import { registerStatic } from './infra/http/static.ts';
import { openLimits } from './infra/limits/open.ts';
import type { Limits } from './infra/limits/limits.ts';
import { registerIpGuard, registerRateLimits, unlimited } from './infra/limits/plugin.ts';
import { limitRoutes } from './modules/limits/limits.routes.ts';
import { registerAuth } from './modules/accounts/auth.ts';
import { GuestSessions } from './modules/accounts/session.ts';
import { TokenService } from './modules/accounts/tokens.ts';
import { accountRoutes } from './modules/accounts/accounts.routes.ts';
import { cartRoutes } from './modules/cart/cart.routes.ts';
import { wishlistRoutes } from './modules/wishlist/wishlist.routes.ts';
import { catalogRoutes } from './modules/catalog/catalog.routes.ts';
import { reviewRoutes } from './modules/reviews/reviews.routes.ts';
import { searchRoutes } from './modules/search/search.routes.ts';
import { promotionRoutes } from './modules/promotions/promotions.routes.ts';
import { orderRoutes } from './modules/orders/orders.routes.ts';
import { paymentRoutes } from './modules/payments/payments.routes.ts';
import { paymentProvider, type StripeOptions } from './modules/payments/providers.ts';
import type { JobQueue } from './infra/jobs/queue.ts';
import { openQueue, wireJobEvents } from './infra/jobs/runtime.ts';
import { recommendationRoutes } from './modules/recommendations/recommendations.routes.ts';
import { openStorage, type MediaStorage } from './infra/media/storage.ts';
import { mediaRoutes } from './modules/media/media.routes.ts';
import { Metrics } from './infra/monitoring/metrics.ts';
import { registerMonitoring, responseTime } from './infra/monitoring/plugin.ts';
import { RequestStats } from './infra/monitoring/requests.ts';
import { StatementStats, withStatements } from './infra/monitoring/statements.ts';
import { monitoringRoutes } from './modules/monitoring/monitoring.routes.ts';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    database: Database;
    events: EventBus;
    caches: Caches;
    /** Rate limits and IP blocks; undefined when RATE_LIMIT_ENABLED is false. */
    limits: Limits | undefined;
    /** Background jobs: enqueue here; workers run them (runtime.ts). */
    jobs: JobQueue;
    /** Uploaded media: MEDIA_DIR, or S3 with USE_S3. */
    media: MediaStorage;
    /** Prometheus metrics (GET /metrics). */
    metrics: Metrics;
  }
}

export interface AppDeps {
  /** An open database to use instead of opening one from config (tests share one per file). */
  database?: Database;
  /** A `session` store to use instead of the configured one (tests give Redis a key prefix). */
  sessionStore?: KeyValueStore;
  /** Prepended to the Redis keys and channels of the caches and limits (tests share one Redis). */
  cacheKeyPrefix?: string;
  /** A job queue to use instead of the configured one (tests give BullMQ a key prefix). */
  jobs?: JobQueue;
  /** Media storage to use instead of the configured one (tests run S3 on loopback). */
  media?: MediaStorage;
  /** Where log lines go instead of stdout (tests read them). */
  logStream?: { write(line: string): void };
  /** Where the Stripe API is, when not api.stripe.com (tests run a local one). */
  stripeApi?: Pick<StripeOptions, 'host' | 'port' | 'protocol'>;
}

// The storefront's preflight expectations (API-CONTRACT.md §1.4).
const CORS_HEADERS = ['accept', 'accept-encoding', 'authorization', 'content-type', 'dnt', 'origin', 'user-agent', 'x-csrftoken', 'x-requested-with', 'idempotency-key', 'x-request-id'];

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const corsPolicy = cors({ origins: config.corsOrigins, allowedHeaders: CORS_HEADERS, methods: ['DELETE', 'GET', 'OPTIONS', 'PATCH', 'POST', 'PUT'], maxAge: 86_400 });
  const app = Fastify({
    logger: { level: config.logLevel, ...(deps.logStream ? { stream: deps.logStream } : {}), redact: ['req.headers.authorization', 'req.headers.cookie', '*.headers.authorization', '*.headers.cookie'] },
    genReqId: genRequestId,
    // One line per request costs ~10% throughput; errors and slow requests are logged instead.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    // X-Forwarded-* are believed only from configured proxies.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: 1_048_576,
    // A malformed URL (bad percent-encoding) names no resource: the contract's 404, not Fastify's body.
    frameworkErrors: (err, request, res) => {
      const reply = res as FastifyReply;
      // No hook runs for these: the headers every response carries are set here.
      reply.headers(SECURITY_HEADERS).header('x-request-id', request.id).header('x-response-time', responseTime(reply.elapsedTime));
      corsPolicy.headers(request, reply);
      if (err.code === 'FST_ERR_BAD_URL') return reply.code(404).type('application/json').send(wrappedBody('not_found', ERRORS.not_found.message, 404));
      return reply.code(400).type('application/json').send(wrappedBody('bad_request', ERRORS.bad_request.message, 400));
    },
    clientErrorHandler,
    ajv: { customOptions: { allErrors: true, verbose: true, keywords: ['x-message'], allowUnionTypes: true, coerceTypes: 'array', removeAdditional: true, useDefaults: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const shared = deps.database ?? (await openDatabase(config));
  // Statements are timed into this app's own records (slow statements, the SQL histogram below),
  // apart from those of any other app built on the same database.
  const database = withStatements(shared, new StatementStats(config.monitoring.slowQueryMs));
  app.decorate('config', config);
  app.decorate('database', database);
  if (!deps.database) app.addHook('onClose', async () => shared.close());

  if (!config.secretKey) throw new Error('SECRET_KEY is required to sign tokens');
  const sessionStore = deps.sessionStore ?? openSessionStore(config, database);
  if (!deps.sessionStore) app.addHook('onClose', async () => sessionStore.close());
  const events = new EventBus(app.log);
  const caches = openCaches(config, { log: app.log, keyPrefix: deps.cacheKeyPrefix });
  app.addHook('onClose', async () => caches.close());
  wireInvalidation(events, caches);
  wireCatalogInvalidation(events, caches);
  // Catalog reads go to the replicas, except for a moment after any catalog change (this
  // instance's or another's). Every role (serve, worker, scheduler, cache warm) builds the app.
  const stopPrimaryReads = readPrimaryAfterChanges(database, caches.api);
  app.addHook('onClose', async () => stopPrimaryReads());
  app.decorate('events', events);
  app.decorate('caches', caches);
  app.decorate('sessions', new GuestSessions(sessionStore, config.auth.sessionTtl));

  const limits = config.limits.enabled ? openLimits(config, { log: app.log, keyPrefix: deps.cacheKeyPrefix }) : undefined;
  if (limits) app.addHook('onClose', async () => limits.close());
  app.decorate('limits', limits);
  const jobs = deps.jobs ?? openQueue(config, database, { log: app.log, prefix: deps.cacheKeyPrefix });
  if (!deps.jobs) app.addHook('onClose', async () => jobs.close());
  wireJobEvents(events, jobs, app.log);
  app.decorate('jobs', jobs);
  const storage = deps.media ?? openStorage(config.media);
  if (!deps.media) app.addHook('onClose', async () => storage.close());
  app.decorate('media', storage);
  app.decorate('payments', { provider: paymentProvider(config.payments, deps.stripeApi), payments: config.payments, pricing: config.pricing });

  // The request's context for services, made on first use (ctxOf).
  app.decorateRequest('ctx', undefined);
  registerErrorHandlers(app);
  registerHttpHooks(app, corsPolicy);
  // Timing, request patterns and the per-request tally of SQL and cache work: first, so it sees
  // everything after it.
  const requestStats = new RequestStats();
  const metrics = new Metrics(app, requestStats);
  app.decorate('metrics', metrics);
  database.statements.onStatement = metrics.statementObserver();
  const monitoring = registerMonitoring(app, { enabled: config.monitoring.requests, slowRequestMs: config.monitoring.slowRequestMs, stats: requestStats });
  // Request path (DESIGN.md): client IP and block check, the Bearer check, rate limits, then
  // the response cache (a route-level hook, so after all of these).
  registerIpGuard(app, limits, config.limits.allowlist);
  registerInputGuards(app);
  const routeTable = methodNotAllowed(app);
  // The contract accepts form-encoded bodies as well as JSON (§1.2); schemas coerce their strings.
  await app.register(formbody);
  // Uploads only (media.routes.ts reads the parts itself, with its own limits).
  await app.register(multipart);
  registerAuth(app, new TokenService({ secret: config.secretKey, accessTtl: config.auth.accessTokenTtl, refreshTtl: config.auth.refreshTokenTtl, store: sessionStore }));
  const limited = limits && registerRateLimits(app, limits, { refused: (limit) => metrics.rateLimited.inc({ limit }), blocked: () => metrics.ipBlocks.inc() });
  // After the Bearer check and the rate limits: a cached answer never skips them.
  if (config.cache.enabled) registerResponseCache(app, caches.api, { maxAge: config.cache.maxAge, compressThreshold: config.cache.compressThreshold });

  // Preflights are answered by the first hook (hooks.ts); this route only lets OPTIONS reach it.
  app.options('*', { config: unlimited, schema: { hide: true } }, (_request, reply) => reply.callNotFound());
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Pasargad Prints API', version: '1.0.0', description: 'Shop backend for 3D prints. Paths, bodies and shapes follow the storefront contract.' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  // /static/* and app.staticUrl(), then the pages that use it.
  await registerStatic(app);
  await app.register(docsRoutes);
  await app.register(dashboardRoutes);

  await app.register(rootRoutes);
  await app.register(catalogRoutes);
  await app.register(searchRoutes);
  await app.register(reviewRoutes);
  await app.register(accountRoutes);
  await app.register(cartRoutes);
  await app.register(wishlistRoutes);
  await app.register(promotionRoutes);
  await app.register(orderRoutes);
  await app.register(paymentRoutes);
  await app.register(recommendationRoutes);
  await app.register(mediaRoutes);
  await app.register(monitoringRoutes);
  await app.register(limitRoutes);
  routeTable.seal();
  // Unknown paths are limited and counted too, by hooks on the not-found route alone.
  registerNotFound(app, { onRequest: limited ? [limited.notFound] : [], onSend: monitoring ? [monitoring.notFound] : [] });
  return app;
}
