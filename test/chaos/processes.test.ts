// Fault: one of two API instances is sent SIGTERM (a deploy, a scale-down) under a steady shopper
// load spread over both. The requests it has accepted complete; the load balancer, which here is
// the test's client, sends the rest to the other instance once the first refuses connections.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/database.ts';
import { postgresEnv, uniqueSchema } from '../helpers/db.ts';
import { within } from '../helpers/net.ts';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { chaosEnv, errorLines, prepareDatabase, record, shopperPaths, sleep, startProc, stopProc, tally, type Proc } from './harness.ts';
import { reportRow } from './report.ts';

const schema = uniqueSchema();
const prefix = uniquePrefix();
let env: NodeJS.ProcessEnv;
let a: Proc | undefined;
let b: Proc | undefined;

before(async () => {
  env = chaosEnv({ ...(postgresEnv(schema) as Record<string, string>), LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_ROUTES: 'search=1000000/minute', RATE_LIMIT_BLOCK_AFTER: '0' });
  await prepareDatabase(env);
  [a, b] = await Promise.all([startProc('A', env), startProc('B', env)]);
});

after(async () => {
  await Promise.all([stopProc(a), stopProc(b)]);
  const database = await openDatabase(loadConfig(env));
  await sql.raw(`drop schema if exists ${schema} cascade`).execute(database.db);
  await database.close();
  for (const db of [0, 1, 2, 3]) await dropPrefix(prefix, TEST_REDIS_URL.replace(/\/\d+$/, `/${db}`));
});

/**
 * Sends a request's headers and half its body now; the returned function sends the rest and
 * resolves with the answer (status 0: none, e.g. the connection was closed on it).
 */
async function slowPost(base: string, path: string, body: string): Promise<() => Promise<{ status: number; body: string }>> {
  const url = new URL(base + path);
  const req = request({ host: url.hostname, port: url.port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
  const answer = new Promise<{ status: number; body: string }>((resolve) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text.slice(0, 200) }));
    });
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
  const half = Math.floor(body.length / 2);
  await new Promise<void>((resolve) => req.write(body.slice(0, half), () => resolve()));
  await sleep(100); // the server has read the headers: the request is under way
  return async () => {
    req.end(body.slice(half));
    return within(`the answer to the slow POST ${path}`, answer, 60_000);
  };
}

test('an API instance sent SIGTERM under load: what it accepted completes, the rest goes to the other instance', async () => {
  const paths = await shopperPaths(a!.base);
  const t = tally();
  let retried = 0;
  let termAt = 0;
  let running = true;
  let n = 0;
  // The load balancer: round robin; a connection refused or reset before any answer is retried on
  // the other instance (what nginx's proxy_next_upstream does for an idempotent GET).
  const loops = Array.from({ length: 6 }, async () => {
    while (running) {
      const i = n++;
      const path = paths[i % paths.length]!;
      const first = i % 2 === 0 ? a! : b!;
      const res = await record(t, () => fetch(first.base + path, { signal: AbortSignal.timeout(20_000) }));
      if (!res) {
        retried++;
        t.sent--; // the same request, sent again
        const other = first === a ? b! : a!;
        await record(t, () => fetch(other.base + path, { signal: AbortSignal.timeout(20_000) }));
      }
      await sleep(2);
    }
  });
  await sleep(3000);
  // Requests in flight at the moment of the signal: guests adding to their carts on A whose
  // bodies are still arriving; they are sent in full only after the SIGTERM.
  const product = Number(/\/api\/products\/(\d+)\//.exec(paths.find((p) => /^\/api\/products\/\d+\/$/.test(p))!)![1]);
  const inFlight = await Promise.all(Array.from({ length: 4 }, () => slowPost(a!.base, '/api/cart/add/', JSON.stringify({ product_id: product, quantity: 1 }))));
  termAt = Date.now();
  a!.child.kill('SIGTERM');
  await sleep(300);
  const inFlightAnswers = await Promise.all(inFlight.map((finish) => finish()));
  t.sent += inFlightAnswers.length;
  for (const r of inFlightAnswers) t.statuses[r.status] = (t.statuses[r.status] ?? 0) + 1;
  const code = await a!.exited;
  const exitedMs = Date.now() - termAt;
  await sleep(3000);
  running = false;
  await Promise.all(loops);
  const failures = Object.values(t.failures).reduce((x, y) => x + y, 0);

  const checks = [
    { name: 'the requests in flight at SIGTERM answered 200', ok: inFlightAnswers.every((r) => r?.status === 200), detail: JSON.stringify(inFlightAnswers) },
    { name: 'A exited 0 once done', ok: code === 0, detail: `exit ${code} after ${exitedMs} ms\n${errorLines(a!)}` },
    { name: 'B served everything after', ok: (t.count(200) > 0 && failures === retried) || failures === 0, detail: JSON.stringify(t.failures) },
  ];
  reportRow({
    suite: 'faults',
    scenario: `API instance A sent SIGTERM under the shopper mix over A and B (A exited in ${(exitedMs / 1000).toFixed(1)} s; ${retried} connections refused by A sent on to B, as a load balancer does)`,
    requests: t.sent,
    serverErrors: t.serverErrors(),
    checks: checks.length,
    checksPassed: checks.filter((c) => c.ok).length,
  });
  assert.equal(t.serverErrors(), 0, `5xx: ${JSON.stringify(t.statuses)} ${t.samples.join('\n')}`);
  for (const c of checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
});
