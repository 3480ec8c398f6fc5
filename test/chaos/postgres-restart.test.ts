// Fault: the PostgreSQL server restarts under a steady shopper load while guests are paying.
// Requests that need it meanwhile get a prompt 503 in the contract's shape (never a hang, a 500
// or a crash), /health/ready/ says not ready, and the same process serves again once the database
// is back, with no restart; every order is whole or absent and all stock is accounted for.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { startPgCluster, type PgCluster } from '../helpers/pg-cluster.ts';
import { chaosEnv, errorLines, openCheckout, orderChecks, pay, prepareDatabase, record, shopperLoad, shopperPaths, sleep, startProc, stockSnapshot, stopProc, tally, waitFor, type OpenCheckout, type Proc, type Purchase } from './harness.ts';
import { reportRow } from './report.ts';

const OUTAGE_MS = 6_000;

let pg: PgCluster;
let api: Proc | undefined;
let env: NodeJS.ProcessEnv;

before(async () => {
  pg = await startPgCluster();
  // No Redis: caches in process, sessions and jobs in the database, so the database is all that fails.
  env = chaosEnv({ DATABASE_URL: pg.url, DATABASE_SCHEMA: 'shop', LOG_LEVEL: 'warn' });
  await prepareDatabase(env);
  api = await startProc('api', env);
});

after(async () => {
  await stopProc(api);
  await pg.stop();
});

const shopper = (i: number) => ({ 'x-forwarded-for': `10.8.${(i >> 8) & 255}.${i & 255}` });
const CONTRACT_503 = /^\{"error":true,"message":"[^"]+","status_code":503,"code":"service_unavailable"\}$/;

test('PostgreSQL restarted under the shopper mix: prompt 503s in the contract shape, readiness reports it, the server recovers by itself, no half-written order', async () => {
  const base = api!.base;
  const paths = await shopperPaths(base);
  const products = ((await (await fetch(`${base}/api/products/?in_stock=true&page_size=30`)).json()) as { results: { id: number }[] }).results.map((p) => p.id);
  let database: Database | undefined = await openDatabase(loadConfig(env));
  const stockBefore = await stockSnapshot(database.db);
  await database.close();
  database = undefined;

  const buys = tally();
  const open: OpenCheckout[] = [];
  for (let k = 0; k < 4; k++) {
    const c = await openCheckout(base, products[k]!, `pg-restart-${k}@example.com`, buys);
    assert.ok('sessionId' in c, `checkout opened: ${JSON.stringify(c)}`);
    open.push(c);
  }

  // Every response during the run is timed: a hang would show as a slow one (or a timeout).
  const load = shopperLoad(() => base, paths, { connections: 4, pauseMs: 5, headers: shopper });
  await sleep(1500);
  // Two guests pay just as the server goes down (their payments race the shutdown).
  const racing = [pay(open[0]!, buys), pay(open[1]!, buys)];
  await pg.down('fast');
  const downAt = Date.now();

  // During the outage: uncached reads, a payment and readiness, each timed.
  const outage = tally();
  const answers: { what: string; status: number; ms: number; body: string }[] = [];
  const probe = async (what: string, path: string, init: RequestInit = {}) => {
    const started = Date.now();
    const res = await record(outage, () => fetch(base + path, { ...init, headers: { ...shopper(99_999), ...(init.headers as Record<string, string>) }, signal: AbortSignal.timeout(20_000) }));
    answers.push({ what, status: res?.status ?? 0, ms: Date.now() - started, body: res ? await res.text() : '' });
  };
  await probe('uncached list', '/api/products/?page=2&ordering=-name&page_size=7');
  await probe('uncached detail', `/api/products/${products.at(-1)}/?x=1`);
  await probe('readiness', '/health/ready/');
  await probe('pay', new URL(open[2]!.url).pathname, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=paid', redirect: 'manual' });
  const duringPays: Purchase[] = await Promise.all(racing);
  await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));

  await pg.up();
  const upAt = Date.now();
  let lastReady = '';
  await waitFor('/health/ready/ to answer 200', async () => {
    const r = await fetch(`${base}/health/ready/`, { signal: AbortSignal.timeout(5000) });
    lastReady = `${r.status} ${await r.text()}`;
    return r.status === 200;
  }, 30_000).catch(async (err: Error) => {
    await load.stop();
    throw new Error(`${err.message}: ${lastReady} exit ${api!.child.exitCode}\n${api!.output().slice(-4000)}`);
  });
  const recoveredMs = Date.now() - upAt;
  await sleep(2000);
  const reads = await load.stop();

  // After: the checkouts not paid yet are paid now, on the same process.
  const afterPays: Purchase[] = [];
  for (const c of open.slice(2)) afterPays.push(await pay(c, buys));
  for (const [k, p] of duringPays.entries()) if (!p.paid) afterPays.push(await pay(open[k]!, buys));

  database = await openDatabase(loadConfig(env));
  const checks = [
    ...(await orderChecks(database.db, stockBefore)),
    { name: 'every request in the outage answered within 10 s', ok: answers.every((a) => a.status > 0 && a.ms < 10_000), detail: JSON.stringify(answers) },
    { name: 'uncached reads and the payment: 503 in the contract shape', ok: answers.filter((a) => a.what !== 'readiness').every((a) => a.status === 503 && CONTRACT_503.test(a.body)), detail: JSON.stringify(answers) },
    { name: 'readiness reports the database', ok: answers.some((a) => a.what === 'readiness' && a.status === 503 && /"database":"unhealthy"/.test(a.body)), detail: JSON.stringify(answers) },
    { name: 'every checkout paid once the database is back', ok: afterPays.every((p) => p.paid) && afterPays.length + duringPays.filter((p) => p.paid).length === open.length, detail: JSON.stringify({ duringPays, afterPays }) },
  ];
  const { n: orders } = (await database.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()) as { n: number };
  checks.push({ name: 'one order per checkout', ok: Number(orders) === open.length, detail: `${orders} orders` });
  await database.close();

  const expected503 = reads.count(503) + outage.count(503) + buys.count(503);
  const unexpected = reads.serverErrors() + outage.serverErrors() + buys.serverErrors() - expected503;
  reportRow({
    suite: 'faults',
    scenario: `PostgreSQL stopped ${OUTAGE_MS / 1000} s and restarted under the shopper mix (${expected503} expected 503s in the contract shape meanwhile; ready again ${(recoveredMs / 1000).toFixed(1)} s after, no restart)`,
    requests: reads.sent + outage.sent + buys.sent,
    serverErrors: unexpected,
    checks: checks.length,
    checksPassed: checks.filter((c) => c.ok).length,
  });

  assert.equal(unexpected, 0, `5xx other than 503: ${JSON.stringify(reads.statuses)} ${reads.samples.join('\n')}\n${errorLines(api!)}`);
  assert.deepEqual(reads.failures, {}, 'every read answered');
  for (const c of checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
  assert.equal(api!.child.exitCode, null, 'the server is still running');
});
