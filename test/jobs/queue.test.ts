// One contract for the job queues, run against each: the database queue on PGlite and on
// PostgreSQL, and BullMQ on the real Redis. Jobs run once each across workers, retry with
// backoff, fail for good with the reason kept, deduplicate by id, and a scheduled task is
// enqueued once per tick however many schedulers run. BullMQ's queue depths (the monitoring
// endpoints') fail at once while Redis is down, instead of waiting in a connection for its return.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { BullJobQueue } from '../../src/infra/jobs/bullmq-queue.ts';
import { DbJobQueue } from '../../src/infra/jobs/db-queue.ts';
import type { Job, JobQueue, QueueStats } from '../../src/infra/jobs/queue.ts';
import { openTestDatabase, type BackendName } from '../helpers/db.ts';
import { dropPrefix, uniquePrefix } from '../helpers/redis.ts';
import { startRestartableRedis, type RestartableRedis } from '../helpers/redis-servers.ts';

const REDIS = 'redis://127.0.0.1:6379/0';

/** Waits until `check` holds, polling; fails after `ms`. */
async function until(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting until ${String(check).replace(/\s+/g, ' ')}`);
    await sleep(25);
  }
}

type Kind = BackendName | 'bullmq';

/** The database behind a database queue (the test reads its rows). */
const dbOf = (q: JobQueue) => (q as unknown as { database: { db: import('../../src/db/database.ts').Db } }).database.db;

for (const kind of ['pglite', 'postgres', 'bullmq'] as Kind[]) {
  describe(`job queue [${kind}]`, () => {
    let make: () => JobQueue;
    const made: JobQueue[] = [];
    let cleanup = async () => {};
    before(async () => {
      const options = { attempts: 3, backoffMs: 100 };
      if (kind === 'bullmq') {
        const prefix = uniquePrefix();
        make = () => new BullJobQueue({ redis: { kind: 'server', url: REDIS }, prefix: `${prefix}bull`, keepCompletedS: 3600, keepFailedS: 3600, lockMs: 1_000, ...options });
        cleanup = () => dropPrefix(prefix, REDIS);
      } else {
        const database = await openTestDatabase(kind);
        make = () => new DbJobQueue(database, { leaseMs: 2_000, pollMs: 50, ...options });
        cleanup = () => database.drop();
      }
    });
    after(async () => {
      for (const q of made) await q.close();
      await cleanup();
    });
    const queue = () => {
      const q = make();
      made.push(q);
      return q;
    };

    test('jobs run once each across two workers, with their payload; a repeated job id adds nothing', async () => {
      const q = queue();
      const seen: number[] = [];
      const handlers = {
        send_order_confirmation: async (job: Job<'send_order_confirmation'>) => {
          assert.equal(job.queue, 'orders');
          assert.equal(job.attempt, 1);
          seen.push(job.payload.orderId);
        },
      };
      for (let i = 1; i <= 30; i++) await q.add('send_order_confirmation', { orderId: i }, { jobId: `confirm:${i}` });
      await q.add('send_order_confirmation', { orderId: 1 }, { jobId: 'confirm:1' });
      const [a, b] = [q.work(handlers, { queues: ['orders'], concurrency: 2 }), queue().work(handlers, { queues: ['orders'], concurrency: 2 })];
      await until(() => seen.length >= 30);
      await sleep(300);
      await Promise.all([a.stop(), b.stop()]);
      assert.deepEqual([...seen].sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i + 1));
      const orders = (await q.stats()).find((s) => s.queue === 'orders')!;
      assert.equal(orders.completed, 30);
      assert.equal(orders.waiting + orders.active + orders.failed, 0);
    });

    test('a failing job is retried with growing waits, then succeeds; one that keeps failing fails for good', async () => {
      const q = queue();
      const runs: { id: number; attempt: number; at: number }[] = [];
      const worker = q.work(
        {
          send_order_status_email: async (job) => {
            runs.push({ id: job.payload.orderId, attempt: job.attempt, at: Date.now() });
            if (job.payload.orderId === 2 || job.attempt < 3) throw new Error(`smtp down (${job.attempt})`);
          },
        },
        { queues: ['orders'], concurrency: 1 },
      );
      await q.add('send_order_status_email', { orderId: 1, status: 'shipped' });
      await q.add('send_order_status_email', { orderId: 2, status: 'shipped' });
      await until(async () => {
        const s = (await q.stats()).find((x) => x.queue === 'orders')!;
        return s.failed === 1 && runs.filter((r) => r.id === 1).length === 3;
      });
      await worker.stop();
      const first = runs.filter((r) => r.id === 1);
      assert.deepEqual(first.map((r) => r.attempt), [1, 2, 3]);
      assert.ok(first[2]!.at - first[1]!.at >= first[1]!.at - first[0]!.at - 20, 'the second wait is not shorter than the first');
      assert.ok(first[1]!.at - first[0]!.at >= 90, 'retries wait');
      assert.equal(runs.filter((r) => r.id === 2).length, 3, 'no more runs than JOBS_ATTEMPTS');
    });

    test('a delayed job waits; a stopping worker lets its running job finish', async () => {
      const q = queue();
      const done: string[] = [];
      const worker = q.work(
        {
          check_low_stock: async () => {
            await sleep(400);
            done.push('slow');
          },
          warm_cache: async () => {
            done.push('delayed');
          },
        },
        { queues: ['products', 'default'], concurrency: 2 },
      );
      const added = Date.now();
      await q.add('warm_cache', {}, { delayMs: 600 });
      await q.add('check_low_stock', {});
      await until(() => done.includes('delayed'));
      assert.ok(Date.now() - added >= 550, 'not before its delay');
      await q.add('check_low_stock', {});
      await sleep(150);
      await worker.stop(5_000);
      assert.equal(done.filter((d) => d === 'slow').length, 2, 'the job running at stop finished');
    });

    test('a job still running when the grace period ends is not lost: stop returns, and the job is finished (database: by another worker)', async () => {
      const q = queue();
      let finished = 0;
      let started = 0;
      const products = async () => (await q.stats()).find((s) => s.queue === 'products')!;
      const base = await products();
      const slow = q.work({ check_low_stock: async () => void (started++, await sleep(1_500), finished++) }, { queues: ['products'], concurrency: 1 });
      await q.add('check_low_stock', {});
      await until(() => started === 1);
      await slow.stop(100);
      const after = await products();
      assert.equal(after.completed, base.completed, 'not done');
      assert.equal(after.active + after.waiting, 1, 'not lost');
      const next = q.work({ check_low_stock: async () => void finished++ }, { queues: ['products'], concurrency: 1 });
      await until(async () => (await products()).completed === base.completed + 1, 30_000);
      await next.stop();
      assert.ok(finished >= 1, 'one of the workers ran it to the end');
    });

    test('two schedulers enqueue each tick of a schedule once', async () => {
      const q1 = queue();
      const q2 = queue();
      const ran: string[] = [];
      const worker = q1.work({ trim_jobs: async (job) => void ran.push(job.id) }, { queues: ['default'], concurrency: 2 });
      // Every second (cron-parser's six-field form), from two schedulers at once.
      const [s1, s2] = await Promise.all([q1.schedule([{ task: 'trim_jobs', pattern: '* * * * * *' }]), q2.schedule([{ task: 'trim_jobs', pattern: '* * * * * *' }])]);
      await sleep(4_500);
      await Promise.all([s1.stop(), s2.stop()]);
      await sleep(1_200);
      await worker.stop();
      assert.ok(ran.length >= 3 && ran.length <= 6, `one run per tick: ${ran.length} in 4.5 s`);
      assert.equal(new Set(ran).size, ran.length, 'no job ran twice');
      // The tick each run was for (a late tick may run close to the next one; that is fine).
      const dues =
        kind === 'bullmq'
          ? ran.map((id) => Number(/(\d{13})$/.exec(id)?.[1]))
          : (await dbOf(q1).selectFrom('jobs').select('key').where('id', 'in', ran.map(Number)).execute()).map((r) => Number(r.key!.split(':').at(-1)));
      dues.sort((a, b) => a - b);
      assert.ok(dues.every((d) => Number.isFinite(d) && d % 1000 === 0), `ticks on whole seconds: ${dues.join(', ')}`);
      for (let i = 1; i < dues.length; i++) assert.ok(dues[i]! - dues[i - 1]! >= 1000, `each tick once: ${dues.join(', ')}`);
    });
  });
}

describe('BullMQ queue depths while Redis is down', () => {
  let redis: RestartableRedis;
  before(async () => {
    redis = await startRestartableRedis();
  });
  after(() => redis.stop());

  /** Clients connected to the test server (CLIENT LIST), this count's own connection left out. */
  async function clients(): Promise<number> {
    const probe = new Redis(redis.url);
    try {
      return String(await probe.client('LIST')).trim().split('\n').length - 1;
    } finally {
      probe.disconnect();
    }
  }

  /** stats() within `ms`, or 'pending': a count that waits for Redis leaves its command queued. */
  async function statsWithin(q: JobQueue, ms: number): Promise<{ ms: number; result: 'pending' | 'rejected' | QueueStats[] }> {
    const t0 = performance.now();
    const settled = q.stats().then((s) => s, () => 'rejected' as const);
    const result = await Promise.race([settled, sleep(ms).then(() => 'pending' as const)]);
    return { ms: performance.now() - t0, result };
  }

  test('stats() fails at once during the outage, leaves nothing queued, counts again after it; close() closes its connection', async () => {
    const baseline = await clients();
    const options = { redis: { kind: 'server', url: `${redis.url}/0` } as const, prefix: 'outage', attempts: 1, backoffMs: 100, keepCompletedS: 60, keepFailedS: 60 };
    const early = new BullJobQueue(options);
    await early.add('warm_cache', {});
    assert.equal((await early.stats()).find((s) => s.queue === 'default')!.waiting, 1);
    await redis.down();
    try {
      // Counted before (its connection was ready), and counted first now (it never was).
      const late = new BullJobQueue(options);
      for (const q of [early, late]) {
        for (let i = 0; i < 3; i++) {
          const { ms, result } = await statsWithin(q, 1_000);
          assert.equal(result, 'rejected', 'a count while Redis is down fails, it does not wait for Redis');
          assert.ok(ms < 500, `failed in ${Math.round(ms)} ms`);
        }
      }
      await late.close();
    } finally {
      await redis.up();
    }
    // The queue's own connection reconnects in the background: counts answer again once it has.
    await until(async () => Array.isArray((await statsWithin(early, 1_000)).result));
    assert.equal((await early.stats()).find((s) => s.queue === 'default')!.waiting, 1, 'the job queued before the outage is counted');
    await early.close();
    await until(async () => (await clients()) === baseline, 5_000);
  });
});
