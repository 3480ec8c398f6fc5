// The embedded job queue: jobs are rows in the embedded database, so they survive a restart.
// Written by hand because the queue must live in the same database as the shop (PGlite in
// process) and go through its driver; the pattern is the usual one for PostgreSQL queues: a
// worker claims the oldest ready row with FOR UPDATE SKIP LOCKED and holds a lease on it; a job
// whose worker died is taken again once its lease runs out (at least once, so jobs are written to
// be safe to run twice: see effects.ts).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { sql } from 'kysely';
import type { Database } from '../../db/database.ts';
import { nextRun } from './cron.ts';
import type { AddOptions, Handlers, Job, JobQueue, QueueStats, Schedule, Worker, WorkerOptions } from './queue.ts';
import { QUEUES, TASK_QUEUE, type QueueName, type TaskName, type TaskPayloads } from './tasks.ts';

export interface DbQueueOptions {
  /** Runs per job, first included. */
  attempts: number;
  /** First retry after this long; each further one waits twice as long. */
  backoffMs: number;
  /** How long a worker holds a job before another may take it (renewed while it runs). */
  leaseMs: number;
  /** How often an idle worker looks for new jobs (jobs added in this process wake it at once). */
  pollMs: number;
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

interface JobRow {
  id: string | number;
  /** This claim's token: renewing and finishing need it, so a run that lost its lease changes nothing. */
  lease: string;
  queue: QueueName;
  name: TaskName;
  payload: unknown;
  attempts: number;
  max_attempts: number;
}

const sleep = (ms: number, wake: EventEmitter, signal: { stopped: boolean }) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      wake.off('job', done);
      wake.off('stop', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    wake.once('job', done);
    wake.once('stop', done);
    if (signal.stopped) done();
  });

export class DbJobQueue implements JobQueue {
  readonly kind = 'database';
  private readonly wake = new EventEmitter();

  constructor(
    private readonly database: Database,
    private readonly o: DbQueueOptions,
  ) {
    this.wake.setMaxListeners(0);
  }

  async add<K extends TaskName>(name: K, payload: TaskPayloads[K], options: AddOptions = {}): Promise<void> {
    const runAt = new Date(Date.now() + (options.delayMs ?? 0)).toISOString();
    await this.database.db
      .insertInto('jobs')
      .values({ queue: TASK_QUEUE[name], name, payload: JSON.stringify(payload), key: options.jobId ?? null, max_attempts: options.attempts ?? this.o.attempts, run_at: runAt })
      .onConflict((oc) => oc.column('key').where('key', 'is not', null).doNothing())
      .execute();
    this.wake.emit('job');
  }

  /** Takes the oldest ready job of these queues, or nothing. */
  private async claim(queues: readonly QueueName[]): Promise<JobRow | undefined> {
    const lease = this.o.leaseMs / 1000;
    const { rows } = await sql<JobRow>`
      update jobs set status = 'active', attempts = attempts + 1, locked_until = now() + make_interval(secs => ${lease}), lease = ${randomUUID()}
      where id = (select id from jobs where status = 'waiting' and run_at <= now() and queue in (${sql.join([...queues])})
                  order by run_at, id limit 1 for update skip locked)
      returning id, lease, queue, name, payload, attempts, max_attempts`.execute(this.database.db);
    return rows[0];
  }

  /** Jobs whose worker stopped renewing its lease (it died) go back to waiting. */
  private async reclaim(): Promise<void> {
    const { rows } = await sql<{ id: string }>`
      update jobs set status = 'waiting', locked_until = null, lease = null, last_error = 'worker lost (lease ran out)'
      where status = 'active' and locked_until < now() returning id`.execute(this.database.db);
    if (rows.length) this.o.log?.warn({ jobs: rows.map((r) => r.id) }, 'jobs: taken back from a worker that stopped');
  }

