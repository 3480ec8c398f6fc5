// `npm run bench`: the project's performance report. For each backend (embedded PGlite with
// in-process caches, PostgreSQL + Redis) and each catalog size it seeds a catalog, starts the real
// server (built JS) in a child process per scenario, cache off and cache on, and runs:
//   - the seed's shopper mix (3 list : 2 detail : 1 search over varied pages, filters, ids and
//     queries) with autocannon, think time off: throughput, in slices alternating with a bare
//     Fastify route returning fixed bytes of the same size; then each kind of request alone, for
//     how cost grows with the catalog;
//   - the same mix with think time (each connection a shopper sending a few requests a second):
//     latency as shoppers see it, beside the bare route at the same rate;
//   - a write mix: a staff member editing prices and stock during the shopper mix, and how soon
//     reads show each edit (writes.ts);
//   - a checkout mix: guests browsing, adding to their own carts, checking out and paying on the
//     test provider (checkout.ts);
//   - a sales mix: the shopper mix while guests buy at a steady rate (5 and 20 orders a second by
//     default) and staff edit stock once a second: what precise invalidation keeps cached while
//     the shop sells;
// plus the paired on/off cost of rate limiting and of request monitoring. It reports requests/s,
// p50/p95/p99, errors, SQL statements and server CPU per request, cache hit rate and the server's
// peak RSS as Markdown (bench/results/latest.md) and one chart (bench/results/latest.svg), and
// checks the seed's claims line by line. Progress goes to stderr.
//
//   npm run bench -- [--products 1000 | --sizes 1000,100000] [--duration 10] [--connections 32]
//                    [--think-rate 4] [--backend pglite|postgres|both] [--only catalog|costs|als|media]
//                    [--cost-rounds 5] [--sales-rates 5,20] [--database-url URL] [--redis-url URL]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';
import { redisDatabase } from '../src/config.ts';
import { deleteMatching } from '../src/infra/cache/redis-store.ts';
import { chart, type ChartRow } from './chart.ts';
import { ask, freePort, stop, stoppedOnPurpose } from './children.ts';
import { checkoutMix, pacedCheckouts, type CheckoutRun } from './checkout.ts';
import { ms, summarize, type Result } from './latency.ts';
import { mediaBench } from './media.ts';
import { pairedCost, type PairedCost } from './paired.ts';
import { staffToken, staffWriter, type WriteRun } from './writes.ts';

const { values: opts } = parseArgs({
  options: {
    products: { type: 'string', default: '1000' },
    /** Catalog sizes to run everything at, comma-separated (default: --products alone). */
    sizes: { type: 'string', default: '' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    /** Requests per second per connection in the think-time run. */
    'think-rate': { type: 'string', default: '4' },
    backend: { type: 'string', default: 'both' },
    /** `catalog` (the scenarios, limits, monitoring, AsyncLocalStorage), `costs` (limits, monitoring, AsyncLocalStorage), `als` (AsyncLocalStorage) or `media` (image processing) alone; all by default. */
    only: { type: 'string', default: '' },
    /** Fresh processes for each on/off cost (rate limits, monitoring); 4 pairs of slices each. */
    'cost-rounds': { type: 'string', default: '5' },
    /** Orders a second in the sales mix, comma-separated. */
    'sales-rates': { type: 'string', default: '5,20' },
    'database-url': { type: 'string', default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'redis-url': { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const SIZES = (opts.sizes || opts.products!).split(',').map((s) => Number(s.replaceAll('_', '')));
if (SIZES.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--sizes/--products: whole numbers of products, got ${opts.sizes || opts.products}`);
const DURATION = Number(opts.duration);
const CONNECTIONS = Number(opts.connections);
const THINK_RATE = Number(opts['think-rate']);
const CLI = ['dist/cli.js'];
/** Connections for the latency figure: few enough not to queue, enough for most of the throughput. */
const LIGHT_CONNECTIONS = 4;
/** Guests checking out at once: enough to contend for stock rows, few enough that this process's fetch is not the limit. */
const CHECKOUT_USERS = 16;
/** The write mix's pause between one edit being seen and the next: about 10 edits a second, a busy back office. */
const EDIT_PAUSE_MS = 100;
const SALES_RATES = opts['sales-rates']!.split(',').filter(Boolean).map(Number);
if (SALES_RATES.some((n) => !(n > 0))) throw new Error(`--sales-rates: orders a second, comma-separated, got ${opts['sales-rates']}`);
/** The sales mix's staff stock edits: one a second. */
const SALES_EDIT_PAUSE_MS = 1000;
const STAFF = { STAFF_EMAIL: 'bench-staff@example.com', STAFF_PASSWORD: 'bench-Staff-pass-8271' };

const say = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
/** The Node that ran this report (every server it starts is a child on the same binary) and how busy the machine was: figures from a shared machine are comparable only side by side. */
const loadAverage = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const NODE = `Node ${process.version} (${process.execPath}), ${availableParallelism()} cores, load average ${loadAverage()} at start`;
say(NODE);

function run(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(' ')} exited ${code}`))));
  });
}

