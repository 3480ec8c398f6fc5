// The job queue interface: BullMQ on Redis in production (bullmq-queue.ts), a durable queue in the
// embedded database otherwise (db-queue.ts). One contract suite runs against both.
import type { QueueName, TaskName, TaskPayloads } from './tasks.ts';

export interface AddOptions {
  /** A job with this id already added (waiting, running or finished and not yet trimmed) adds nothing. */
  jobId?: string;
  delayMs?: number;
  /** Runs in all, first included (default JOBS_ATTEMPTS). */
  attempts?: number;
}

export interface Job<K extends TaskName = TaskName> {
  id: string;
  name: K;
  queue: QueueName;
  payload: TaskPayloads[K];
  /** 1 on the first run. */
  attempt: number;
}

export type Handler<K extends TaskName = TaskName> = (job: Job<K>) => Promise<void>;
export type Handlers = { [K in TaskName]?: Handler<K> };

export interface QueueStats {
  queue: QueueName;
  waiting: number;
  active: number;
  delayed: number;
  completed: number;
  failed: number;
}

export interface WorkerOptions {
  queues: readonly QueueName[];
  concurrency: number;
}

/** A running worker: `stop()` takes no new jobs, lets running ones finish (or returns them to the queue), then resolves. */
export interface Worker {
  stop(graceMs?: number): Promise<void>;
}

export interface Schedule {
  task: TaskName;
  /** A cron pattern (UTC), e.g. `0 * * * *` for hourly. */
  pattern: string;
}

export interface JobQueue {
  readonly kind: 'bullmq' | 'database';
  add<K extends TaskName>(name: K, payload: TaskPayloads[K], options?: AddOptions): Promise<void>;
  work(handlers: Handlers, options: WorkerOptions): Worker;
  /**
   * Makes the schedules current and enqueues each tick exactly once, however many schedulers run
   * (BullMQ job schedulers; in the database, a conditional move of each schedule's next run).
   */
  schedule(schedules: readonly Schedule[]): Promise<{ stop(): Promise<void> }>;
  stats(): Promise<QueueStats[]>;
  close(): Promise<void>;
}
