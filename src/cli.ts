#!/usr/bin/env node
// The `pasargad` command: serve | worker | scheduler | jobs | migrate | seed --products N | cache | users | config.
import { parseArgs } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { pino } from 'pino';
import { ConfigError, configTable, loadConfig, redact, type Config } from './config.ts';
import { openDatabase } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { seedCatalog } from './db/seed.ts';
import { createStaff } from './modules/accounts/accounts.service.ts';
import { buildApp } from './app.ts';
import { openCaches, openSessionStore } from './infra/cache/stores.ts';
import { CacheWarmer } from './infra/cache/warming.ts';
import { startServer, withEmbeddedSecret } from './server.ts';
import { openQueue, runJobs, schedulesOf } from './infra/jobs/runtime.ts';
import { openStorage } from './infra/media/storage.ts';
import { isQueue, QUEUES, TASK_QUEUE, type QueueName, type TaskName } from './infra/jobs/tasks.ts';

const USAGE = `Usage: pasargad <command> [options]

Commands:
  serve                          Start the HTTP API (embedded mode also migrates and seeds a demo catalog)
  migrate                        Apply pending database migrations
  seed --products N [--seed S]   Add N generated products (with images made locally, reviews, reviewers)
  cache warm                     Fill the Redis caches with the hot catalog answers
  cache clear [--store api|default|session|all] [--pattern P]
                                 Empty a store (default: api), or drop the keys matching P
  users create-staff --email E --password P
                                 Create a staff account (an existing email is left unchanged)
  worker [-Q products,orders] [--concurrency N]
                                 Run jobs from these queues (default: all) until SIGTERM
  scheduler                      Enqueue the scheduled tasks on their schedules until SIGTERM
  jobs list                      The scheduled tasks and the queues' counts
  jobs run NAME                  Enqueue a task now (e.g. check_low_stock)
  config --markdown              Print the table of environment variables

Environment: see README.md (DATABASE_URL unset = embedded PGlite under DATA_DIR).`;

