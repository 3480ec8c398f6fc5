// Fault: the Redis behind caches, sessions, limits and job queues stops for 10 s under a steady
// shopper load, then comes back. Catalog reads must never fail (the database answers), limits keep
// counting in process (the insurance limiter), jobs queued before and during the outage run once
// each (one confirmation email per paid order), and the caches fill and hit again afterwards.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { postgresEnv, uniqueSchema } from '../helpers/db.ts';
import { startRestartableRedis, type RestartableRedis } from '../helpers/redis-servers.ts';
import { smtpSink } from '../helpers/smtp.ts';
import { chaosEnv, errorLines, openCheckout, orderChecks, pay, prepareDatabase, purchase, record, shopperLoad, shopperPaths, sleep, startProc, stockSnapshot, stopProc, tally, waitFor, type OpenCheckout, type Proc, type Purchase } from './harness.ts';
import { reportRow } from './report.ts';

const SEARCH_LIMIT = 20;
const OUTAGE_MS = 10_000;

let redis: RestartableRedis;
let smtp: Awaited<ReturnType<typeof smtpSink>>;
let api: Proc | undefined;
let database: Database;
const schema = uniqueSchema();
let env: NodeJS.ProcessEnv;

before(async () => {
  redis = await startRestartableRedis();
  smtp = await smtpSink();
  env = chaosEnv({
    ...(postgresEnv(schema) as Record<string, string>),
    LOG_LEVEL: 'warn',
    REDIS_URL: `${redis.url}/0`,
    JOBS_IN_PROCESS: 'true',
    EMAIL_HOST: '127.0.0.1',
    EMAIL_PORT: String(smtp.port),
    RATE_LIMIT_ROUTES: `search=${SEARCH_LIMIT}/minute`,
    RATE_LIMIT_BLOCK_AFTER: '0',
  });
  await prepareDatabase(env);
  database = await openDatabase(loadConfig(env));
  api = await startProc('api', env);
});

after(async () => {
  await stopProc(api);
  await sql.raw(`drop schema if exists ${schema} cascade`).execute(database.db);
  await database.close();
  await smtp.close();
  await redis.stop();
});

/** Shoppers of the load, one address per request, so only the test's own client meets the search limit. */
const shopper = (i: number) => ({ 'x-forwarded-for': `10.9.${(i >> 8) & 255}.${i & 255}` });