async function start(args: string[], env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  // The server logs (LOG_LEVEL=warn: only trouble) go to stderr with the progress.
  const child = spawn(process.execPath, args, { env: { ...env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 2, 'inherit', 'ipc'] });
  child.once('exit', (code, signal) => {
    if (!stoppedOnPurpose(child)) say(`${args.join(' ')} on port ${port} exited unexpectedly (${signal ?? `code ${code}`})`);
  });
  const deadline = Date.now() + 600_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health/`);
      if (r.ok) return child;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The shop server for one scenario: started, handed to `fn`, stopped. A fresh process each, so peak RSS is the scenario's. */
async function withServer<T>(env: NodeJS.ProcessEnv, fn: (server: ChildProcess, base: string) => Promise<T>): Promise<T> {
  const port = await freePort();
  const server = await start([...CLI, 'serve'], env, port);
  try {
    return await fn(server, `http://127.0.0.1:${port}`);
  } finally {
    await stop(server);
  }
}

interface StoreStats {
  hits: number;
  misses: number;
  rawBytes: number;
  storedBytes: number;
  memoryBytes: number;
  keys: number;
}
interface ServerStats {
  statements: number;
  caches: { api: StoreStats; default: StoreStats };
  cpu: { user: number; system: number };
  memory: { rss: number; peakRss: number };
  jobs: { queue: string; waiting: number; active: number; delayed: number }[];
}

const cpuMicros = (a: { user: number; system: number }, b: { user: number; system: number }) => b.user + b.system - (a.user + a.system);

const bareCpu = async (child: ChildProcess) => (await ask<{ cpu: { user: number; system: number } }>(child)).cpu;
const serverStats = (child: ChildProcess) => ask<ServerStats>(child);

/**
 * Runs a server until its queues are empty: the seed queues an AVIF job per demo picture, which
 * the embedded server runs in-process, seconds of CPU each; measured during them, the first
 * scenarios would share the cores with image encoding and see their pages' variants change.
 */
async function drainJobs(env: NodeJS.ProcessEnv, at: string): Promise<void> {
  await withServer(env, async (server) => {
    const started = performance.now();
    let said = 0;
    for (;;) {
      const queues = (await serverStats(server)).jobs;
      const left = queues.reduce((n, q) => n + q.waiting + q.active + q.delayed, 0);
      if (left === 0) return;
      const seconds = (performance.now() - started) / 1000;
      if (seconds > 1200) throw new Error(`${at}: ${left} jobs still queued after 20 minutes`);
      if (seconds - said >= 10) {
        said = seconds;
        say(`${at}: waiting for the seed's ${left} image jobs to finish (${seconds.toFixed(0)} s)`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });
}

type Kind = 'list' | 'detail' | 'search';
const kindOf = (path: string): Kind => (path.startsWith('/api/products/search/') ? 'search' : path.startsWith('/api/products/?') ? 'list' : 'detail');

/** Deterministic shuffled URL mix: 3 list : 2 detail : 1 search. */
async function buildMix(base: string, products: number): Promise<string[]> {
  const ids: number[] = [];
  for (const ordering of ['-created_at', 'price', 'name']) {
    for (let page = 1; page <= 5; page++) {
      const r = await fetch(`${base}/api/products/?page_size=100&ordering=${ordering}&page=${page}`);
      if (!r.ok) break;
      const body = (await r.json()) as { results: { id: number }[]; next: string | null };
      ids.push(...body.results.map((p) => p.id));
      if (!body.next) break;
    }
  }
  const cats: { id: number; pages: number }[] = [];
  for (const { id } of ((await (await fetch(`${base}/api/products/categories/`)).json()) as { results: { id: number }[] }).results) {
    // A small catalog's categories have fewer than the three pages the mix asks for (a 404 is no answer to measure).
    const first = (await (await fetch(`${base}/api/products/?category=${id}`)).json()) as { count: number; results: unknown[] };
    cats.push({ id, pages: first.results.length ? Math.ceil(first.count / first.results.length) : 1 });
  }
  const pages = Math.max(1, Math.min(50, Math.floor(products / 20)));
  const orderings = ['', '&ordering=price', '&ordering=-price', '&ordering=name', '&ordering=-average_rating'];
  const words = ['dragon', 'lamp', 'vase', '3d', 'minia', 'drag', 'gear', 'planter', 'moon', 'knight', 'resin', 'helmet', 'chess', 'dragn', 'wizrd', 'articulated dragon'];
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const mix: string[] = [];
  for (let i = 0; i < 600; i++) {
    const k = i % 6;
    if (k < 3) {
      const cat = rnd(4) === 0 ? cats[rnd(cats.length)] : undefined;
      const filter = cat ? `&category=${cat.id}` : rnd(4) === 0 ? '&in_stock=true' : '';
      const page = filter ? 1 + rnd(Math.min(3, cat?.pages ?? 3)) : 1 + rnd(pages);
      mix.push(`/api/products/?page=${page}${orderings[rnd(orderings.length)]}${filter}`);
    } else if (k < 5) mix.push(`/api/products/${ids[rnd(ids.length)]}/`);
    else mix.push(`/api/products/search/?q=${encodeURIComponent(words[rnd(words.length)]!)}`);
  }
  return mix;
}

async function averageBytes(base: string, mix: string[]): Promise<number> {
  let total = 0;
  for (const path of mix) total += (await (await fetch(base + path)).arrayBuffer()).byteLength;
  return Math.round(total / mix.length);
}

/** autocannon over the mix; `rate` (requests/s per connection) is the think time, none by default. */
async function load(base: string, mix: string[], duration = DURATION, connections = CONNECTIONS, rate?: number): Promise<Result> {
  let i = 0;
  const latencies: number[] = [];
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: base, connections, duration, ...(rate ? { connectionRate: rate } : {}), requests: [{ setupRequest: (req) => ({ ...req, path: mix[i++ % mix.length]! }) }] },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  });
  const refused = Object.entries(r.statusCodeStats ?? {}).filter(([code]) => !code.startsWith('2'));
  if (refused.length || r.errors) say(`  ${base}: ${r.errors} connection errors (${r.timeouts} timeouts); non-2xx ${refused.map(([code, s]) => `${code} ×${s.count}`).join(', ') || 'none'}`);
  return summarize(latencies, { rps: r.requests.average, errors: r.errors + r.timeouts, non2xx: r.non2xx, requests: r.requests.total });
}

