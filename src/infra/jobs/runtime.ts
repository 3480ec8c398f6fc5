// Putting the jobs together: the queue for a configuration, the schedules, which domain events
// enqueue which tasks, and running workers and the scheduler (inside the embedded server, or as
// `pasargad worker` / `pasargad scheduler`).
import type { FastifyInstance } from 'fastify';
import { RateLimiterMemory, RateLimiterQueue, RateLimiterRedis } from 'rate-limiter-flexible';
import type { Config } from '../../config.ts';
import type { Database } from '../../db/database.ts';
import type { EventBus } from '../events.ts';
import { openRedis } from '../redis.ts';
import { OutboxMailer, SmtpMailer, type Mailer } from '../email/mailer.ts';
import { BullJobQueue } from './bullmq-queue.ts';
import { DbJobQueue } from './db-queue.ts';
import { taskHandlers } from './handlers.ts';
import type { JobQueue, Schedule, Worker } from './queue.ts';
import { QUEUES, type QueueName, type TaskName } from './tasks.ts';

type Log = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

export function openQueue(config: Config, database: Database, o: { log?: Log; prefix?: string } = {}): JobQueue {
  const j = config.jobs;
  if (j.redis) {
    return new BullJobQueue({ redis: j.redis, prefix: `${o.prefix ?? config.redis.keyPrefix}bull`, attempts: j.attempts, backoffMs: j.backoffMs, lockMs: j.lockMs, keepCompletedS: j.keepCompleted, keepFailedS: j.keepFailed, log: o.log });
  }
  return new DbJobQueue(database, { attempts: j.attempts, backoffMs: j.backoffMs, leaseMs: j.lockMs, pollMs: 1_000, log: o.log });
}

export function schedulesOf(config: Config): Schedule[] {
  return Object.entries(config.jobs.schedules).map(([task, pattern]) => ({ task: task as TaskName, pattern }));
}

/** Longest a write's response waits for its jobs to be enqueued (see wireJobEvents). */
export const ENQUEUE_WAIT_MS = 1000;

/** Domain events that start work: published after commit, so a job never sees a rolled-back write. */
export function wireJobEvents(events: EventBus, queue: JobQueue, log?: Log): void {
  // The write that published the event waits for its jobs to be added, but not for an outage:
  // while the queue's Redis is away BullMQ keeps the add in its connection's offline queue and
  // sends it on reconnect, so past ENQUEUE_WAIT_MS the response goes out and the add finishes
  // behind it (a payment answered, its confirmation email queued once Redis is back).
  const add = (p: Promise<void>) => {
    const added = p.catch((err: unknown) => log?.error({ err }, 'jobs: could not enqueue'));
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, ENQUEUE_WAIT_MS).unref()));
    return Promise.race([added, waited]).finally(() => clearTimeout(timer));
  };
  events.on('order.paid', ({ id }) => add(queue.add('send_order_confirmation', { orderId: id }, { jobId: `order-confirmation:${id}` })));
  events.on('order.status_changed', ({ id, to }) => {
    if (to === 'shipped' || to === 'delivered') return add(queue.add('send_order_status_email', { orderId: id, status: to }, { jobId: `order-${to}:${id}` }));
  });
  // Stock that moves is checked soon, not only on the hourly tick: at most one check per five
  // minutes (the job id names the slot), and the check itself names each product once.
  const checkStock = () => {
    // Runs at the end of its slot, so it sees every change made during the slot.
    const slot = Math.floor(Date.now() / 300_000);
    return add(queue.add('check_low_stock', {}, { jobId: `low-stock-soon:${slot}`, delayMs: (slot + 1) * 300_000 - Date.now() }));
  };
  events.on('stock.changed', checkStock);
  events.on('product.updated', ({ fields }) => (fields.includes('stock_quantity') || fields.includes('low_stock_threshold') ? checkStock() : undefined));
}

export function openMailer(config: Config, log?: Log): Mailer {
  const e = config.email;
  if (e.host) return new SmtpMailer({ host: e.host, port: e.port, secure: e.secure, user: e.user, password: e.password, from: e.from }, log);
  return new OutboxMailer(`${config.dataDir}/outbox`, e.from, log);
}

/** EMAIL_RATE across every worker (shared through the jobs' Redis), or in this process. */
function emailTurns(config: Config): { turn: () => Promise<void>; close(): void } {
  const { points, duration } = config.email.rate;
  // Not connected: the in-process insurance limiter answers at once, rather than a queued command.
  const redis = config.jobs.redis ? openRedis(config.jobs.redis, { enableOfflineQueue: false }) : undefined;
  const limiter = redis
    ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `${config.redis.keyPrefix}pasargad:email`, points, duration, insuranceLimiter: new RateLimiterMemory({ points, duration }) })
    : new RateLimiterMemory({ points, duration });
  const queue = new RateLimiterQueue(limiter, { maxQueueSize: 10_000 });
  return {
    turn: async () => {
      await queue.removeTokens(1);
    },
    close: () => redis?.disconnect(),
  };
}

export interface RunningJobs {
  stop(): Promise<void>;
}

/** Workers for `queues` (and, with `scheduler`, the schedules) inside this process. */
export async function runJobs(app: FastifyInstance, o: { queues?: readonly QueueName[]; concurrency?: number; workers?: boolean; scheduler?: boolean } = {}): Promise<RunningJobs> {
  const config = app.config;
  const mailer = openMailer(config, app.log);
  const email = emailTurns(config);
  let worker: Worker | undefined;
  if (o.workers !== false) {
    const handlers = taskHandlers({ app, mailer, queue: app.jobs, emailTurn: email.turn });
    worker = app.jobs.work(handlers, { queues: o.queues ?? QUEUES, concurrency: o.concurrency ?? config.jobs.concurrency });
  }
  const clock = o.scheduler ? await app.jobs.schedule(schedulesOf(config)) : undefined;
  return {
    async stop() {
      await clock?.stop();
      await worker?.stop();
      mailer.close();
      email.close();
    },
  };
}
