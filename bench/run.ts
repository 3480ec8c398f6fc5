// `npm run bench`: seeds a catalog, starts the real server, and drives the seed's shopper mix
// (3 list : 2 detail : 1 search over varied pages, filters, ids and queries) with autocannon:
// once with the cache off, once with it on (after a warm-up) in slices alternating with the same
// load on a bare Fastify route returning fixed bytes of the same size, all in one run. Embedded mode and
// PostgreSQL + Redis. Prints requests/s, p50/p99, SQL statements per request, cache hit rate,
// the ratios, the seed's cache claims checked, and what compression saved in Redis.
//
//   npm run bench -- [--products 1000] [--duration 10] [--connections 32] [--backend pglite|postgres|both]
//                    [--database-url URL] [--redis-url URL]
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';
import { redisDatabase } from '../src/config.ts';
import { deleteMatching } from '../src/infra/cache/redis-store.ts';
import { mediaBench } from './media.ts';

const { values: opts } = parseArgs({
  options: {
    products: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    backend: { type: 'string', default: 'both' },
    /** `catalog` (the shopper mix and limits) or `media` (image processing) alone; both by default. */
    only: { type: 'string', default: '' },
    'database-url': { type: 'string', default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'redis-url': { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const PRODUCTS = Number(opts.products);
const DURATION = Number(opts.duration);
const CONNECTIONS = Number(opts.connections);
const CLI = ['dist/cli.js'];
/** Connections for the latency figure: few enough not to queue, enough for most of the throughput. */
const LIGHT_CONNECTIONS = 4;

const say = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(' ')} exited ${code}`))));
  });
}

async function start(args: string[], env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { env: { ...env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
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

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
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
}

const cpuMicros = (a: { user: number; system: number }, b: { user: number; system: number }) => b.user + b.system - (a.user + a.system);

/** Asks a child for its counters over IPC (other messages, such as 'ready', are passed over). */
function ask<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (m: { type?: string }) => {
      if (m?.type !== 'stats') return;
      child.off('message', onMessage);
      resolve(m as T);
    };
    child.on('message', onMessage);
    child.send({ type: 'stats' });
  });
}

const bareCpu = async (child: ChildProcess) => (await ask<{ cpu: { user: number; system: number } }>(child)).cpu;
const serverStats = (child: ChildProcess) => ask<ServerStats>(child);

/** Deterministic shuffled URL mix: 3 list : 2 detail : 1 search. */
async function buildMix(base: string): Promise<string[]> {
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
  const cats = ((await (await fetch(`${base}/api/products/categories/`)).json()) as { results: { id: number }[] }).results.map((c) => c.id);
  const pages = Math.max(1, Math.min(50, Math.floor(PRODUCTS / 20)));
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
      const filter = rnd(4) === 0 ? `&category=${cats[rnd(cats.length)]}` : rnd(4) === 0 ? '&in_stock=true' : '';
      const page = filter ? 1 + rnd(3) : 1 + rnd(pages);
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

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  requests: number;
}

async function load(base: string, mix: string[], duration = DURATION, connections = CONNECTIONS): Promise<Result> {
  let i = 0;
  const r = await autocannon({
    url: base,
    connections,
    duration,
    requests: [{ setupRequest: (req) => ({ ...req, path: mix[i++ % mix.length]! }) }],
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, requests: r.requests.total };
}

interface Run {
  result: Result;
  sqlPerRequest: number;
  hitRate?: number;
  stats: ServerStats;
  /** Server CPU (user + system) per request, µs. */
  cpuPerRequest: number;
}

/** Slices of load on each target in turn, so drift in the machine's speed hits both alike. */
async function interleaved(targets: { base: string; mix: string[] }[], slices = 4, connections = CONNECTIONS): Promise<Result[]> {
  const parts: Result[][] = targets.map(() => []);
  for (let s = 0; s < slices; s++) {
    for (const [i, t] of targets.entries()) parts[i]!.push(await load(t.base, t.mix, DURATION / slices, connections));
  }
  return parts.map(combine);
}

/** Slices of one target as one result: mean throughput, the worst percentiles, summed counts. */
function combine(rs: Result[]): Result {
  return {
    rps: rs.reduce((a, r) => a + r.rps, 0) / rs.length,
    p50: Math.max(...rs.map((r) => r.p50)),
    p99: Math.max(...rs.map((r) => r.p99)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
    requests: rs.reduce((a, r) => a + r.requests, 0),
  };
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

interface PairedCost {
  on: Result;
  off: Result;
  /** Median over adjacent on/off slice pairs of on ÷ off throughput: robust to the machine's drift. */
  ratio: number;
  /** Server CPU per request, µs. */
  cpuOn: number;
  cpuOff: number;
}

/**
 * The cost of a feature (rate limiting, request monitoring): the cached product list from two
 * servers on the same data, feature on and off, in 12 pairs of short slices (which one goes first
 * alternates). On this shared 2-core
 * machine throughput drifts by ±20% from second to second, so the figure is the median of the
 * pairs' ratios, with the servers' CPU per request beside it. A server process also has its own
 * luck (JIT, memory layout: two identical processes were seen 15% apart in CPU per request), so
 * the pairs come from three rounds, each with a fresh pair of servers. Embedded mode gives the
 * second server a copy of the database.
 */
async function pairedCost(env: NodeJS.ProcessEnv, onEnv: NodeJS.ProcessEnv, offEnv: NodeJS.ProcessEnv, label: string): Promise<PairedCost> {
  const copy = env.DATA_DIR ? mkdtempSync(join(tmpdir(), 'pasargad-bench-')) : undefined;
  if (copy) cpSync(env.DATA_DIR!, copy, { recursive: true });
  const parts: [Result[], Result[]] = [[], []];
  const cpu = [0, 0];
  const ratios: number[] = [];
  say(`${label}: cached product list, on and off, 3 rounds of fresh servers, 4 pairs of ${(DURATION / 6).toFixed(1)} s slices each`);
  try {
    for (let round = 0; round < 3; round++) {
      const [onPort, offPort] = [await freePort(), await freePort()];
      const on = await start([...CLI, 'serve'], { ...env, ...onEnv }, onPort);
      const off = await start([...CLI, 'serve'], { ...env, ...offEnv, ...(copy ? { DATA_DIR: copy } : {}) }, offPort);
      try {
        const targets = [`http://127.0.0.1:${onPort}`, `http://127.0.0.1:${offPort}`];
        for (const base of targets) await autocannon({ url: `${base}/api/products/`, connections: CONNECTIONS, duration: 2 });
        const cpuBefore = await Promise.all([serverStats(on), serverStats(off)]);
        const requests = [0, 0];
        for (let i = 0; i < 4; i++) {
          const order = i % 2 === 0 ? [0, 1] : [1, 0];
          const got: Result[] = [];
          for (const t of order) got[t] = await load(targets[t]!, ['/api/products/'], DURATION / 6);
          for (const t of [0, 1]) (parts[t as 0 | 1].push(got[t]!), (requests[t]! += got[t]!.requests));
          ratios.push(got[0]!.rps / got[1]!.rps);
        }
        const cpuAfter = await Promise.all([serverStats(on), serverStats(off)]);
        for (const t of [0, 1]) cpu[t]! += cpuMicros(cpuBefore[t]!.cpu, cpuAfter[t]!.cpu);
        say(`${label}: round ${round + 1}/3 done`);
      } finally {
        await Promise.all([stop(on), stop(off)]);
      }
    }
    const [onResult, offResult] = [combine(parts[0]), combine(parts[1])];
    ratios.sort((x, y) => x - y);
    return { on: onResult, off: offResult, ratio: (ratios[5]! + ratios[6]!) / 2, cpuOn: cpu[0]! / onResult.requests, cpuOff: cpu[1]! / offResult.requests };
  } finally {
    if (copy) rmSync(copy, { recursive: true, force: true });
  }
}

