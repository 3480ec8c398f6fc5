// Prometheus metrics (prom-client), served at GET /metrics to the addresses METRICS_ALLOW names
// (or to a caller with METRICS_TOKEN): request durations by route and status, cache hits and
// misses per store, SQL statement durations, queue depths, rate-limit refusals, IP blocks, and
// Node's own (event loop, heap, GC). Counts kept elsewhere (caches, queues) are read at scrape
// time, so the request path pays only for the histogram.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyInstance } from 'fastify';

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Histogram<'method' | 'route' | 'status'>;
  readonly statements: Histogram<'target'>;
  readonly rateLimited: Counter<'limit'>;
  readonly ipBlocks: Counter;

  constructor(app: FastifyInstance) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'pasargad_' });
    this.requests = new Histogram({ name: 'pasargad_http_request_duration_seconds', help: 'Time from request to response, by route pattern and status.', labelNames: ['method', 'route', 'status'], buckets: SECONDS, registers });
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
        for (const q of await app.jobs.stats().catch(() => [])) {
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

  /** A request observer for one route: the histogram children are made once per status. */
  requestObserver(label: string): (status: number, ms: number) => void {
    const space = label.indexOf(' ');
    const method = label.slice(0, space);
    const route = label.slice(space + 1);
    const children = new Map<number, { observe(v: number): void }>();
    return (status, ms) => {
      let child = children.get(status);
      if (!child) children.set(status, (child = this.requests.labels(method, route, String(status))));
      child.observe(ms / 1000);
    };
  }
}
