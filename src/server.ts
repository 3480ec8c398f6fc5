// The `serve` role: open and prepare the database, build the app, listen, and shut down
// gracefully (in-flight requests finish, then connections close) on SIGTERM/SIGINT.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.ts';
import type { Config } from './config.ts';
import { openDatabase } from './db/database.ts';
import { migrate, pendingMigrations } from './db/migrate.ts';
import { addDemoImages, seedCatalog } from './db/seed.ts';
import { CacheWarmer } from './infra/cache/warming.ts';
import { runJobs, type RunningJobs } from './infra/jobs/runtime.ts';
import { createStaff } from './modules/accounts/accounts.service.ts';
import { mediaDeps } from './modules/media/media.service.ts';

/** Embedded mode keeps a generated signing key in DATA_DIR so tokens survive restarts. */
export function withEmbeddedSecret(config: Config): Config {
  if (config.secretKey || config.database.url) return config;
  const file = join(config.dataDir, 'secret_key');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(file, randomBytes(48).toString('base64url'), { mode: 0o600 });
  }
  return Object.freeze({ ...config, secretKey: readFileSync(file, 'utf8').trim() });
}

export async function startServer(baseConfig: Config): Promise<FastifyInstance> {
  const config = withEmbeddedSecret(baseConfig);
  const database = await openDatabase(config);
  const embedded = database.kind === 'pglite';
  const app = await buildApp(config, { database });
  app.addHook('onClose', async () => database.close());
  const log = app.log;

  let seeded = false;
  if (embedded) {
    const applied = await migrate(database);
    if (applied.length) log.info({ applied }, 'migrations applied');
    const { n } = await database.db.selectFrom('products').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    if (Number(n) === 0 && config.demoProducts > 0) {
      log.info({ products: config.demoProducts }, 'empty catalog: seeding the demo catalog');
      // Products now; their pictures (made here, stored like uploads) once the server answers.
      const result = await seedCatalog(database, {
        products: config.demoProducts,
        imagesLater: true,
        onProgress: (done, total) => log.info({ done, total }, 'seeding demo catalog'),
      });
      log.info(result, 'demo catalog seeded');
      seeded = true;
    }
  } else {
    const pending = await pendingMigrations(database);
    if (pending.length) {
      await app.close();
      throw new Error(`the database has pending migrations (${pending.join(', ')}): run \`pasargad migrate\` first`);
    }
  }

  if (config.staff) {
    const { created, user } = await createStaff(database, config.staff.email, config.staff.password);
    log.info({ user_id: user.id, email: user.email }, created ? 'staff account created from STAFF_EMAIL' : 'STAFF_EMAIL account exists; left unchanged');
  }

  const warmer = config.cache.enabled ? new CacheWarmer(app, config) : undefined;
  if (warmer) app.addHook('preClose', async () => warmer.stop());
  // Jobs in the database run inside the server (embedded mode); BullMQ jobs only with JOBS_IN_PROCESS.
  let jobs: RunningJobs | undefined;
  app.addHook('preClose', async () => jobs?.stop());
  const stopImages = new AbortController();
  let demoImages: Promise<void> | undefined;
  app.addHook('preClose', async () => {
    stopImages.abort();
    await demoImages;
  });
  await app.listen({ port: config.port, host: config.host });
  warmer?.start();
  if (app.jobs.kind === 'database' || config.jobs.inProcess) {
    jobs = await runJobs(app, { scheduler: true });
    log.info({ queue: app.jobs.kind }, 'jobs: workers and scheduler running in this process');
  }
  if (seeded) {
    // Products show no image until theirs is stored, never a missing one; AVIF follows in jobs.
    demoImages = addDemoImages(database, { ...mediaDeps(app), events: app.events }, {
      signal: stopImages.signal,
      onImages: (done, total) => (done === total || done % 20 === 0 ? log.info({ done, total }, 'making demo images') : undefined),
    }).then(
      (r) => log.info(r, 'demo images added'),
      (err: unknown) => log.error({ err }, 'demo images failed: the demo products stay without images'),
    );
  }
  // A parent that spawned us with an IPC channel (the benchmark) may ask for the SQL counters,
  // the cache and queue counts, CPU time and memory (maxRSS is the process's peak, in KiB).
  if (process.send) {
    process.on('message', (msg: { type?: string }) => {
      if (msg?.type !== 'stats') return;
      void Promise.all([app.caches.stats(), app.jobs.stats().catch(() => [])]).then(([caches, queues]) =>
        process.send!({
          type: 'stats',
          jobs: queues,
          statements: database.stats.statements,
          byTarget: database.stats.byTarget,
          caches,
          cpu: process.cpuUsage(),
          memory: { rss: process.memoryUsage.rss(), peakRss: process.resourceUsage().maxRSS * 1024 },
        }),
      );
    });
  }
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      log.error('shutdown timed out; exiting');
      process.exit(1);
    }, 15_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return app;
}
