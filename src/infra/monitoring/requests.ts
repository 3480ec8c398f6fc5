// Request patterns over the last 1, 5 and 60 minutes (the seed's "request patterns"): requests
// per route and status, latency percentiles, the slowest routes and the busiest client IPs, plus
// a per-second series for the dashboard's charts. Kept in process, in fixed memory: one bucket
// per minute (routes, IPs, a latency histogram) and one per second for the last five minutes.
//
// Written by hand: prom-client's histograms give Prometheus its data, but cannot answer "the
// p95 of the last five minutes" or "the top client IPs" inside the process, which the
// monitoring endpoints and the dashboard need without a Prometheus server.

/** Latency histogram bounds in ms: log-spaced, 0.05 ms to ~2 min, ≈12% apart. */
const BOUNDS: number[] = (() => {
  const out: number[] = [];
  for (let b = 0.05; b < 120_000; b *= 1.12) out.push(b);
  return out;
})();

function bucketOf(ms: number): number {
  // Binary search: the first bound at or above ms.
  let lo = 0;
  let hi = BOUNDS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (BOUNDS[mid]! < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The histogram's bucket upper bounds, in ms (the last bucket is unbounded). */
export const LATENCY_BOUNDS_MS: readonly number[] = BOUNDS;

export class Histogram {
  readonly counts = new Uint32Array(BOUNDS.length + 1);
  total = 0;
  sum = 0;
  max = 0;

  /** With the bucket already found (one search serves every histogram a request goes into). */
  addAt(bucket: number, ms: number): void {
    this.counts[bucket]!++;
    this.total++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** The q-quantile (0..1) in ms: the upper bound of its bucket, capped at the largest seen. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(BOUNDS[i] ?? this.max, this.max);
    }
    return this.max;
  }
}

interface RouteStats {
  statuses: Map<number, number>;
  latency: Histogram;
}

class MinuteBucket {
  constructor(readonly minute: number) {}
  readonly routes = new Map<string, RouteStats>();
  readonly ips = new Map<string, number>();

  compactIps(keep: number): void {
    if (this.ips.size <= keep) return;
    const top = [...this.ips].sort((a, b) => b[1] - a[1]);
    this.ips.clear();
    for (const [ip, n] of top.slice(0, keep)) this.ips.set(ip, n);
    this.ips.set('other', (this.ips.get('other') ?? 0) + top.slice(keep).reduce((sum, [, n]) => sum + n, 0));
  }

  routeStats(route: string): RouteStats {
    let r = this.routes.get(route);
    if (!r) {
      if (this.routes.size >= MAX_ROUTES && route !== 'other') return this.routeStats('other');
      this.routes.set(route, (r = { statuses: new Map(), latency: new Histogram() }));
    }
    return r;
  }
}

/**
 * One route's recorder, made once when the route is registered: it keeps its current minute's
 * entry and its all-time histograms per status (for Prometheus) at hand, so recording a request
 * is a few array increments and no lookups by name.
 */
export class RouteRecorder {
  /** Since start, per status: what the Prometheus histogram is made from at scrape time. */
  readonly totals = new Map<number, Histogram>();
  private minute = -1;
  private current: RouteStats | undefined;

  constructor(
    readonly label: string,
    private readonly stats: RequestStats,
  ) {}

  record(status: number, ms: number, ip: string): void {
    const t = this.stats.now();
    const minute = Math.floor(t / 60_000);
    const bucket = bucketOf(ms);
    const m = this.stats.minuteBucket(minute);
    if (this.minute !== minute || !this.current) {
      this.minute = minute;
      this.current = m.routeStats(this.label);
    }
    const r = this.current;
    r.statuses.set(status, (r.statuses.get(status) ?? 0) + 1);
    r.latency.addAt(bucket, ms);
    let total = this.totals.get(status);
    if (!total) this.totals.set(status, (total = new Histogram()));
    total.addAt(bucket, ms);
    const ips = m.ips;
    const seen = ips.get(ip);
    if (seen !== undefined) ips.set(ip, seen + 1);
    else ips.set(ips.size < MAX_IPS ? ip : 'other', (ips.get('other') ?? 0) + 1);
    const s = this.stats.secondBucket(Math.floor(t / 1000));
    s.requests++;
    if (status >= 500) s.errors++;
    s.latency.addAt(bucket, ms);
  }
}

interface SecondBucket {
  second: number;
  requests: number;
  errors: number;
  latency: Histogram;
}

/** Most distinct client IPs kept per minute; beyond it, new ones count as "other". */
const MAX_IPS = 10_000;
/** Addresses a finished minute keeps. */
const KEPT_IPS = 200;
const MAX_ROUTES = 1_000;
const SECONDS = 300;

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface WindowReport {
  minutes: number;
  requests: number;
  requests_per_second: number;
  errors: number;
  latency_ms: Percentiles & { mean: number };
  routes: { route: string; requests: number; statuses: Record<string, number>; latency_ms: Percentiles & { mean: number } }[];
  slow_routes: { route: string; requests: number; p95_ms: number; mean_ms: number }[];
  top_ips: { ip: string; requests: number }[];
}

export interface SeriesPoint {
  t: number;
  requests: number;
  errors: number;
  p50: number;
  p95: number;
  p99: number;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

function percentiles(h: Histogram): Percentiles & { mean: number } {
  return { p50: round(h.quantile(0.5)), p95: round(h.quantile(0.95)), p99: round(h.quantile(0.99)), max: round(h.max), mean: round(h.total ? h.sum / h.total : 0) };
}

export class RequestStats {
  private readonly minutes: MinuteBucket[] = [];
  private readonly seconds: SecondBucket[] = [];
  readonly recorders: RouteRecorder[] = [];

  constructor(readonly now: () => number = Date.now) {}

  /** The recorder of one route label (made once per route). */
  route(label: string): RouteRecorder {
    const r = new RouteRecorder(label, this);
    this.recorders.push(r);
    return r;
  }

  minuteBucket(minute: number): MinuteBucket {
    let b = this.minutes[this.minutes.length - 1];
    if (!b || b.minute !== minute) {
      // A finished minute keeps only its busiest addresses: the hour's report merges 60 of them.
      if (b) b.compactIps(KEPT_IPS);
      this.minutes.push((b = new MinuteBucket(minute)));
      while (this.minutes.length > 61) this.minutes.shift();
    }
    return b;
  }

  secondBucket(second: number): SecondBucket {
    let b = this.seconds[this.seconds.length - 1];
    if (!b || b.second !== second) {
      this.seconds.push((b = { second, requests: 0, errors: 0, latency: new Histogram() }));
      while (this.seconds.length > SECONDS) this.seconds.shift();
    }
    return b;
  }

  /** Requests, percentiles, routes, slow routes and top IPs over the last `minutes` minutes. */
  window(minutes: number, top = 10): WindowReport {
    const current = Math.floor(this.now() / 60_000);
    const buckets = this.minutes.filter((b) => b.minute > current - minutes);
    const latency = new Histogram();
    const routes = new Map<string, RouteStats>();
    const ips = new Map<string, number>();
    let errors = 0;
    for (const b of buckets) {
      for (const [name, r] of b.routes) {
        latency.merge(r.latency);
        let acc = routes.get(name);
        if (!acc) routes.set(name, (acc = { statuses: new Map(), latency: new Histogram() }));
        acc.latency.merge(r.latency);
        for (const [status, n] of r.statuses) {
          acc.statuses.set(status, (acc.statuses.get(status) ?? 0) + n);
          if (status >= 500) errors += n;
        }
      }
      for (const [ip, n] of b.ips) ips.set(ip, (ips.get(ip) ?? 0) + n);
    }
    // The current minute is partial: the rate is over the time actually covered.
    const oldest = buckets[0]?.minute ?? current;
    const seconds = Math.max(1, (this.now() - oldest * 60_000) / 1000);
    const routeList = [...routes].map(([route, r]) => ({
      route,
      requests: r.latency.total,
      statuses: Object.fromEntries([...r.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => [String(s), n])),
      latency_ms: percentiles(r.latency),
    }));
    return {
      minutes,
      requests: latency.total,
      requests_per_second: round(latency.total / seconds),
      errors,
      latency_ms: percentiles(latency),
      routes: routeList.sort((a, b) => b.requests - a.requests),
      slow_routes: [...routeList]
        .sort((a, b) => b.latency_ms.p95 - a.latency_ms.p95)
        .slice(0, top)
        .map((r) => ({ route: r.route, requests: r.requests, p95_ms: r.latency_ms.p95, mean_ms: r.latency_ms.mean })),
      top_ips: [...ips]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([ip, requests]) => ({ ip, requests })),
    };
  }

  /** Per-interval points over the last `seconds` seconds (oldest first), for charts. */
  series(seconds = SECONDS, step = 5): SeriesPoint[] {
    const now = Math.floor(this.now() / 1000);
    const points: SeriesPoint[] = [];
    const bySecond = new Map(this.seconds.map((s) => [s.second, s]));
    for (let start = now - seconds + 1; start <= now; start += step) {
      const h = new Histogram();
      let requests = 0;
      let errors = 0;
      for (let s = start; s < start + step && s <= now; s++) {
        const b = bySecond.get(s);
        if (!b) continue;
        requests += b.requests;
        errors += b.errors;
        h.merge(b.latency);
      }
      const span = Math.min(step, now - start + 1);
      points.push({ t: start * 1000, requests: round(requests / span), errors, p50: round(h.quantile(0.5)), p95: round(h.quantile(0.95)), p99: round(h.quantile(0.99)) });
    }
    return points;
  }
}