  private async finish(row: JobRow, err: unknown): Promise<void> {
    const db = this.database.db;
    if (err === undefined) {
      await sql`update jobs set status = 'completed', finished_at = now(), locked_until = null, lease = null, last_error = null where id = ${row.id} and lease = ${row.lease}`.execute(db);
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    if (row.attempts >= row.max_attempts) {
      this.o.log?.error({ job: row.id, task: row.name, attempts: row.attempts, err: message }, 'job failed for good');
      await sql`update jobs set status = 'failed', finished_at = now(), locked_until = null, lease = null, last_error = ${message} where id = ${row.id} and lease = ${row.lease}`.execute(db);
      return;
    }
    const delay = (this.o.backoffMs * 2 ** (row.attempts - 1)) / 1000;
    this.o.log?.warn({ job: row.id, task: row.name, attempt: row.attempts, retryInS: delay, err: message }, 'job failed; retrying');
    await sql`update jobs set status = 'waiting', locked_until = null, lease = null, last_error = ${message}, run_at = now() + make_interval(secs => ${delay})
              where id = ${row.id} and lease = ${row.lease}`.execute(db);
  }

  work(handlers: Handlers, options: WorkerOptions): Worker {
    const state = { stopped: false };
    const running = new Map<string, JobRow>();
    const runOne = async (row: JobRow) => {
      const id = String(row.id);
      running.set(id, row);
      // Renews the lease while the job runs, so a long job is not taken by another worker.
      const renew = setInterval(() => {
        void sql`update jobs set locked_until = now() + make_interval(secs => ${this.o.leaseMs / 1000}) where id = ${row.id} and lease = ${row.lease}`
          .execute(this.database.db)
          .catch(() => undefined);
      }, this.o.leaseMs / 3);
      let failure: unknown;
      try {
        const handler = handlers[row.name] as ((job: Job) => Promise<void>) | undefined;
        if (!handler) throw new Error(`no handler for ${row.name}`);
        await handler({ id, name: row.name, queue: row.queue, payload: row.payload as never, attempt: row.attempts });
      } catch (err) {
        failure = err ?? new Error('job failed');
      } finally {
        clearInterval(renew);
      }
      running.delete(id);
      await this.finish(row, failure).catch((err: unknown) => this.o.log?.error({ err, job: id }, 'jobs: could not record a result'));
    };
    const loop = async () => {
      while (!state.stopped) {
        let row: JobRow | undefined;
        try {
          row = await this.claim(options.queues);
        } catch (err) {
          this.o.log?.error({ err }, 'jobs: could not take a job');
        }
        if (!row) {
          await sleep(this.o.pollMs, this.wake, state);
          continue;
        }
        await runOne(row);
      }
    };
    const sweeper = setInterval(() => void this.reclaim().catch(() => undefined), this.o.leaseMs);
    sweeper.unref();
    const loops = Array.from({ length: options.concurrency }, () => loop());
    return {
      stop: async (graceMs = 30_000) => {
        state.stopped = true;
        clearInterval(sweeper);
        this.wake.emit('stop');
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
        const outcome = await Promise.race([Promise.all(loops).then(() => 'done' as const), grace]);
        clearTimeout(timer);
        if (outcome === 'late' && running.size) {
          // Still running after the grace period: back to the queue for another worker.
          const ids = [...running.keys()];
          const leases = [...running.values()].map((r) => r.lease);
          // Their runs go on in this process until it exits, but no longer own the jobs.
          await sql`update jobs set status = 'waiting', locked_until = null, lease = null, attempts = greatest(attempts - 1, 0) where lease in (${sql.join(leases)})`.execute(this.database.db);
          this.o.log?.warn({ jobs: ids }, 'jobs: returned to the queue at shutdown');
        }
      },
    };
  }

  async schedule(schedules: readonly Schedule[]): Promise<{ stop(): Promise<void> }> {
    const db = this.database.db;
    const now = new Date();
    for (const s of schedules) {
      await db
        .insertInto('job_schedules')
        .values({ name: s.task, pattern: s.pattern, next_run_at: nextRun(s.pattern, now).toISOString() })
        .onConflict((oc) =>
          oc.column('name').doUpdateSet({
            pattern: (eb) => eb.ref('excluded.pattern'),
            // A changed pattern starts from its own next tick; an unchanged one keeps its place.
            next_run_at: sql`case when job_schedules.pattern = excluded.pattern then job_schedules.next_run_at else excluded.next_run_at end`,
          }),
        )
        .execute();
    }
    const names = schedules.map((s) => s.task);
    let ticking: Promise<void> = Promise.resolve();
    const tick = async () => {
      const due = await db.selectFrom('job_schedules').select(['name', 'pattern', sql<string>`next_run_at::text`.as('due')]).where('name', 'in', names).where('next_run_at', '<=', sql<string>`now()`).execute();
      for (const d of due) {
        // Whoever moves next_run_at from the due time enqueues the tick; the others find it moved.
        await db.transaction().execute(async (trx) => {
          const next = nextRun(d.pattern, new Date()).toISOString();
          const moved = await sql`update job_schedules set next_run_at = ${next}, last_run_at = next_run_at where name = ${d.name} and next_run_at = ${d.due}::timestamptz returning name`.execute(trx);
          if (moved.rows.length !== 1) return;
          const at = Date.parse(d.due.replace(' ', 'T').replace(/\+00$/, 'Z'));
          await trx
            .insertInto('jobs')
            .values({ queue: TASK_QUEUE[d.name as TaskName], name: d.name, payload: '{}', key: `schedule:${d.name}:${Number.isNaN(at) ? d.due : at}`, max_attempts: this.o.attempts })
            .onConflict((oc) => oc.column('key').where('key', 'is not', null).doNothing())
            .execute();
        });
        this.wake.emit('job');
      }
    };
    const timer = setInterval(() => {
      ticking = ticking.then(tick).catch((err: unknown) => this.o.log?.error({ err }, 'scheduler: tick failed'));
    }, 1000);
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await ticking;
      },
    };
  }

  async stats(): Promise<QueueStats[]> {
    const rows = await sql<{ queue: QueueName; status: string; delayed: boolean; n: number }>`
      select queue, status, (status = 'waiting' and run_at > now()) as delayed, count(*)::int as n from jobs group by 1, 2, 3`.execute(this.database.db);
    return QUEUES.map((queue) => {
      const of = (status: string, delayed = false) => rows.rows.filter((r) => r.queue === queue && r.status === status && r.delayed === delayed).reduce((a, r) => a + r.n, 0);
      return { queue, waiting: of('waiting'), active: of('active'), delayed: of('waiting', true), completed: of('completed'), failed: of('failed') };
    });
  }

  /** Removes finished jobs older than these ages (the trim_jobs task). */
  async trim(keepCompletedMs: number, keepFailedMs: number): Promise<number> {
    const r = await sql`delete from jobs where (status = 'completed' and finished_at < now() - make_interval(secs => ${keepCompletedMs / 1000}))
                        or (status = 'failed' and finished_at < now() - make_interval(secs => ${keepFailedMs / 1000}))`.execute(this.database.db);
    return Number(r.numAffectedRows ?? 0);
  }

  async close(): Promise<void> {
    this.wake.emit('stop');
  }
}