/** One server, warmed, under the mix (beside the bare route when one is given). */
async function measure(
  env: NodeJS.ProcessEnv,
  mix: string[] | undefined,
  label: string,
  bare?: { base: string; child: ChildProcess },
): Promise<{ run: Run; mix: string[]; bytes: number; yard?: Result; yardCpu?: number; light?: { shop: Result; yard: Result } }> {
  const port = await freePort();
  const server = await start([...CLI, 'serve'], env, port);
  try {
    const base = `http://127.0.0.1:${port}`;
    const urls = mix ?? (await buildMix(base));
    const bytes = await averageBytes(base, urls);
    say(`${label}: warm-up`);
    await autocannon({ url: base, connections: CONNECTIONS, duration: 2, requests: [{ setupRequest: (req) => ({ ...req, path: urls[Math.floor(Math.random() * urls.length)]! }) }] });
    const before = await serverStats(server);
    const bareBefore = bare ? await bareCpu(bare.child) : undefined;
    say(`${label}: shopper mix, ${CONNECTIONS} connections, ${DURATION} s${bare ? ', in slices alternating with the bare route' : ''}`);
    let result: Result;
    let yard: Result | undefined;
    if (bare) [result, yard] = (await interleaved([{ base, mix: urls }, { base: bare.base, mix: urls }])) as [Result, Result];
    else result = await load(base, urls);
    const after = await serverStats(server);
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
    const hits = after.caches.api.hits - before.caches.api.hits;
    const misses = after.caches.api.misses - before.caches.api.misses;
    return {
      run: {
        result,
        sqlPerRequest: (after.statements - before.statements) / result.requests,
        hitRate: hits + misses ? hits / (hits + misses) : undefined,
        stats: after,
        cpuPerRequest: cpuMicros(before.cpu, after.cpu) / result.requests,
      },
      mix: urls,
      bytes,
      yard,
      yardCpu,
      light,
    };
  } finally {
    await stop(server);
  }
}