interface Run {
  result: Result;
  sqlPerRequest: number;
  hitRate?: number;
  stats: ServerStats;
  /** Server CPU (user + system) per request, µs. */
  cpuPerRequest: number;
}

/** The server's counters around some work: SQL statements, cache hits and CPU per request of its result. */
async function counted(server: ChildProcess, work: () => Promise<Result>): Promise<Run> {
  const before = await serverStats(server);
  const result = await work();
  const after = await serverStats(server);
  const hits = after.caches.api.hits - before.caches.api.hits;
  const misses = after.caches.api.misses - before.caches.api.misses;
  if (!result.requests) say('  no request was answered in the run: its per-request figures are left blank');
  return {
    result,
    sqlPerRequest: (after.statements - before.statements) / result.requests,
    hitRate: hits + misses ? hits / (hits + misses) : undefined,
    stats: after,
    cpuPerRequest: cpuMicros(before.cpu, after.cpu) / result.requests,
  };
}

/** Slices of load on each target in turn, so drift in the machine's speed hits both alike. */
async function interleaved(targets: { base: string; mix: string[] }[], slices = 4, connections = CONNECTIONS): Promise<Result[]> {
  const parts: Result[][] = targets.map(() => []);
  for (let s = 0; s < slices; s++) {
    for (const [i, t] of targets.entries()) parts[i]!.push(await load(t.base, t.mix, DURATION / slices, connections));
  }
  return parts.map(combine);
}

/** Slices of one target as one result: mean throughput, percentiles over every slice's samples, summed counts. */
function combine(rs: Result[]): Result {
  return summarize(
    rs.flatMap((r) => r.latencies),
    {
      rps: rs.reduce((a, r) => a + r.rps, 0) / rs.length,
      errors: rs.reduce((a, r) => a + r.errors, 0),
      non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
      requests: rs.reduce((a, r) => a + r.requests, 0),
    },
  );
}

/** Limits on, counting every request, at windows no load here can fill. */
const GENEROUS_LIMITS = {
  RATE_LIMIT_ALLOWLIST: '',
  RATE_LIMIT_ANON: '100000000/hour',
  RATE_LIMIT_BURST: '100000000/minute',
  RATE_LIMIT_SUSTAINED: '100000000/day',
  RATE_LIMIT_ROUTES: 'search=100000000/minute',
  RATE_LIMIT_BLOCK_AFTER: '0',
};

/** Each kind of request alone runs this long (the size table). */
const KIND_SECONDS = Math.max(2, DURATION / 2);

/**
 * Two seconds of the mix at random, so the JIT is warm. With the cache on, every URL of the mix is
 * asked once first, as averageBytes() does before the throughput run: two seconds of uncached
 * PGlite answers cover only part of the mix, and the runs should compare a warm cache with none.
 */
async function warmUp(base: string, urls: string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (env.CACHE_ENABLED === 'true') for (const u of new Set(urls)) await (await fetch(base + u)).arrayBuffer();
  await autocannon({ url: base, connections: CONNECTIONS, duration: 2, requests: [{ setupRequest: (req) => ({ ...req, path: urls[Math.floor(Math.random() * urls.length)]! }) }] });
  // autocannon stops without waiting for the requests it has in flight; an uncached 100k catalog
  // can hold seconds of them (PGlite answers in turn), which would land in the measured run.
  await Promise.all(urls.slice(0, CONNECTIONS).map(async (u) => (await fetch(base + u)).arrayBuffer()));
}

interface Measured {
  run: Run;
  mix: string[];
  bytes: number;
  yard?: Result;
  yardCpu?: number;
  light?: { shop: Result; yard: Result };
  /** Each kind of request alone, on the same server after the mix. */
  kinds: Record<Kind, Run>;
}

