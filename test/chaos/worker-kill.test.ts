// Fault: the process running the jobs is sent SIGKILL while it is sending emails, on each kind of
// queue (BullMQ on Redis; the database queue on PostgreSQL). The SMTP server is slow: each message
// waits for its answer, and the kill comes while three confirmations wait, so none was delivered.
// The jobs must run again once the dead worker's hold runs out, each email must then arrive once
// (with the Message-ID of its cut-off try), no job may fail and no stock may move.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { postgresEnv, uniqueSchema } from '../helpers/db.ts';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { smtpSink } from '../helpers/smtp.ts';
import { chaosEnv, errorLines, orderChecks, prepareDatabase, purchase, sleep, startProc, stockSnapshot, stopProc, tally, waitFor, type Proc } from './harness.ts';
import { reportRow } from './report.ts';

// Short enough for a quick test, long enough that a busy CI host's pauses are not taken for deaths.
const LOCK_S = 5;
const ORDERS = 3;

let smtp: Awaited<ReturnType<typeof smtpSink>>;
const prefix = uniquePrefix();
const schemas: string[] = [];
const procs: Proc[] = [];

before(async () => {
  smtp = await smtpSink();
});

after(async () => {
  await Promise.all(procs.map(stopProc));
  await smtp.close();
  for (const schema of schemas) {
    const database = await openDatabase(loadConfig(postgresEnv(schema)));
    await sql.raw(`drop schema if exists ${schema} cascade`).execute(database.db);
    await database.close();
  }
  for (const db of [0, 1, 2, 3]) await dropPrefix(prefix, TEST_REDIS_URL.replace(/\/\d+$/, `/${db}`));
});

