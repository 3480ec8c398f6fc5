// Prometheus metrics (prom-client), served at GET /metrics to the addresses METRICS_ALLOW names
// (or to a caller with METRICS_TOKEN): request durations by route and status, cache hits and
// misses per store, SQL statement durations, queue depths, rate-limit refusals, IP blocks, and
// Node's own (event loop, heap, GC). Counts kept elsewhere (caches, queues) are read at scrape
// time, so the request path pays only for the histogram.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { LATENCY_BOUNDS_MS, type RequestStats } from './requests.ts';
import { timeout } from './system.ts';

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

let defaults: Registry | undefined;

export class Metrics {
  private readonly own = new Registry();
  /** This app's metrics and the process's (Node's own). */
  get registry(): Registry {
    return Registry.merge([this.own, defaults!]) as Registry;
  }
  readonly statements: Histogram<'target'>;
  readonly rateLimited: Counter<'limit'>;
  readonly ipBlocks: Counter;

  constructor(app: FastifyInstance, requests: RequestStats) {
    const registers = [this.own];
    defaults ??= (() => {
      // Once per process: each call starts its own event-loop monitor and GC observer.
      const r = new Registry();
      collectDefaultMetrics({ register: r, prefix: 'pasargad_' });
      return r;
    })();
    this.own.registerMetric(requestHistogram(requests));
    this.statements = new Histogram({ name: 'pasargad_sql_statement_duration_seconds', help: 'SQL statement durations, by target (primary, replicaN).', labelNames: ['target'], buckets: SECONDS, registers });
    this.rateLimited = new Counter({ name: 'pasargad_rate_limit_rejections_total', help: 'Requests refused with 429, by the window that refused them.', labelNames: ['limit'], registers });
    this.ipBlocks = new Counter({ name: 'pasargad_ip_blocks_total', help: 'IP addresses blocked after repeated rate-limit violations.', registers });
    const caches = app.caches;
    const cacheStats = () => caches.stats();
    new Counter({
      name: 'pasargad_cache_hits_total',
      help: 'Cache hits per store.',
      labelNames: ['store'],
      registers,
      async collect() {
        this.reset();
        for (const [store, s] of Object.entries(await cacheStats())) this.inc({ store }, s.hits);
      },
    });
    new Counter({
      name: 'pasargad_cache_misses_total',
      help: 'Cache misses per store.',
      labelNames: ['store'],
      registers,
      async collect() {
        this.reset();
        for (const [store, s] of Object.entries(await cacheStats())) this.inc({ store }, s.misses);
      },
    });
    new Gauge({
      name: 'pasargad_queue_jobs',
      help: 'Jobs per queue and state (waiting, active, delayed, failed).',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const q of await timeout(app.jobs.stats(), 'queues').catch(() => [])) {
          for (const state of ['waiting', 'active', 'delayed', 'failed'] as const) this.set({ queue: q.queue, state }, q[state]);
        }
      },
    });
    new Gauge({
      name: 'pasargad_blocked_ips',
      help: 'IP addresses blocked right now.',
      registers,
      async collect() {
        this.set((await app.limits?.blocks.list().catch(() => []))?.length ?? 0);
      },
    });
  }

  /** Feeds the SQL histogram; per target the labelled child is made once. */
  statementObserver(): (target: string, ms: number) => void {
    const children = new Map<string, { observe(v: number): void }>();
    return (target, ms) => {
      let child = children.get(target);
      if (!child) children.set(target, (child = this.statements.labels(target)));
      child.observe(ms / 1000);
    };
  }
}

/**
 * `pasargad_http_request_duration_seconds`, made at scrape time from the request patterns'
 * all-time histograms, so a request pays for one histogram, not two. Their buckets are ≈12% wide
 * and finer than these; a value is counted under the first `le` at or above its bucket's bound.
 */
function requestHistogram(stats: RequestStats): Metric {
  const name = 'pasargad_http_request_duration_seconds';
  // For each of our buckets, the index of the first Prometheus bucket it falls under.
  const target = LATENCY_BOUNDS_MS.map((ms) => SECONDS.findIndex((le) => ms <= le * 1000 + 1e-9));
  const help = 'Time from request to response, by route pattern and status.';
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get(): Promise<Omit<MetricObjectWithValues<MetricValueWithName<string>>, 'collect'>> {
      const values: MetricValueWithName<string>[] = [];
      for (const r of stats.recorders) {
        const space = r.label.indexOf(' ');
        const method = space > 0 ? r.label.slice(0, space) : '';
        const route = space > 0 ? r.label.slice(space + 1) : r.label;
        for (const [status, h] of r.totals) {
          const labels = { method, route, status: String(status) };
          const perLe = new Array<number>(SECONDS.length).fill(0);
          for (let i = 0; i < h.counts.length; i++) {
            const n = h.counts[i]!;
            if (!n) continue;
            const t = i < target.length ? target[i]! : -1;
            if (t >= 0) perLe[t]! += n;
          }
          let cumulative = 0;
          SECONDS.forEach((le, i) => {
            cumulative += perLe[i]!;
            values.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative });
          });
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.total });
          values.push({ metricName: `${name}_sum`, labels, value: h.sum / 1000 });
          values.push({ metricName: `${name}_count`, labels, value: h.total });
        }
      }
      return { name, help, type: 'histogram' as never, aggregator: 'sum', values };
    },
  } as unknown as Metric;
}