/** One server, warmed, under the mix with no think time (beside the bare route when one is given), then each kind of request alone. */
async function measure(env: NodeJS.ProcessEnv, products: number, mix: string[] | undefined, label: string, bare?: { base: string; child: ChildProcess }): Promise<Measured> {
  return withServer(env, async (server, base) => {
    const urls = mix ?? (await buildMix(base, products));
    const bytes = await averageBytes(base, urls);
    say(`${label}: warm-up`);
    await warmUp(base, urls, env);
    const bareBefore = bare ? await bareCpu(bare.child) : undefined;
    say(`${label}: shopper mix, ${CONNECTIONS} connections, ${DURATION} s${bare ? ', in slices alternating with the bare route' : ''}`);
    let yard: Result | undefined;
    const run = await counted(server, async () => {
      if (!bare) return load(base, urls);
      const [shop, other] = (await interleaved([{ base, mix: urls }, { base: bare.base, mix: urls }])) as [Result, Result];
      yard = other;
      return shop;
    });
    const yardCpu = bare && yard ? cpuMicros(bareBefore!, await bareCpu(bare.child)) / yard.requests : undefined;
    let light: { shop: Result; yard: Result } | undefined;
    if (bare && yard) {
      // Latency with 32 connections and no pause is the queue they make (Little's law: 32 in
      // flight at 6,000 req/s is 5 ms each on average, for any server, the bare route included).
      // What a request costs shows with few connections, still at most of the throughput.
      say(`${label}: shopper mix, ${LIGHT_CONNECTIONS} connections, alternating with the bare route`);
      const [shopLight, yardLight] = (await interleaved([{ base, mix: urls }, { base: bare.base, mix: urls }], 2, LIGHT_CONNECTIONS)) as [Result, Result];
      light = { shop: shopLight, yard: yardLight };
    }
    const kinds = {} as Record<Kind, Run>;
    for (const kind of ['list', 'detail', 'search'] as const) {
      say(`${label}: ${kind} requests alone, ${KIND_SECONDS} s`);
      kinds[kind] = await counted(server, () => load(base, urls.filter((u) => kindOf(u) === kind), KIND_SECONDS));
    }
    return { run, mix: urls, bytes, yard, yardCpu, light, kinds };
  });
}

/** The mix with think time: each connection a shopper sending THINK_RATE requests a second. */
async function thinking(env: NodeJS.ProcessEnv, mix: string[], label: string): Promise<Run> {
  return withServer(env, async (server, base) => {
    say(`${label}: warm-up`);
    await warmUp(base, mix, env);
    say(`${label}: shopper mix with think time, ${CONNECTIONS} connections × ${THINK_RATE} req/s, ${DURATION} s`);
    return counted(server, () => load(base, mix, DURATION, CONNECTIONS, THINK_RATE));
  });
}

/** The mix with no think time while a staff member edits prices and stock; the reads are the result. */
async function writeMix(env: NodeJS.ProcessEnv, mix: string[], label: string): Promise<{ run: Run; writes: WriteRun }> {
  return withServer({ ...env, ...STAFF }, async (server, base) => {
    say(`${label}: warm-up`);
    await warmUp(base, mix, env);
    const token = await staffToken(base, STAFF.STAFF_EMAIL, STAFF.STAFF_PASSWORD);
    say(`${label}: write mix, shopper mix on ${CONNECTIONS} connections while staff edit prices and stock, ${DURATION} s`);
    let writes!: WriteRun;
    const run = await counted(server, async () => {
      // The first list page, as the mix asks for it: the edited products show there and on their own pages.
      const writer = staffWriter(base, token, '/api/products/?page=1', EDIT_PAUSE_MS);
      const reads = await load(base, mix);
      writes = await writer.stop();
      return reads;
    });
    return { run, writes };
  });
}

/**
 * The shopper mix while guests buy at `perSecond` through the real checkout and the test provider,
 * and staff edit stock once a second; the reads are the result, beside the orders and the edits.
 */
async function salesMix(env: NodeJS.ProcessEnv, mix: string[], label: string, perSecond: number): Promise<{ run: Run; sales: CheckoutRun; writes: WriteRun }> {
  return withServer({ ...env, ...STAFF }, async (server, base) => {
    say(`${label}: warm-up`);
    await warmUp(base, mix, env);
    const token = await staffToken(base, STAFF.STAFF_EMAIL, STAFF.STAFF_PASSWORD);
    say(`${label}: sales mix, shopper mix on ${CONNECTIONS} connections while guests buy ${perSecond} orders/s and staff edit stock once a second, ${DURATION} s`);
    let sales!: CheckoutRun;
    let writes!: WriteRun;
    const run = await counted(server, async () => {
      const writer = staffWriter(base, token, '/api/products/?page=1', SALES_EDIT_PAUSE_MS, 'stock');
      const buying = pacedCheckouts(base, perSecond, DURATION);
      const reads = await load(base, mix);
      [sales, writes] = await Promise.all([buying, writer.stop()]);
      return reads;
    });
    return { run, sales, writes };
  });
}

async function checkout(env: NodeJS.ProcessEnv, label: string): Promise<{ run: Run; checkout: CheckoutRun }> {
  return withServer(env, async (server, base) => {
    say(`${label}: checkout mix, ${CHECKOUT_USERS} guests browsing, adding to their carts, checking out and paying, ${DURATION} s`);
    let c!: CheckoutRun;
    const run = await counted(server, async () => {
      c = await checkoutMix(base, CHECKOUT_USERS, DURATION);
      return c.result;
    });
    return { run, checkout: c };
  });
}

/** One row of the main table (and of the chart). */
interface Line {
  label: string;
  mode: ChartRow['mode'];
  result: Result;
  sqlPerRequest?: number;
  hitRate?: number;
  /** µs */
  cpuPerRequest?: number;
  peakRss?: number;
  /** The bare route's result under the same load, for the ratio. */
  bare?: Result;
}