interface BackendReport {
  rows: string[];
  claims: string[];
}

async function benchBackend(backend: 'pglite' | 'postgres'): Promise<BackendReport> {
  // The load generator is allow-listed, as issue 5 has load tests do; what limiting costs is
  // measured on its own (pairedCost).
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', NODE_ENV: 'production', ALLOW_TEST_PAYMENTS: 'true', SECRET_KEY: 'bench-secret-key-bench-secret-key-0000', RATE_LIMIT_ALLOWLIST: '127.0.0.1' };
  let dataDir: string | undefined;
  let schema: string | undefined;
  const redisPrefix = `bench:${process.pid}:`;
  if (backend === 'pglite') {
    dataDir = mkdtempSync(join(tmpdir(), 'pasargad-bench-'));
    Object.assign(env, { DATA_DIR: dataDir, DEMO_PRODUCTS: '0' });
  } else {
    schema = `bench_${process.pid}`;
    Object.assign(env, { DATABASE_URL: opts['database-url'], DATABASE_SCHEMA: schema, REDIS_URL: opts['redis-url'], REDIS_KEY_PREFIX: redisPrefix });
  }
  try {
    say(`${backend}: seeding ${PRODUCTS} products`);
    await run([...CLI, 'seed', '--products', String(PRODUCTS)], env);
    const off = await measure({ ...env, CACHE_ENABLED: 'false' }, undefined, `${backend}, cache off`);
    const barePort = await freePort();
    const bare = await start(['--import', 'tsx', 'bench/bare-server.ts'], { ...env, BODY_BYTES: String(off.bytes) }, barePort);
    let on: Awaited<ReturnType<typeof measure>>;
    try {
      on = await measure({ ...env, CACHE_ENABLED: 'true' }, off.mix, `${backend}, cache on`, { base: `http://127.0.0.1:${barePort}`, child: bare });
    } finally {
      await stop(bare);
    }
    const yard = on.yard!;
    const cached = { ...env, CACHE_ENABLED: 'true' };
    const limits = await pairedCost(cached, GENEROUS_LIMITS, { RATE_LIMIT_ENABLED: 'false' }, `${backend}, rate limits`);
    const limitsRatio = limits.ratio;
    // The load generator is allow-listed on both, so only the monitoring differs.
    const monitoring = await pairedCost(cached, {}, { REQUEST_MONITORING: 'false' }, `${backend}, request monitoring`);

    const row = (name: string, r: { result: Result; sqlPerRequest: number; hitRate?: number; cpuPerRequest?: number }) =>
      `| ${name} | ${Math.round(r.result.rps)} | ${r.result.p50} | ${r.result.p99} | ${r.result.errors + r.result.non2xx} | ${r.sqlPerRequest.toFixed(2)} | ${r.hitRate === undefined ? '—' : `${(r.hitRate * 100).toFixed(1)}%`} | ${r.cpuPerRequest === undefined ? '—' : Math.round(r.cpuPerRequest)} | ${(r.result.rps / yard.rps).toFixed(3)}x |`;
    const speedup = on.run.result.rps / off.run.result.rps;
    const api = on.run.stats.caches.api;
    const saved = api.rawBytes ? 1 - api.storedBytes / api.rawBytes : undefined;
    const check = (ok: boolean) => (ok ? 'met' : '**not met**');
    const claims = [
      `**${backend}** — SQL statements per request ${off.run.sqlPerRequest.toFixed(2)} → ${on.run.sqlPerRequest.toFixed(3)} (seed: 50–70% fewer; here ${((1 - on.run.sqlPerRequest / off.run.sqlPerRequest) * 100).toFixed(1)}% fewer): ${check(on.run.sqlPerRequest <= off.run.sqlPerRequest * 0.5)}`,
      `**${backend}** — hit rate on the mix ${((on.run.hitRate ?? 0) * 100).toFixed(1)}% (seed: 80%; ours: ≥ 95%): ${check((on.run.hitRate ?? 0) >= 0.95)}`,
      `**${backend}** — p99 of cache hits with ${LIGHT_CONNECTIONS} connections ${on.light!.shop.p99} ms at ${Math.round(on.light!.shop.rps)} req/s, bare route ${on.light!.yard.p99} ms at ${Math.round(on.light!.yard.rps)} req/s (seed: < 100 ms; ours: < 10 ms): ${check(on.light!.shop.p99 < 10)}; with ${CONNECTIONS} connections, where the queue they make is the latency, ${on.run.result.p99} ms, bare route ${yard.p99} ms`,
      `**${backend}** — read throughput ${speedup.toFixed(1)}x the cache-off server (seed: 3x; ours: ≥ 10x): ${check(speedup >= 10)}; ${((on.run.result.rps / yard.rps) * 100).toFixed(0)}% of the bare route (ours: ≥ 70%): ${check(on.run.result.rps / yard.rps >= 0.7)}; server CPU per cached answer ${Math.round(on.run.cpuPerRequest)} µs against the bare route's ${Math.round(on.yardCpu ?? 0)} µs`,
      `**${backend}** — rate limiting on the cached product list: ${Math.round(limits.on.rps)} req/s with limits on, ${Math.round(limits.off.rps)} with them off; median of 12 paired slices from 3 pairs of servers ${((1 - limitsRatio) * 100).toFixed(1)}% slower (ours: < 10%): ${check(limitsRatio > 0.9)}; server CPU per request ${Math.round(limits.cpuOn)} µs on, ${Math.round(limits.cpuOff)} µs off`,
      `**${backend}** — request monitoring (X-Response-Time, request patterns, per-request SQL and cache tally): ${Math.round(monitoring.on.rps)} req/s on, ${Math.round(monitoring.off.rps)} off; median of 12 paired slices from 3 pairs of servers ${((1 - monitoring.ratio) * 100).toFixed(1)}% slower (ours: < 5%): ${check(monitoring.ratio > 0.95)}; server CPU per request ${Math.round(monitoring.cpuOn)} µs on, ${Math.round(monitoring.cpuOff)} µs off`,
      saved === undefined
        ? `**${backend}** — in-process stores keep ready bytes (identity, gzip and brotli) so a hit does no work: ${(api.memoryBytes / 1024).toFixed(0)} KiB for ${api.keys} answers`
        : `**${backend}** — Redis \`api\` store: ${(api.rawBytes / 1024).toFixed(0)} KiB of answers stored as ${(api.storedBytes / 1024).toFixed(0)} KiB (${(saved * 100).toFixed(0)}% saved by compression)`,
    ];
    return {
      rows: [
        row(`shop, ${backend}, ${PRODUCTS} products, cache off`, off.run),
        row(`shop, ${backend}, ${PRODUCTS} products, cache on`, on.run),
        row(`bare Fastify, ${off.bytes} B`, { result: yard, sqlPerRequest: 0, cpuPerRequest: on.yardCpu }),
      ],
      claims,
    };
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

/** Removes the run's keys from databases 1-3 (SCAN, never KEYS). */
async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  for (const db of [1, 2, 3]) {
    const client = new Redis(redisDatabase(url, db));
    await deleteMatching(client, prefix);
    client.disconnect();
  }
}

const backends = opts.only === 'media' ? [] : opts.backend === 'both' ? (['pglite', 'postgres'] as const) : [opts.backend as 'pglite' | 'postgres'];
const rows: string[] = [];
const claims: string[] = [];
for (const b of backends) {
  const r = await benchBackend(b);
  rows.push(...r.rows);
  claims.push(...r.claims);
}
const media = opts.only === 'catalog' ? undefined : await mediaBench(say);
if (media) claims.push(...media.claims);
const report = [
  `Node ${process.version}, ${new Date().toISOString()}`,
  '',
  ...(rows.length
    ? [
        `Shopper mix (3 list : 2 detail : 1 search), ${CONNECTIONS} connections, ${DURATION} s:`,
        '',
        '| target | req/s | p50 ms | p99 ms | errors + non-2xx | SQL statements / request | cache hit rate | server CPU µs / request | ratio to bare |',
        '|---|---|---|---|---|---|---|---|---|',
        ...rows,
        '',
      ]
    : []),
  "The seed's claims, checked:",
  '',
  ...claims.map((c) => `- ${c}`),
  ...(media ? ['', ...media.rows] : []),
].join('\n');
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/latest.md', `${report}\n`);
process.stdout.write(`${report}\n`);
