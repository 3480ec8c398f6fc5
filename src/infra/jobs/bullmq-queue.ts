// Production jobs: BullMQ on Redis (JOBS_REDIS_URL). Retries with exponential backoff, finished
// jobs trimmed by age and count, job schedulers for the scheduled tasks (one job per tick however
// many schedulers upsert them), graceful worker shutdown. Each Queue and Worker gets its own
// connection from openRedis (a server, Sentinel or a Cluster), closed with it. Queue depths (the
// monitoring endpoints') are counted on one more connection that fails fast while Redis is down.
import { Queue, Worker as BullWorker } from 'bullmq';
import type { RedisTarget } from '../../config.ts';
import { openRedis, type RedisConnection } from '../redis.ts';
import type { AddOptions, Handlers, Job, JobQueue, QueueStats, Schedule, Worker, WorkerOptions } from './queue.ts';
import { QUEUES, TASK_QUEUE, type QueueName, type TaskName, type TaskPayloads } from './tasks.ts';

export interface BullQueueOptions {
  redis: RedisTarget;
  /**
   * Prefix of every BullMQ key (tests share one Redis). In a Cluster it is wrapped in braces
   * here, so that each queue's keys share a hash slot, as BullMQ's scripts require.
   */
  prefix: string;
  attempts: number;
  backoffMs: number;
  keepCompletedS: number;
  keepFailedS: number;
  /** How long a worker's hold on a job lasts unless renewed; a dead worker's jobs return after it (default 30 s). */
  lockMs?: number;
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export class BullJobQueue implements JobQueue {
  readonly kind = 'bullmq';
  private readonly queues = new Map<QueueName, { queue: Queue; connection: RedisConnection }>();
  /** What stats() counts with, made on its first call. */
  private counting?: { connection: RedisConnection; queues: Map<QueueName, Queue> };
  private readonly prefix: string;

  constructor(private readonly o: BullQueueOptions) {
    this.prefix = o.redis.kind === 'cluster' ? `{${o.prefix}}` : o.prefix;
  }

  /** BullMQ's workers block on Redis and must never give up on a command. */
  private connect(): RedisConnection {
    return openRedis(this.o.redis, { commandTimeoutMs: null, maxRetriesPerRequest: null });
  }

  private queue(name: QueueName): Queue {
    let q = this.queues.get(name)?.queue;
    if (!q) {
      const connection = this.connect();
      q = new Queue(name, {
        connection,
        prefix: this.prefix,
        defaultJobOptions: {
          attempts: this.o.attempts,
          backoff: { type: 'exponential', delay: this.o.backoffMs },
          removeOnComplete: { age: this.o.keepCompletedS, count: 10_000 },
          removeOnFail: { age: this.o.keepFailedS },
        },
      });
      q.on('error', (err) => this.o.log?.error({ err: err.message, queue: name }, 'jobs: queue error'));
      this.queues.set(name, { queue: q, connection });
    }
    return q;
  }

  async add<K extends TaskName>(name: K, payload: TaskPayloads[K], options: AddOptions = {}): Promise<void> {
    await this.queue(TASK_QUEUE[name]).add(name, payload, {
      ...(options.jobId ? { jobId: options.jobId.replaceAll(':', '_') } : {}),
      ...(options.delayMs ? { delay: options.delayMs } : {}),
      ...(options.attempts ? { attempts: options.attempts } : {}),
    });
  }

  work(handlers: Handlers, options: WorkerOptions): Worker {
    const connections: RedisConnection[] = [];
    const workers = options.queues.map((queueName) => {
      const connection = this.connect();
      connections.push(connection);
      const w = new BullWorker(
        queueName,
        async (job) => {
          const handler = handlers[job.name as TaskName] as ((j: Job) => Promise<void>) | undefined;
          if (!handler) throw new Error(`no handler for ${job.name}`);
          await handler({ id: String(job.id), name: job.name as TaskName, queue: queueName, payload: job.data, attempt: job.attemptsMade + 1 });
        },
        { connection, prefix: this.prefix, concurrency: options.concurrency, lockDuration: this.o.lockMs ?? 30_000,
          stalledInterval: this.o.lockMs ?? 30_000,
          // A job whose worker died is run again; effects make that safe (effects.ts), so a
          // second or third crash under one job need not fail it for good (BullMQ's default: 1).
          maxStalledCount: 5,
        },
      );
      w.on('failed', (job, err) => {
        if (!job) return;
        const final = job.attemptsMade >= (job.opts.attempts ?? 1);
        this.o.log?.[final ? 'error' : 'warn']({ job: job.id, task: job.name, attempt: job.attemptsMade, err: err.message }, final ? 'job failed for good' : 'job failed; retrying');
      });
      w.on('error', (err) => this.o.log?.error({ err: err.message, queue: queueName }, 'jobs: worker error'));
      return w;
    });
    return {
      stop: async (graceMs = 30_000) => {
        // close() takes no new jobs and waits for the running ones. Past the grace period this
        // returns while they finish; if the process exits first, BullMQ's stalled-job check
        // hands them to another worker once their lock runs out. Never lost.
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
        const closed = Promise.all(workers.map((w) => w.close().catch(() => undefined))).then(() => Promise.all(connections.map(quit)));
        await Promise.race([closed, grace]);
        clearTimeout(timer);
      },
    };
  }

  async schedule(schedules: readonly Schedule[]): Promise<{ stop(): Promise<void> }> {
    for (const s of schedules) {
      await this.queue(TASK_QUEUE[s.task]).upsertJobScheduler(`schedule_${s.task}`, { pattern: s.pattern, tz: 'UTC' }, { name: s.task, data: {} });
    }
    return { stop: async () => {} };
  }

  /**
   * The counts run on their own connection, made without an offline queue: the queues' connections
   * never give up on a command (maxRetriesPerRequest null), so a count sent on them during an outage
   * waited, with every later one, until Redis came back. Here it fails at once, and nothing is left
   * queued. The Queues here only read: no metadata written, no version check (an INFO that could
   * fail once and break the Queue for good).
   */
  async stats(): Promise<QueueStats[]> {
    const counting = (this.counting ??= { connection: openRedis(this.o.redis, { enableOfflineQueue: false }), queues: new Map() });
    // BullMQ waits for 'ready' before a Queue's first command, for ever while Redis is down: the
    // Queues are made on a ready connection only.
    await whenReady(counting.connection);
    return Promise.all(
      QUEUES.map(async (queue) => {
        let q = counting.queues.get(queue);
        if (!q) {
          q = new Queue(queue, { connection: counting.connection, prefix: this.prefix, skipMetasUpdate: true, skipVersionCheck: true });
          // A failed count rejects to its caller; an unheard 'error' would be printed to stderr.
          q.on('error', () => {});
          counting.queues.set(queue, q);
        }
        const c = await q.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
        return { queue, waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0 };
      }),
    );
  }

  async close(): Promise<void> {
    const closeCounting = async ({ connection, queues }: NonNullable<BullJobQueue['counting']>) => {
      await Promise.all([...queues.values()].map((q) => q.close().catch(() => undefined)));
      await quit(connection);
    };
    await Promise.all([
      ...[...this.queues.values()].map(async ({ queue, connection }) => (await queue.close(), await quit(connection))),
      this.counting && closeCounting(this.counting),
    ]);
  }
}

/**
 * Resolves once `c` is ready. While it is down it rejects at once, unless a connection attempt is
 * under way: then with that attempt's outcome (refused at once, or connectTimeout).
 */
function whenReady(c: RedisConnection): Promise<void> {
  if (c.status === 'ready') return Promise.resolve();
  if (c.status !== 'connecting' && c.status !== 'connect') return Promise.reject(new Error(`jobs: Redis is not connected (${c.status})`));
  return new Promise((resolve, reject) => {
    const settle = () => {
      c.off('ready', settle).off('close', settle).off('end', settle);
      if (c.status === 'ready') resolve();
      else reject(new Error(`jobs: Redis is not connected (${c.status})`));
    };
    c.on('ready', settle).on('close', settle).on('end', settle);
  });
}

/** BullMQ leaves a connection it was given open: its owner quits it once BullMQ is done. */
async function quit(c: RedisConnection): Promise<void> {
  await c.quit().catch(() => c.disconnect());
}