const dash = (x: number | undefined, f: (x: number) => string) => (x === undefined || !Number.isFinite(x) ? '—' : f(x));
const line = (l: Line) =>
  `| ${l.label} | ${Math.round(l.result.rps)} | ${ms(l.result.p50)} | ${ms(l.result.p95)} | ${ms(l.result.p99)} | ${l.result.errors + l.result.non2xx} | ${dash(l.sqlPerRequest, (x) => x.toFixed(2))} | ${dash(l.hitRate, (x) => `${(x * 100).toFixed(1)}%`)} | ${dash(l.cpuPerRequest, (x) => (x / 1000).toFixed(3))} | ${dash(l.peakRss, (x) => (x / 2 ** 20).toFixed(0))} | ${l.bare ? `${(l.result.rps / l.bare.rps).toFixed(3)}x` : '—'} |`;
const fromRun = (label: string, mode: Line['mode'], r: Run, bare?: Result): Line => ({ label, mode, result: r.result, sqlPerRequest: r.sqlPerRequest, hitRate: r.hitRate, cpuPerRequest: r.cpuPerRequest, peakRss: r.stats.memory.peakRss, bare });

interface SizeReport {
  products: number;
  seedSeconds: number;
  lines: Line[];
  writes: string[];
  claims: string[];
  /** Per kind of request, cache off and on: req/s and server CPU µs per request. */
  kinds: Record<Kind, { off: Run; on: Run }>;
}

