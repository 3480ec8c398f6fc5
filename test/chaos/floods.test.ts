// Abuse: slow clients and floods. Hundreds of slowloris connections (headers dripped a line at a
// time) must not starve a normal shopper, and a burst of requests each claiming another address in
// X-Forwarded-For must still be counted against the one real client, whether it talks to the
// server directly (an untrusted peer: the header is ignored) or through the trusted proxy (which
// appends the address it saw: the rightmost untrusted one counts).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/database.ts';
import { postgresEnv, uniqueSchema } from '../helpers/db.ts';
import { chaosEnv, errorLines, prepareDatabase, record, shopperPaths, sleep, startProc, stopProc, tally, type Proc } from './harness.ts';
import { reportRow } from './report.ts';

const SEARCH_LIMIT = 20;
const schema = uniqueSchema();
let env: NodeJS.ProcessEnv;
let api: Proc | undefined;

before(async () => {
  // No Redis: limits counted in process, the embedded-mode default.
  env = chaosEnv({ ...(postgresEnv(schema) as Record<string, string>), LOG_LEVEL: 'warn', RATE_LIMIT_ROUTES: `search=${SEARCH_LIMIT}/minute`, RATE_LIMIT_BLOCK_AFTER: '0' });
  await prepareDatabase(env);
  api = await startProc('api', env);
});

after(async () => {
  await stopProc(api);
  const database = await openDatabase(loadConfig(env));
  await sql.raw(`drop schema if exists ${schema} cascade`).execute(database.db);
  await database.close();
});

test('slowloris connections do not starve a normal shopper', async () => {
  const base = api!.base;
  const port = Number(new URL(base).port);
  // Lists and product pages (this shopper alone would pass the search limit set for the next test).
  const paths = (await shopperPaths(base)).filter((p) => !p.includes('/search/'));
  const SLOW = 400;
  const sockets: Socket[] = [];
  for (let k = 0; k < SLOW; k++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.write(`GET /api/products/ HTTP/1.1\r\nHost: shop.test\r\n`);
    sockets.push(s);
  }
  // One more header line per connection every second, never the blank line that ends them.
  const drip = setInterval(() => {
    for (const [k, s] of sockets.entries()) if (!s.destroyed) s.write(`X-Slow-${k}: ${Date.now()}\r\n`);
  }, 1000);
  const t = tally();
  const latencies: number[] = [];
  const until = Date.now() + 8000;
  let i = 0;
  try {
    while (Date.now() < until) {
      const started = performance.now();
      await record(t, () => fetch(base + paths[i++ % paths.length]!, { signal: AbortSignal.timeout(10_000) }));
      latencies.push(performance.now() - started);
    }
  } finally {
    clearInterval(drip);
  }
  const open = sockets.filter((s) => !s.destroyed).length;
  for (const s of sockets) s.destroy();
  latencies.sort((x, y) => x - y);
  const p95 = latencies[Math.floor(latencies.length * 0.95)] ?? Infinity;
  const checks = [
    { name: 'every shopper request answered 200', ok: t.count(200) === t.sent, detail: JSON.stringify({ statuses: t.statuses, failures: t.failures }) },
    { name: 'shopper p95 under 500 ms', ok: p95 < 500, detail: `p95 ${p95.toFixed(0)} ms` },
  ];
  reportRow({
    suite: 'floods',
    scenario: `${SLOW} slowloris connections dripping headers for 8 s (${open} still open at the end) beside one shopper (p95 ${p95.toFixed(0)} ms)`,
    requests: t.sent,
    serverErrors: t.serverErrors(),
    checks: checks.length,
    checksPassed: checks.filter((c) => c.ok).length,
  });
  assert.equal(t.serverErrors(), 0);
  for (const c of checks) assert.ok(c.ok, `${c.name}: ${c.detail}\n${errorLines(api!)}`);
});

/** A GET from a chosen loopback address (127.0.0.2 is not a trusted proxy). */
function getFrom(localAddress: string, url: string, headers: Record<string, string>): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(new Response(body, { status: res.statusCode })));
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${url} (from ${localAddress}) within 30 s`)));
    req.end();
  });
}

const spoofed = (k: number) => `${(k * 37) % 223 + 1}.${k % 251}.${(k * 7) % 253}.${(k % 200) + 1}`;

test('a burst with a different spoofed X-Forwarded-For on every request is limited as the one client it is', async () => {
  const base = api!.base;
  const BURST = SEARCH_LIMIT * 4;
  // Straight to the server from an untrusted peer: X-Forwarded-For is not believed at all.
  const direct = tally();
  await Promise.all(Array.from({ length: BURST }, (_, k) => record(direct, () => getFrom('127.0.0.2', `${base}/api/products/search/?q=lamp`, { 'x-forwarded-for': spoofed(k) }))));
  // Through the trusted proxy (loopback), which appends the address it saw to whatever the client sent.
  const proxied = tally();
  await Promise.all(Array.from({ length: BURST }, (_, k) => record(proxied, () => fetch(`${base}/api/products/search/?q=lamp`, { headers: { 'x-forwarded-for': `${spoofed(k)}, ${spoofed(k + 1)}, 203.0.113.77` } }))));
  // A different real client is unaffected.
  const other = await fetch(`${base}/api/products/search/?q=lamp`, { headers: { 'x-forwarded-for': '203.0.113.78' } });
  await other.arrayBuffer();

  const checks = [
    { name: `direct: ${SEARCH_LIMIT} of ${BURST} allowed`, ok: direct.count(200) === SEARCH_LIMIT && direct.count(429) === BURST - SEARCH_LIMIT, detail: JSON.stringify(direct.statuses) },
    { name: `through the proxy: ${SEARCH_LIMIT} of ${BURST} allowed`, ok: proxied.count(200) === SEARCH_LIMIT && proxied.count(429) === BURST - SEARCH_LIMIT, detail: JSON.stringify(proxied.statuses) },
    { name: 'another client still served', ok: other.status === 200, detail: String(other.status) },
  ];
  reportRow({
    suite: 'floods',
    scenario: `bursts of ${BURST} searches (limit ${SEARCH_LIMIT}/minute), each with another spoofed X-Forwarded-For, direct and through the trusted proxy`,
    requests: direct.sent + proxied.sent + 1,
    serverErrors: direct.serverErrors() + proxied.serverErrors(),
    checks: checks.length,
    checksPassed: checks.filter((c) => c.ok).length,
  });
  assert.equal(direct.serverErrors() + proxied.serverErrors(), 0);
  for (const c of checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
});
