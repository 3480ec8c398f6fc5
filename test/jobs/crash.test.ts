// A worker killed (SIGKILL) after its job's side effect and before the job is recorded as done:
// the job is taken again once the dead worker's lease runs out, runs to completion, and the
// customer still gets one email, not two. On PostgreSQL, with the worker in its own process.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { SmtpMailer } from '../../src/infra/email/mailer.ts';
import { DbJobQueue } from '../../src/infra/jobs/db-queue.ts';
import { taskHandlers } from '../../src/infra/jobs/handlers.ts';
import { insertOrder } from '../../src/modules/orders/orders.repository.ts';
import { testApp } from '../helpers/app.ts';
import { openTestDatabase, postgresEnv } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { within } from '../helpers/net.ts';
import { smtpSink } from '../helpers/smtp.ts';

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let sink: Awaited<ReturnType<typeof smtpSink>>;
let app: FastifyInstance;
before(async () => {
  database = await openTestDatabase('postgres');
  sink = await smtpSink();
  app = await testApp(database);
});
after(async () => {
  await app.close();
  await sink.close();
  await database.drop();
});

test('a worker killed mid-job: the job is retried once, and the email is sent once', async () => {
  const p = await f.product(database.db, { name: 'Crash-test dummy' });
  const orderId = await database.db.transaction().execute((trx) =>
    insertOrder(trx, {
      order: { user_id: null, session_key: null, checkout_id: null, status: 'processing', subtotal: '10.00', total_amount: '10.00', promotion_id: null, shipping_email: 'once@example.com' },
      lines: [{ product_id: p.id, name: p.name, sku: p.sku, price: '10.00', weight: '100.00', quantity: 1 }],
      history: [{ status: 'processing', notes: '' }],
    }),
  );
  const queue = new DbJobQueue(database, { attempts: 3, backoffMs: 100, leaseMs: 1_000, pollMs: 50 });
  await queue.add('send_order_confirmation', { orderId }, { jobId: `order-confirmation:${orderId}` });

  const child = fork(new URL('./fixtures/crashing-worker.ts', import.meta.url), {
    execArgv: ['--import', 'tsx'],
    env: { ...postgresEnv(database.schema, { EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(sink.port), RATE_LIMIT_ENABLED: 'false' }), PATH: process.env.PATH },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await within(
    'the crashing worker to report its email sent',
    new Promise<void>((resolve, reject) => {
      child.on('message', (m) => m === 'sent' && resolve());
      child.on('exit', (code) => reject(new Error(`worker exited early (${code})`)));
    }),
    60_000,
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  child.removeAllListeners('exit');
  child.kill('SIGKILL');
  assert.equal(sink.inbox.length, 1, 'the email went out before the crash');
  const job = () => database.db.selectFrom('jobs').selectAll().where('key', '=', `order-confirmation:${orderId}`).executeTakeFirstOrThrow();
  assert.equal((await job()).status, 'active', 'the dead worker never finished it');

  const mailer = new SmtpMailer({ host: '127.0.0.1', port: sink.port, secure: false, from: 'shop@pasargad.test' });
  const worker = queue.work(taskHandlers({ app, mailer, queue, emailTurn: async () => {} }), { queues: ['orders'], concurrency: 1 });
  try {
    const end = Date.now() + 15_000;
    while ((await job()).status !== 'completed') {
      assert.ok(Date.now() < end, 'the job was taken again and finished');
      await sleep(50);
    }
  } finally {
    await worker.stop();
    mailer.close();
  }
  const done = await job();
  assert.equal(done.attempts, 2, 'run once more, not more');
  assert.equal(sink.inbox.length, 1, 'still one email');
  assert.deepEqual(sink.inbox[0]!.to, ['once@example.com']);
});