async function benchSize(backend: 'pglite' | 'postgres', products: number, withCosts: boolean): Promise<SizeReport> {
  // The load generator is allow-listed, as issue 5 has load tests do; what limiting costs is
  // measured on its own (pairedCost).
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', NODE_ENV: 'production', ALLOW_TEST_PAYMENTS: 'true', SECRET_KEY: 'bench-secret-key-bench-secret-key-0000', RATE_LIMIT_ALLOWLIST: '127.0.0.1' };
  let dataDir: string | undefined;
  let schema: string | undefined;
  const redisPrefix = `bench:${process.pid}:${products}:`;
  if (backend === 'pglite') {
    dataDir = mkdtempSync(join(tmpdir(), 'pasargad-bench-'));
    Object.assign(env, { DATA_DIR: dataDir, DEMO_PRODUCTS: '0' });
  } else {
    schema = `bench_${process.pid}_${products}`;
    Object.assign(env, { DATABASE_URL: opts['database-url'], DATABASE_SCHEMA: schema, REDIS_URL: opts['redis-url'], REDIS_KEY_PREFIX: redisPrefix });
  }
  const name = SIZES.length > 1 ? `${backend}, ${products} products` : backend;
  const at = `${backend}, ${products} products`;
  try {
    say(`${at}: seeding`);
    const seedStarted = performance.now();
    await run([...CLI, 'seed', '--products', String(products)], env);
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    if (backend === 'pglite') await drainJobs({ ...env, CACHE_ENABLED: 'false' }, at);
    if (opts.only === 'costs' || opts.only === 'als') return { products, seedSeconds, lines: [], writes: [], claims: await costClaims(backend, { ...env, CACHE_ENABLED: 'true' }), kinds: {} as SizeReport['kinds'] };
    const offEnv = { ...env, CACHE_ENABLED: 'false' };
    const onEnv = { ...env, CACHE_ENABLED: 'true' };

    // Reads: throughput, then latency with think time, beside the bare route.
    const off = await measure(offEnv, products, undefined, `${at}, cache off`);
    const barePort = await freePort();
    const bare = await start(['--import', 'tsx', 'bench/bare-server.ts'], { ...env, BODY_BYTES: String(off.bytes) }, barePort);
    const bareBase = `http://127.0.0.1:${barePort}`;
    let on: Measured;
    let thinkOff: Run;
    let thinkOn: Run;
    let thinkBare: Result;
    let thinkBareCpu: number;
    let bareRss: number;
    try {
      on = await measure(onEnv, products, off.mix, `${at}, cache on`, { base: bareBase, child: bare });
      thinkOff = await thinking(offEnv, off.mix, `${at}, cache off`);
      thinkOn = await thinking(onEnv, off.mix, `${at}, cache on`);
      say(`${at}: bare route with think time`);
      const before = await bareCpu(bare);
      thinkBare = await load(bareBase, off.mix, DURATION, CONNECTIONS, THINK_RATE);
      thinkBareCpu = cpuMicros(before, await bareCpu(bare)) / thinkBare.requests;
      bareRss = (await ask<{ memory: { peakRss: number } }>(bare)).memory.peakRss;
    } finally {
      await stop(bare);
    }
    const yard = on.yard!;

    // Writes change prices and stock, and checkouts sell stock: both after every read-only run.
    const writeOff = await writeMix(offEnv, off.mix, `${at}, cache off`);
    const writeOn = await writeMix(onEnv, off.mix, `${at}, cache on`);
    const checkoutOff = await checkout(offEnv, `${at}, cache off`);
    const checkoutOn = await checkout(onEnv, `${at}, cache on`);
    const sales: { rate: number; off: Awaited<ReturnType<typeof salesMix>>; on: Awaited<ReturnType<typeof salesMix>> }[] = [];
    for (const rate of SALES_RATES) {
      sales.push({ rate, off: await salesMix(offEnv, off.mix, `${at}, cache off`, rate), on: await salesMix(onEnv, off.mix, `${at}, cache on`, rate) });
    }

    const thinkLabel = `think time ${CONNECTIONS} × ${THINK_RATE} req/s`;
    const bought = (c: CheckoutRun) => `${c.orders} orders (${(c.orders / c.seconds).toFixed(1)}/s), ${c.soldOut} sold out`;
    const lines: Line[] = [
      fromRun(`shopper mix, ${at}, cache off`, 'cache off', off.run, yard),
      fromRun(`shopper mix, ${at}, cache on`, 'cache on', on.run, yard),
      { label: `bare Fastify, ${off.bytes} B`, mode: 'bare route', result: yard, sqlPerRequest: 0, cpuPerRequest: on.yardCpu, peakRss: bareRss, bare: yard },
      fromRun(`shopper mix, ${thinkLabel}, ${at}, cache off`, 'cache off', thinkOff),
      fromRun(`shopper mix, ${thinkLabel}, ${at}, cache on`, 'cache on', thinkOn),
      { label: `bare Fastify, ${thinkLabel}`, mode: 'bare route', result: thinkBare, sqlPerRequest: 0, cpuPerRequest: thinkBareCpu, peakRss: bareRss },
      fromRun(`write mix (reads), ${at}, cache off`, 'cache off', writeOff.run),
      fromRun(`write mix (reads), ${at}, cache on`, 'cache on', writeOn.run),
      fromRun(`checkout mix, ${at}, cache off: ${bought(checkoutOff.checkout)}`, 'cache off', checkoutOff.run),
      fromRun(`checkout mix, ${at}, cache on: ${bought(checkoutOn.checkout)}`, 'cache on', checkoutOn.run),
      ...sales.flatMap((x) => [
        fromRun(`sales mix ${x.rate} orders/s (reads), ${at}, cache off: ${bought(x.off.sales)}`, 'cache off', x.off.run),
        fromRun(`sales mix ${x.rate} orders/s (reads), ${at}, cache on: ${bought(x.on.sales)}`, 'cache on', x.on.run),
      ]),
    ];
    const writeLine = (cache: string, w: WriteRun) =>
      `| ${at}, ${cache} | ${w.edits} (${(w.edits / w.seconds).toFixed(1)}/s) | ${ms(w.patch.p50)} / ${ms(w.patch.p99)} | ${ms(w.staleness.p50)} / ${ms(w.staleness.p95)} / ${ms(w.staleness.p99)} / ${ms(w.staleness.max)} | ${w.staleReads} | ${ms(w.answered.p50)} / ${ms(w.answered.p99)} | ${w.errors} |`;
    const writes = [
      writeLine('cache off', writeOff.writes),
      writeLine('cache on', writeOn.writes),
      ...sales.flatMap((x) => [writeLine(`sales mix ${x.rate}/s, cache off`, x.off.writes), writeLine(`sales mix ${x.rate}/s, cache on`, x.on.writes)]),
    ];

    const speedup = on.run.result.rps / off.run.result.rps;
    const api = on.run.stats.caches.api;
    const saved = api.rawBytes ? 1 - api.storedBytes / api.rawBytes : undefined;
    const check = (ok: boolean) => (ok ? 'met' : '**not met**');
    const claims = [
      `**${name}** — SQL statements per request ${off.run.sqlPerRequest.toFixed(2)} → ${on.run.sqlPerRequest.toFixed(3)} (seed: 50–70% fewer; here ${((1 - on.run.sqlPerRequest / off.run.sqlPerRequest) * 100).toFixed(1)}% fewer): ${check(on.run.sqlPerRequest <= off.run.sqlPerRequest * 0.5)}`,
      `**${name}** — hit rate on the mix ${((on.run.hitRate ?? 0) * 100).toFixed(1)}% (seed: 80%; ours: ≥ 95%): ${check((on.run.hitRate ?? 0) >= 0.95)}`,
      `**${name}** — p99 of cache hits with ${LIGHT_CONNECTIONS} connections ${ms(on.light!.shop.p99)} ms at ${Math.round(on.light!.shop.rps)} req/s, bare route ${ms(on.light!.yard.p99)} ms at ${Math.round(on.light!.yard.rps)} req/s (seed: < 100 ms; ours: < 10 ms): ${check(on.light!.shop.p99 < 10)}; with ${CONNECTIONS} connections, where the queue they make is the latency, ${ms(on.run.result.p99)} ms, bare route ${ms(yard.p99)} ms; with think time (${thinkLabel}) ${ms(thinkOn.result.p99)} ms, bare route ${ms(thinkBare.p99)} ms`,
      `**${name}** — read throughput ${speedup.toFixed(1)}x the cache-off server (seed: 3x; ours: ≥ 10x): ${check(speedup >= 10)}; ${((on.run.result.rps / yard.rps) * 100).toFixed(0)}% of the bare route (ours: ≥ 70%): ${check(on.run.result.rps / yard.rps >= 0.7)}; server CPU per cached answer ${Math.round(on.run.cpuPerRequest)} µs against the bare route's ${Math.round(on.yardCpu ?? 0)} µs`,
    ];
    for (const x of sales) {
      const hit = x.on.run.hitRate ?? 0;
      const kept = x.on.run.result.rps / on.run.result.rps;
      const ordersOn = x.on.sales.orders / x.on.sales.seconds;
      const ordersOff = x.off.sales.orders / x.off.sales.seconds;
      const stale = x.on.writes.staleReads + x.off.writes.staleReads;
      const goal = x.rate <= 5 ? ` (ours: ≥ 95%, ≥ 0.9x): ${check(hit >= 0.95 && kept >= 0.9)}` : ' (reported as measured)';
      claims.push(
        `**${name}** — selling ${x.rate} orders/s with a staff stock edit a second: hit rate ${(hit * 100).toFixed(1)}%, reads at ${kept.toFixed(2)}x the read-only mix${goal}; orders ${x.on.sales.orders} (${ordersOn.toFixed(1)}/s) with the cache on, ${x.off.sales.orders} (${ordersOff.toFixed(1)}/s) off, of ${Math.round(x.rate * DURATION)} started (ours: on ≥ off): ${check(x.on.sales.orders >= x.off.sales.orders)}; reads answered stale after an edit's 200: ${stale} (ours: 0): ${check(stale === 0)}`,
      );
    }
    if (withCosts) claims.push(...(await costClaims(backend, onEnv)));
    claims.push(
      saved === undefined
        ? `**${name}** — in-process stores keep ready bytes (identity, gzip and brotli) so a hit does no work: ${(api.memoryBytes / 1024).toFixed(0)} KiB for ${api.keys} answers`
        : `**${name}** — Redis \`api\` store: ${(api.rawBytes / 1024).toFixed(0)} KiB of answers stored as ${(api.storedBytes / 1024).toFixed(0)} KiB (${(saved * 100).toFixed(0)}% saved by compression)`,
    );
    const kinds = Object.fromEntries((['list', 'detail', 'search'] as const).map((k) => [k, { off: off.kinds[k], on: on.kinds[k] }])) as SizeReport['kinds'];
    return { products, seedSeconds, lines, writes, claims, kinds };
  } finally {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (schema) {
      const client = new pg.Client({ connectionString: opts['database-url'] });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
      await dropRedisPrefix(opts['redis-url']!, redisPrefix);
    }
  }
}

