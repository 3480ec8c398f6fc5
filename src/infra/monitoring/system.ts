// The server's health, part by part (the seed's system check): database, each cache store, the
// job queues and the disk, then CPU, memory and event-loop delay. Healthy, degraded (a part the
// shop can run without is down or short) or unhealthy (the database is out of reach).
import { statfs } from 'node:fs/promises';
import { resolve } from 'node:path';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { diskState, nearestFolder } from '../disk.ts';

export type Status = 'healthy' | 'degraded' | 'unhealthy';

export interface Check {
  status: Status;
  [detail: string]: unknown;
}

/** Free disk below this share is degraded: uploads and the embedded database need room. */
const DISK_LOW = 0.1;
/** Event-loop delay p99 above this (ms) is degraded: requests queue behind whatever blocks it. */
const LOOP_SLOW_MS = 200;
const CHECK_TIMEOUT_MS = 2000;

let loop: IntervalHistogram | undefined;
let loopSince = performance.now();

/** Starts the event-loop delay histogram (once per process; it costs a timer every 20 ms). */
export function watchEventLoop(): IntervalHistogram {
  if (!loop) {
    loop = monitorEventLoopDelay({ resolution: 20 });
    loop.enable();
  }
  return loop;
}

export function timeout<T>(p: Promise<T>, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS).unref())]);
}

async function timed(fn: () => Promise<unknown>, what: string): Promise<Check> {
  const started = performance.now();
  try {
    await timeout(fn(), what);
    return { status: 'healthy', response_ms: Math.round((performance.now() - started) * 100) / 100 };
  } catch (err) {
    return { status: 'unhealthy', error: (err as Error).message };
  }
}

export async function databaseCheck(app: FastifyInstance): Promise<Check> {
  return { ...(await timed(() => sql`select 1`.execute(app.database.db), 'database')), kind: app.database.kind };
}

/** The disk a path is on; a folder not made yet (no upload so far) is on its parent's disk. */
async function diskCheck(path: string): Promise<Check> {
  try {
    const at = await nearestFolder(path);
    const s = await statfs(at);
    const total = s.blocks * s.bsize;
    const free = s.bavail * s.bsize;
    const share = total ? free / total : 1;
    // statfs cannot tell a read-only disk, nor can access(2) one that ext4 made read-only after an
    // error (the mount still says rw): a one-byte write can, in the folder itself (never in a
    // parent that stands in for a folder not made yet).
    const readOnly = at === resolve(path) && (await diskState(at).catch(() => undefined))?.fault === 'read_only';
    const low = share < DISK_LOW;
    return { status: low || readOnly ? 'degraded' : 'healthy', path, read_only: readOnly, free_bytes: free, total_bytes: total, free_percent: Math.round(share * 1000) / 10 };
  } catch (err) {
    return { status: 'degraded', path, error: (err as Error).message };
  }
}

export interface SystemReport {
  status: Status;
  timestamp: string;
  uptime_seconds: number;
  checks: Record<string, Check>;
  process: {
    pid: number;
    cpu_percent: number;
    memory: { rss_bytes: number; heap_used_bytes: number; heap_total_bytes: number; external_bytes: number };
    event_loop_delay_ms: { p50: number; p99: number; max: number };
  };
  host: { cpus: number; load_average: number[]; memory_total_bytes: number; memory_free_bytes: number };
}

let lastCpu = { at: performance.now(), usage: process.cpuUsage() };

/** CPU use of this process since the last call (or start), as a share of one core. */
function cpuPercent(): number {
  const now = performance.now();
  const usage = process.cpuUsage();
  const used = (usage.user - lastCpu.usage.user + usage.system - lastCpu.usage.system) / 1000;
  const elapsed = now - lastCpu.at;
  lastCpu = { at: now, usage };
  return elapsed > 0 ? Math.round((used / elapsed) * 1000) / 10 : 0;
}

export async function systemReport(app: FastifyInstance, paths: { data: string; media?: string }): Promise<SystemReport> {
  const cacheStores = await app.caches.stats();
  const [database, queues, disk, media] = await Promise.all([
    databaseCheck(app),
    timeout(app.jobs.stats(), 'queues').then(
      (stats) => ({ status: 'healthy' as Status, queues: stats }),
      (err: Error) => ({ status: 'degraded' as Status, error: err.message }),
    ),
    diskCheck(paths.data),
    paths.media ? diskCheck(paths.media) : undefined,
  ]);
  const checks: Record<string, Check> = { database };
  for (const [name, s] of Object.entries(cacheStores)) {
    checks[`cache_${name}`] = { status: s.available ? 'healthy' : 'degraded', backend: s.backend };
  }
  if (app.limits) checks.rate_limits = { status: app.limits.redisReady || !app.config.limits.redis ? 'healthy' : 'degraded', shared: app.limits.redisReady };
  checks.queues = queues;
  checks.disk = disk;
  if (media) checks.media_disk = media;
  const delay = watchEventLoop();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const loopP99 = ms(delay.percentile(99));
  const loopP50 = ms(delay.percentile(50));
  const loopMax = ms(delay.max);
  // Live figures, not the process's lifetime: the histogram starts again once it is 10 s old.
  if (performance.now() - loopSince > 10_000) {
    delay.reset();
    loopSince = performance.now();
  }
  checks.event_loop = { status: loopP99 > LOOP_SLOW_MS ? 'degraded' : 'healthy', p99_ms: loopP99 };
  const statuses = Object.values(checks).map((c) => c.status);
  const status: Status = database.status === 'unhealthy' ? 'unhealthy' : statuses.some((s) => s !== 'healthy') ? 'degraded' : 'healthy';
  const mem = process.memoryUsage();
  return {
    status,
    timestamp: new Date().toISOString(),
    uptime_seconds: Math.round(process.uptime()),
    checks,
    process: {
      pid: process.pid,
      cpu_percent: cpuPercent(),
      memory: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed, heap_total_bytes: mem.heapTotal, external_bytes: mem.external },
      event_loop_delay_ms: { p50: loopP50, p99: loopP99, max: loopMax },
    },
    host: { cpus: cpus().length, load_average: loadavg().map((l) => Math.round(l * 100) / 100), memory_total_bytes: totalmem(), memory_free_bytes: freemem() },
  };
}