function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Waits for the Redis cache stores, or fails after 5 s instead of hanging. */
async function redisReady(ready: Promise<void>[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('Redis did not answer within 5 s')), 5_000)));
  try {
    await Promise.race([Promise.all(ready), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The embedded database belongs to the server process: a second process must not open it. */
function embeddedRefused(cfg: Config, what: string): void {
  if (cfg.database.url) return;
  process.stderr.write(`${what}: in embedded mode the jobs run inside \`pasargad serve\` (one process owns the embedded database); set DATABASE_URL to run workers on their own\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      await startServer(config());
      return;
    case 'migrate': {
      const cfg = config();
      const database = await openDatabase(cfg);
      try {
        const applied = await migrate(database);
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'nothing to apply\n');
      } finally {
        await database.close();
      }
      return;
    }
    case 'seed': {
      const { values } = parseArgs({ args: rest, options: { products: { type: 'string', default: '1000' }, seed: { type: 'string', default: '42' } } });
      const products = Number(values.products);
      if (!Number.isInteger(products) || products < 1) throw new Error('--products must be a whole number of at least 1');
      const cfg = config();
      const database = await openDatabase(cfg);
      // Structured logs on stderr (stdout carries the result line); the bar only on a terminal.
      const log = pino({ level: cfg.logLevel }, pino.destination(2));
      const storage = openStorage(cfg.media);
      // AVIF variants of the pictures are jobs: a worker (or `serve`, embedded) makes them.
      const jobs = openQueue(cfg, database, { log });
      const bar = new SingleBar({ format: 'seeding |{bar}| {value}/{total} {what} | {eta_formatted} left', stream: process.stderr }, Presets.shades_classic);
      try {
        await migrate(database);
        const started = Date.now();
        // A bar for terminals; plain lines every 10% for logs and CI.
        const shown = { images: 0, products: 0 };
        let phase: 'images' | 'products' | undefined;
        const progress = (what: 'images' | 'products') => (done: number, total: number) => {
          const label = what === 'images' ? 'demo images' : 'products';
          if (process.stderr.isTTY) {
            if (phase !== what) {
              phase = what;
              bar.start(total, done, { what: label });
            } else bar.update(done);
            return;
          }
          if (done === total || done - shown[what] >= total / 10) {
            shown[what] = done;
            process.stderr.write(`seeding: ${done}/${total} ${label}, ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
          }
        };
        const result = await seedCatalog(database, {
          products,
          seed: Number(values.seed),
          media: { storage, jobs, log, widths: cfg.media.widths, maxPixels: cfg.media.maxPixels },
          onImages: progress('images'),
          onProgress: progress('products'),
        });
        bar.stop();
        const where = cfg.database.url ? redact(cfg.database.url) : cfg.dataDir;
        process.stdout.write(`seeded ${where}: ${JSON.stringify(result)} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      } finally {
        bar.stop();
        storage.close();
        await jobs.close();
        await database.close();
      }
      return;
    }
    case 'cache': {
      const [sub, ...args] = rest;
      const cfg = config();
      if (sub === 'warm') {
        if (!cfg.redis.api) {
          process.stdout.write('embedded mode: the caches live inside the server, which warms them at start-up and on the warm_cache schedule (SCHEDULE_WARM_CACHE)\n');
          return;
        }
        const app = await buildApp(withEmbeddedSecret(cfg));
        try {
          await redisReady([app.caches.api.ready(), app.caches.default.ready()]);
          const r = await new CacheWarmer(app, cfg).warm();
          process.stdout.write(`warmed ${r.requests} answers in ${r.ms} ms\n`);
        } finally {
          await app.close();
        }
        return;
      }
      if (sub !== 'clear') throw new Error(`unknown cache command: ${sub ?? '(none)'}; try \`cache warm\` or \`cache clear\``);
      const { values } = parseArgs({ args, options: { store: { type: 'string', default: 'api' }, pattern: { type: 'string' } } });
      const store = values.store!;
      if (!['api', 'default', 'session', 'all'].includes(store)) throw new Error('--store must be api, default, session or all');
      // `all` is the two caches. The session store is no cache: besides guest sessions it holds the
      // records of ended sign-in sessions, strict mode's reuse marks and reset links, and emptying it
      // would bring logged-out sessions back to life until their tokens expire.
      const names = store === 'all' ? ['default', 'api'] : [store];
      if (!cfg.redis.api && names.some((n) => n !== 'session')) {
        throw new Error('embedded mode: the default and api caches live inside the server process; restart it to empty them');
      }
      const database = await openDatabase(cfg);
      const caches = openCaches(cfg);
      const sessions = openSessionStore(cfg, database);
      try {
        if (names.some((n) => n !== 'session')) await redisReady([caches.api.ready(), caches.default.ready()]);
        for (const name of names) {
          if (name === 'session') {
            // Without a pattern, guest sessions only (`session:`), for the reason above.
            const n = await sessions.clear(values.pattern?.replace(/\*$/, '') ?? 'session:');
            process.stdout.write(`session: removed ${n} ${values.pattern ? 'entries' : 'guest sessions (sign-in session records kept)'}\n`);
            continue;
          }
          const cache = name === 'api' ? caches.api : caches.default;
          if (values.pattern) await cache.invalidate([values.pattern]);
          else await cache.clear();
          process.stdout.write(`${name}: ${values.pattern ? `dropped ${values.pattern}` : 'emptied'}\n`);
        }
      } finally {
        await Promise.all([caches.close(), sessions.close(), database.close()]);
      }
      return;
    }
    case 'users': {
      const [sub, ...args] = rest;
      if (sub !== 'create-staff') throw new Error(`unknown users command: ${sub ?? '(none)'}; try \`users create-staff --email E --password P\``);
      const { values } = parseArgs({ args, options: { email: { type: 'string' }, password: { type: 'string' } } });
      if (!values.email || !values.password) throw new Error('users create-staff needs --email and --password');
      const cfg = config();
      const database = await openDatabase(cfg);
      try {
        await migrate(database);
        const { created, user } = await createStaff(database, values.email, values.password);
        process.stdout.write(created ? `created staff account ${user.email} (id ${user.id})\n` : `${user.email} already has an account (id ${user.id}); left unchanged\n`);
      } finally {
        await database.close();
      }
      return;
    }
    case 'worker':
    case 'scheduler': {
      const { values } = parseArgs({ args: rest, options: { queues: { type: 'string', short: 'Q' }, concurrency: { type: 'string' } } });
      const queues = values.queues ? values.queues.split(',').map((q) => q.trim()) : [...QUEUES];
      const bad = queues.filter((q) => !isQueue(q));
      if (bad.length) throw new Error(`unknown queue ${bad.join(', ')}; queues are ${QUEUES.join(', ')}`);
      const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
      if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) throw new Error('--concurrency must be a whole number of at least 1');
      const cfg = withEmbeddedSecret(config());
      embeddedRefused(cfg, command);
      const app = await buildApp(cfg);
      const running = await runJobs(app, command === 'worker' ? { queues: queues as QueueName[], concurrency } : { workers: false, scheduler: true });
      app.log.info({ role: command, queue: app.jobs.kind, queues: command === 'worker' ? queues : undefined }, `${command} started`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          app.log.info({ signal }, `${command}: stopping (running jobs finish or go back to the queue)`);
          resolve();
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      await running.stop();
      await app.close();
      return;
    }
    case 'jobs': {
      const [sub, name] = rest;
      const cfg = withEmbeddedSecret(config());
      embeddedRefused(cfg, `jobs ${sub ?? ''}`.trim());
      const app = await buildApp(cfg);
      try {
        if (sub === 'list') {
          for (const s of schedulesOf(cfg)) process.stdout.write(`${s.task.padEnd(26)} ${s.pattern.padEnd(14)} queue ${TASK_QUEUE[s.task]}\n`);
          for (const q of await app.jobs.stats()) process.stdout.write(`queue ${q.queue.padEnd(9)} waiting ${q.waiting}, active ${q.active}, delayed ${q.delayed}, completed ${q.completed}, failed ${q.failed}\n`);
          return;
        }
        if (sub === 'run') {
          const scheduled = schedulesOf(cfg).map((s) => s.task as string);
          if (!name || !scheduled.includes(name)) throw new Error(`jobs run needs a scheduled task: ${scheduled.join(', ')}`);
          await app.jobs.add(name as 'check_low_stock', {});
          process.stdout.write(`enqueued ${name} on queue ${TASK_QUEUE[name as TaskName]}\n`);
          return;
        }
        throw new Error(`unknown jobs command: ${sub ?? '(none)'}; try \`jobs list\` or \`jobs run NAME\``);
      } finally {
        await app.close();
      }
    }
    case 'config':
      process.stdout.write(`${configTable()}\n`);
      return;
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      process.stderr.write(`unknown command: ${command}\n\n${USAGE}\n`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