/** Removes the run's keys from databases 0-3: queues, then the stores (SCAN, never KEYS). */
async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  for (const db of [0, 1, 2, 3]) {
    const client = new Redis(redisDatabase(url, db));
    await deleteMatching(client, prefix);
    client.disconnect();
  }
}

/** What rate limiting and request monitoring cost on the cached product list (bench/paired.ts). */
async function costClaims(backend: string, cached: NodeJS.ProcessEnv): Promise<string[]> {
  const check = (ok: boolean) => (ok ? 'met' : '**not met**');
  const paired = { slice: DURATION / 5, connections: CONNECTIONS, rounds: Number(opts['cost-rounds']), pairsPerRound: 4, say };
  const alsOnly = opts.only === 'als';
  const limits = alsOnly ? undefined : await pairedCost(cached, GENEROUS_LIMITS, { RATE_LIMIT_ENABLED: 'false' }, `${backend}, rate limits`, paired);
  // The load generator is allow-listed on both, so only the monitoring differs.
  const monitoring = alsOnly ? undefined : await pairedCost(cached, {}, { REQUEST_MONITORING: 'false' }, `${backend}, request monitoring`, paired);
  const how = (c: PairedCost) => `median of ${c.pairs} paired slices, both shops in one process, from ${paired.rounds} fresh processes`;
  // AsyncLocalStorage (the tally in src/infra/monitoring/tally.ts was built without it): paired in
  // one process only where it costs the requests that use it, i.e. Node 24's AsyncContextFrame.
  const frame = Number(process.versions.node.split('.')[0]) >= 24 && !process.execArgv.concat(process.env.NODE_OPTIONS?.split(/\s+/) ?? []).includes('--no-async-context-frame');
  const als = frame ? await pairedCost(cached, { PAIRED_ALS: 'true' }, { PAIRED_ALS: 'false' }, `${backend}, AsyncLocalStorage`, paired) : undefined;
  return [
    als
      ? `**${backend}** — AsyncLocalStorage on ${process.version} (AsyncContextFrame): every request run inside its own context and read back in onSend, against the same hook without it: ${Math.round(als.on.rps)} req/s with, ${Math.round(als.off.rps)} without; ${how(als)}: ${Math.abs((1 - als.ratio) * 100).toFixed(1)}% ${als.ratio <= 1 ? 'slower' : 'faster'} with it (Node 20's promise hooks: 4–6% slower); server CPU per request ${Math.round(als.cpuOn)} µs with, ${Math.round(als.cpuOff)} µs without`
      : `**${backend}** — AsyncLocalStorage: not paired on ${process.version} (without AsyncContextFrame its promise hooks are process-wide, so both shops of one process would pay); run the bench on Node 24`,
    ...(limits && monitoring
      ? [
          `**${backend}** — rate limiting on the cached product list: ${Math.round(limits.on.rps)} req/s with limits on, ${Math.round(limits.off.rps)} with them off; ${how(limits)}: ${((1 - limits.ratio) * 100).toFixed(1)}% slower (ours: < 10%): ${check(limits.ratio > 0.9)}; server CPU per request ${Math.round(limits.cpuOn)} µs on, ${Math.round(limits.cpuOff)} µs off`,
          `**${backend}** — request monitoring (X-Response-Time, request patterns, per-request SQL and cache tally): ${Math.round(monitoring.on.rps)} req/s on, ${Math.round(monitoring.off.rps)} off; ${how(monitoring)}: ${((1 - monitoring.ratio) * 100).toFixed(1)}% slower (ours: < 5%): ${check(monitoring.ratio > 0.95)}; server CPU per request ${Math.round(monitoring.cpuOn)} µs on, ${Math.round(monitoring.cpuOff)} µs off`,
        ]
      : []),
  ];
}