test('Redis stopped for 10 s and restarted under the shopper mix: no 5xx on catalog reads, limits in process meanwhile, each job run once, caches heal', async () => {
  const base = api!.base;
  const paths = await shopperPaths(base);
  const products = ((await (await fetch(`${base}/api/products/?in_stock=true&page_size=30`, { signal: AbortSignal.timeout(30_000) })).json()) as { results: { id: number }[] }).results.map((p) => p.id);
  const stockBefore = await stockSnapshot(database.db);
  const buys = tally();
  const bought: Purchase[] = [];
  let n = 0;
  const buy = async () => bought.push(await purchase(base, products[n % products.length]!, `redis-outage-${n++}@example.com`, buys));

  // Warm: the reads cached in Redis and in process, two orders paid (emails queued in Redis).
  for (const p of paths.slice(0, 30)) await fetch(base + p, { headers: shopper(0), signal: AbortSignal.timeout(30_000) }).then((r) => r.arrayBuffer());
  await buy();
  await buy();

  const load = shopperLoad(() => base, paths, { connections: 4, pauseMs: 5, headers: shopper });
  await sleep(2000);

  // Checkouts opened before the outage, paid during it: each payment writes its order in the
  // database and queues the confirmation email, which must reach Redis once it is back.
  const open: OpenCheckout[] = [];
  for (let k = 0; k < 3; k++) {
    const c = await openCheckout(base, products[n % products.length]!, `redis-outage-${n++}@example.com`, buys);
    assert.ok('sessionId' in c, `checkout opened: ${JSON.stringify(c)}`);
    open.push(c);
  }

  await redis.down();
  const downAt = Date.now();
  // One client searching past its limit, which the in-process insurance counter must still refuse.
  const limited = tally();
  for (let k = 0; k < SEARCH_LIMIT + 10; k++) await record(limited, () => fetch(`${base}/api/products/search/?q=dragon`, { headers: { 'x-forwarded-for': '198.51.100.9' }, signal: AbortSignal.timeout(30_000) }));
  const duringOutage: Purchase[] = [];
  for (const c of open) {
    duringOutage.push(await pay(c, buys));
    bought.push(duringOutage.at(-1)!);
  }
  // A new guest cart needs the session store (Redis): the expected answer is a clean 503.
  const newGuest = tally();
  const refused = await purchase(base, products[0]!, 'redis-outage-new@example.com', newGuest);
  await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
  await redis.up();

  // After: the load goes on while the connections come back, then two more purchases.
  await sleep(5000);
  await buy();
  await buy();
  const reads = await load.stop();

  // Caches heal: a read answered twice is a hit the second time (memory and Redis both filled).
  const probe = paths[1]!;
  await waitFor('a cache hit after the restart', async () => {
    await fetch(base + probe, { headers: shopper(1), signal: AbortSignal.timeout(10_000) }).then((r) => r.arrayBuffer());
    const again = await fetch(base + probe, { headers: shopper(1), signal: AbortSignal.timeout(10_000) });
    await again.arrayBuffer();
    return again.headers.get('x-cache') === 'HIT';
  }, 20_000);
  const jobs = new Redis(`${redis.url}/0`);
  const cacheDb = new Redis(`${redis.url}/3`);
  const healed = (await cacheDb.dbsize()) > 0;
  cacheDb.disconnect();

  // Jobs: one confirmation email per paid order, none failed, none twice.
  const paid = bought.filter((b) => b.paid).length;
  await waitFor(`${paid} confirmation emails`, () => smtp.inbox.length >= paid, 60_000).catch(() => undefined);
  await sleep(3000); // a duplicate would arrive now
  const failedJobs = await jobs.zcard(`${env.REDIS_KEY_PREFIX ?? ''}bull:orders:failed`);
  jobs.disconnect();
  const recipients = smtp.inbox.flatMap((m) => m.to);
  const duplicates = recipients.filter((r, k) => recipients.indexOf(r) !== k);

  const allowed = limited.count(200);
  const checks = [
    ...(await orderChecks(database.db, stockBefore)),
    { name: `one email per paid order (${paid})`, ok: smtp.inbox.length === paid && duplicates.length === 0, detail: `${smtp.inbox.length} emails, duplicates ${duplicates.join(', ')}` },
    // Without these the email count could hold on nothing (no order paid, no email sent).
    { name: 'the purchases before and after the outage paid', ok: [...bought.slice(0, 2), ...bought.slice(-2)].every((b) => b.paid), detail: JSON.stringify(bought) },
    { name: 'no job failed', ok: failedJobs === 0, detail: `${failedJobs} failed` },
    { name: `the search limit held in process (${SEARCH_LIMIT}/minute)`, ok: allowed === SEARCH_LIMIT && limited.count(429) === 10, detail: JSON.stringify(limited.statuses) },
    { name: 'a new guest cart meanwhile: 503 in the contract shape', ok: refused.status === 503 && /"code":"service_unavailable"/.test(refused.body ?? ''), detail: JSON.stringify(refused) },
    { name: 'caches filled again in Redis', ok: healed, detail: 'no keys in the cache databases' },
  ];
  const catalogServerErrors = reads.serverErrors() + limited.serverErrors();
  const checkoutNote = `${duringOutage.filter((p) => p.paid).length}/${duringOutage.length} open checkouts paid; a new guest cart: ${refused.status} as expected, session store down`;
  reportRow({
    suite: 'faults',
    scenario: `Redis stopped 10 s and restarted under the shopper mix (${checkoutNote})`,
    requests: reads.sent + limited.sent + buys.sent,
    serverErrors: catalogServerErrors + buys.serverErrors(),
    checks: checks.length,
    checksPassed: checks.filter((c) => c.ok).length,
  });

  assert.equal(catalogServerErrors, 0, `5xx on catalog reads: ${JSON.stringify(reads.statuses)} ${reads.samples.join('\n')}\n${errorLines(api!)}`);
  assert.deepEqual(reads.failures, {}, 'every read answered');
  assert.ok(reads.sent > 200, `a steady load (${reads.sent} reads)`);
  for (const c of checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
  assert.equal(buys.serverErrors(), 0, `purchases: ${JSON.stringify(bought)}\n${buys.samples.join('\n')}`);
});