async function scenario(kind: 'bullmq' | 'postgres'): Promise<void> {
  const schema = uniqueSchema();
  schemas.push(schema);
  const env = chaosEnv({
    ...(postgresEnv(schema) as Record<string, string>),
    LOG_LEVEL: 'warn',
    EMAIL_HOST: '127.0.0.1',
    EMAIL_PORT: String(smtp.port),
    JOBS_LOCK_TIMEOUT: String(LOCK_S),
    JOBS_BACKOFF: '1',
    // BullMQ: the API only adds jobs and `pasargad worker` runs them. The database queue's jobs
    // run inside `serve`, so there the API instance is the worker that is killed.
    ...(kind === 'bullmq' ? { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: `${prefix}${kind}:` } : {}),
  });
  await prepareDatabase(env);
  const database: Database = await openDatabase(loadConfig(env));
  try {
    const start = async (name: string, role = kind === 'bullmq' ? ['worker'] : ['serve']) => {
      const p = await startProc(name, env, role);
      procs.push(p);
      return p;
    };
    const api = kind === 'bullmq' ? await start('api', ['serve']) : await start('worker 1');
    const doomed = kind === 'bullmq' ? await start('worker 1') : api;
    let base = api.base;

    const products = ((await (await fetch(`${base}/api/products/?in_stock=true&page_size=10`)).json()) as { results: { id: number }[] }).results.map((p) => p.id);
    const buys = tally();
    smtp.inbox.length = 0;
    smtp.dropped.length = 0;
    smtp.hold(120_000);
    const addresses = Array.from({ length: ORDERS }, (_, k) => `killed-${kind}-${k}@example.com`);
    const bought = [];
    for (const [k, address] of addresses.entries()) bought.push(await purchase(base, products[k % products.length]!, address, buys));
    assert.ok(bought.every((b) => b.paid), `every purchase paid: ${JSON.stringify(bought)}`);
    const stockAfterSales = await stockSnapshot(database.db);

    await waitFor(`${ORDERS} confirmations waiting for the SMTP server's answer`, () => smtp.holding() === ORDERS, 30_000);
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    await waitFor('the cut-off messages seen as dropped', () => smtp.dropped.length === ORDERS, 5_000);
    const deliveredBeforeKill = smtp.inbox.length;

    // The next worker (or, on the database queue, the API restarted) finds the jobs held by the
    // dead one and takes them once that hold runs out.
    smtp.hold(200);
    const killedAt = Date.now();
    const next = await start('worker 2');
    if (kind === 'postgres') base = next.base;
    await waitFor(`${ORDERS} confirmations delivered`, () => smtp.inbox.length >= ORDERS, 60_000).catch(() => undefined);
    const recoveredS = (Date.now() - killedAt) / 1000;
    await sleep(LOCK_S * 2 * 1000 + 1000); // a second run would have delivered again by now

    const recipients = smtp.inbox.flatMap((m) => m.to).sort();
    const sameIds = smtp.inbox.map((m) => m.messageId).sort();
    const cutIds = smtp.dropped.map((m) => m.messageId).sort();
    let jobState: { ok: boolean; detail: string };
    if (kind === 'bullmq') {
      const redis = new Redis(TEST_REDIS_URL.replace(/\/\d+$/, '/0'));
      const failed = await redis.zcard(`${env.REDIS_KEY_PREFIX}bull:orders:failed`);
      const completed = await redis.zcard(`${env.REDIS_KEY_PREFIX}bull:orders:completed`);
      redis.disconnect();
      jobState = { ok: failed === 0 && completed === ORDERS, detail: `${completed} completed, ${failed} failed` };
    } else {
      const jobs = await database.db.selectFrom('jobs').select(['key', 'status', 'attempts']).where('key', 'like', 'order-confirmation:%').execute();
      jobState = { ok: jobs.length === ORDERS && jobs.every((j) => j.status === 'completed' && j.attempts === 2), detail: JSON.stringify(jobs) };
    }
    const checks = [
      ...(await orderChecks(database.db, stockAfterSales).then((cs) => cs.slice(1))),
      { name: 'no stock moved by the jobs or the kill', ok: JSON.stringify([...(await stockSnapshot(database.db))]) === JSON.stringify([...stockAfterSales]), detail: 'stock differs from right after the sales' },
      { name: 'killed mid-send: nothing delivered before the kill', ok: deliveredBeforeKill === 0 && cutIds.length === ORDERS, detail: `${deliveredBeforeKill} delivered, ${cutIds.length} cut off` },
      { name: 'one email per paid order after the kill', ok: JSON.stringify(recipients) === JSON.stringify([...addresses].sort()), detail: JSON.stringify(recipients) },
      { name: 'each resend has the Message-ID of its cut-off try', ok: JSON.stringify(sameIds) === JSON.stringify(cutIds) && new Set(sameIds).size === ORDERS, detail: `${sameIds.join(' ')} vs ${cutIds.join(' ')}` },
      { name: 'each job ran again once and completed, none failed', ok: jobState.ok, detail: jobState.detail },
    ];
    reportRow({
      suite: 'faults',
      scenario: `${kind === 'bullmq' ? 'BullMQ worker' : 'API instance running the database queue'} sent SIGKILL mid-send (${ORDERS} confirmations waiting on a slow SMTP server): each sent once by the next worker, ${recoveredS.toFixed(1)} s after the kill (lock ${LOCK_S} s)`,
      requests: buys.sent,
      serverErrors: buys.serverErrors(),
      checks: checks.length,
      checksPassed: checks.filter((c) => c.ok).length,
    });
    for (const c of checks) assert.ok(c.ok, `${c.name}: ${c.detail}\n${errorLines(next)}`);
    assert.equal(buys.serverErrors(), 0);
  } finally {
    // Stopped here, not only after all scenarios: a worker left holding messages would deliver
    // them into the next scenario's count.
    await Promise.all(procs.splice(0).map(stopProc));
    await database.close();
  }
}

test('a BullMQ worker killed mid-send: each job runs again once, each email arrives once', () => scenario('bullmq'));

test('an instance running the database queue killed mid-send: each job runs again once, each email arrives once', () => scenario('postgres'));