/** How cost grows with the catalog: each kind of request alone, per size, cache off and on. */
function sizeTable(backend: string, reports: SizeReport[]): string[] {
  const out: string[] = [];
  for (const kind of ['list', 'detail', 'search'] as const) {
    for (const cache of ['off', 'on'] as const) {
      const runs = reports.map((r) => r.kinds[kind][cache]);
      const cells = runs.map((r) => `${Math.round(r.result.rps)} | ${(r.cpuPerRequest / 1000).toFixed(3)}`);
      const growth = runs.length > 1 ? `${(runs.at(-1)!.cpuPerRequest / runs[0]!.cpuPerRequest).toFixed(1)}x` : '—';
      out.push(`| ${backend}, ${kind}, cache ${cache} | ${cells.join(' | ')} | ${growth} |`);
    }
  }
  return out;
}

const backends = opts.only === 'media' ? [] : opts.backend === 'both' ? (['pglite', 'postgres'] as const) : [opts.backend as 'pglite' | 'postgres'];
const bySize: { backend: string; reports: SizeReport[] }[] = [];
for (const b of backends) {
  const reports: SizeReport[] = [];
  for (const [i, products] of SIZES.entries()) reports.push(await benchSize(b, products, i === 0));
  bySize.push({ backend: b, reports });
}
const all = bySize.flatMap((b) => b.reports);
const lines = all.flatMap((r) => r.lines);
const claims = all.flatMap((r) => r.claims);
const media = opts.only === 'catalog' || opts.only === 'costs' || opts.only === 'als' ? undefined : await mediaBench(say);
if (media) claims.push(...media.claims);
const when = new Date().toISOString();
mkdirSync('bench/results', { recursive: true });
if (lines.length) {
  const short = (label: string) => label.replace(/: .*/, '').replace(/think time [^,]*/, 'think time');
  const rows = lines.map((l) => ({ label: short(l.label), mode: l.mode, rps: l.result.rps, p50: l.result.p50, p95: l.result.p95, p99: l.result.p99 }));
  writeFileSync('bench/results/latest.svg', chart(`npm run bench, ${when.slice(0, 16).replace('T', ' ')} UTC: ${CONNECTIONS} connections, ${DURATION} s per run`, rows));
}
const sizeHeader = SIZES.map((n) => `${n} products: req/s | CPU ms / req`).join(' | ');
const report = [
  `${NODE}, ${loadAverage()} at the end; ${when}`,
  '',
  ...(lines.length
    ? [
        `Seeding (the seed command, start to finish): ${bySize.flatMap((b) => b.reports.map((r) => `${b.backend} ${r.products} products in ${r.seedSeconds.toFixed(1)} s`)).join('; ')}.`,
        '',
        `Scenarios, ${DURATION} s each: the shopper mix (3 list : 2 detail : 1 search) on ${CONNECTIONS} connections with no think time, and with think time (each connection ${THINK_RATE} requests/s); the write mix (the shopper mix while staff edit a price or stock about every ${EDIT_PAUSE_MS} ms); the checkout mix (${CHECKOUT_USERS} guests buying back to back); the sales mix (the shopper mix while new guests start a purchase at a steady ${SALES_RATES.join(' or ')} a second, browse, pay and verify, and staff edit a product's stock once a second; its SQL and CPU per read include the purchases' work). Ratio to bare: the bare route under the same load in alternating slices.`,
        '',
        '| target | req/s | p50 ms | p95 ms | p99 ms | errors + non-2xx | SQL statements / request | cache hit rate | server CPU ms / request | server peak RSS MiB | ratio to bare |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
        ...lines.map(line),
        '',
        '![requests/s and latency per scenario](latest.svg)',
        '',
        'Write mix: how soon reads show a staff edit. After each PATCH answers 200 the writer reads the product page (and, for a price, the list page) back to back until both show the new value. Staleness: from the 200 to sending the first read that showed it (about 0 when the first read after the 200 shows it; its resolution is one read under the load); "answered": when that read came back.',
        '',
        '| target | edits | PATCH p50 / p99 ms | staleness p50 / p95 / p99 / max ms | reads answered stale after the 200 | first fresh read answered p50 / p99 ms | failed edits |',
        '|---|---|---|---|---|---|---|',
        ...all.flatMap((r) => r.writes),
        '',
        `How cost grows with the catalog: each kind of request from the mix alone, ${CONNECTIONS} connections, ${KIND_SECONDS} s; CPU growth is server CPU per request at the largest size over the smallest:`,
        '',
        `| backend, request, cache | ${sizeHeader} | CPU growth |`,
        `|---|${SIZES.map(() => '---|---|').join('')}---|`,
        ...bySize.flatMap((b) => sizeTable(b.backend, b.reports)),
        '',
      ]
    : []),
  "The seed's claims, checked:",
  '',
  ...claims.map((c) => `- ${c}`),
  ...(media ? ['', ...media.rows] : []),
].join('\n');
writeFileSync('bench/results/latest.md', `${report}\n`);
process.stdout.write(`${report}\n`);
