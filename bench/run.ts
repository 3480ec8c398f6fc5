// `npm run bench`: seeds a catalog, starts the real server, and drives the seed's shopper mix
// (3 list : 2 detail : 1 search over varied pages, filters, ids and queries) with autocannon,
// then the same load against a bare Fastify route returning fixed bytes of the same size, in the
// same run. Prints requests/s, p50/p99, SQL statements per request and the ratio to the bare route.
//
//   npm run bench -- [--products 1000] [--duration 10] [--connections 32] [--backend pglite|postgres|both]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';

const { values: opts } = parseArgs({
  options: {
    products: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    backend: { type: 'string', default: 'both' },
    'database-url': { type: 'string', default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const PRODUCTS = Number(opts.products);
const DURATION = Number(opts.duration);
const CONNECTIONS = Number(opts.connections);
const CLI = ['dist/cli.js'];

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

function sqlStatements(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (m: { statements: number }) => resolve(m.statements));
    child.send({ type: 'stats' });
  });
}

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

async function load(base: string, mix: string[]): Promise<Result> {
  let i = 0;
  const r = await autocannon({
    url: base,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [{ setupRequest: (req) => ({ ...req, path: mix[i++ % mix.length]! }) }],
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, requests: r.requests.total };
}

async function benchBackend(backend: 'pglite' | 'postgres'): Promise<string[]> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', NODE_ENV: 'production', SECRET_KEY: 'bench-secret-key-bench-secret-key-0000' };
  let dataDir: string | undefined;
  let schema: string | undefined;
  if (backend === 'pglite') {
    dataDir = mkdtempSync(join(tmpdir(), 'pasargad-bench-'));
    Object.assign(env, { DATA_DIR: dataDir, DEMO_PRODUCTS: '0' });
  } else {
    schema = `bench_${process.pid}`;
    Object.assign(env, { DATABASE_URL: opts['database-url'], DATABASE_SCHEMA: schema });
  }
  try {
    say(`${backend}: seeding ${PRODUCTS} products`);
    await run([...CLI, 'seed', '--products', String(PRODUCTS)], env);
    const port = await freePort();
    const server = await start([...CLI, 'serve'], env, port);
    const base = `http://127.0.0.1:${port}`;
    const mix = await buildMix(base);
    const bytes = await averageBytes(base, mix);
    say(`${backend}: warm-up`);
    await autocannon({ url: base, connections: CONNECTIONS, duration: 2, requests: [{ setupRequest: (req) => ({ ...req, path: mix[Math.floor(Math.random() * mix.length)]! }) }] });
    const sqlBefore = await sqlStatements(server);
    say(`${backend}: shopper mix, ${CONNECTIONS} connections, ${DURATION} s`);
    const shop = await load(base, mix);
    const sqlPerRequest = ((await sqlStatements(server)) - sqlBefore) / shop.requests;
    await stop(server);

    const barePort = await freePort();
    const bare = await start(['--import', 'tsx', 'bench/bare-server.ts'], { ...env, BODY_BYTES: String(bytes) }, barePort);
    say(`bare route, ${bytes} bytes`);
    const yard = await load(`http://127.0.0.1:${barePort}`, mix);
    await stop(bare);

    const row = (name: string, r: Result, sql: string, ratio: string) =>
      `| ${name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.errors + r.non2xx} | ${sql} | ${ratio} |`;
    return [
      row(`shop, ${backend}, ${PRODUCTS} products`, shop, sqlPerRequest.toFixed(2), `${(shop.rps / yard.rps).toFixed(3)}x`),
      row(`bare Fastify, ${bytes} B`, yard, '0', '1x'),
    ];
  } finally {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (schema) {
      const client = new pg.Client({ connectionString: opts['database-url'] });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    }
  }
}

const backends = opts.backend === 'both' ? (['pglite', 'postgres'] as const) : [opts.backend as 'pglite' | 'postgres'];
const rows: string[] = [];
for (const b of backends) rows.push(...(await benchBackend(b)));
const report = [
  `Shopper mix (3 list : 2 detail : 1 search), ${CONNECTIONS} connections, ${DURATION} s, no cache, Node ${process.version}, ${new Date().toISOString()}`,
  '',
  '| target | req/s | p50 ms | p99 ms | errors + non-2xx | SQL statements / request | ratio to bare |',
  '|---|---|---|---|---|---|---|',
  ...rows,
].join('\n');
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/latest.md', `${report}\n`);
process.stdout.write(`${report}\n`);
