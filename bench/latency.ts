// What one load run measured, shared by the autocannon runs (run.ts) and the hand-rolled checkout
// loop (checkout.ts). Latencies are kept as raw samples, not autocannon's histogram, because that
// histogram has no p95 and slices of a run are only summed correctly from the samples.

export interface Result {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  non2xx: number;
  requests: number;
  /** Every response time of the run, ms. */
  latencies: number[];
}

/** Nearest-rank percentile of sorted samples. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarize(latencies: number[], counts: { rps: number; errors: number; non2xx: number; requests: number }): Result {
  const sorted = Float64Array.from(latencies).sort();
  return { ...counts, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), latencies };
}

/** Milliseconds as the tables show them: one decimal below 100 ms. */
export const ms = (x: number) => (x < 100 ? x.toFixed(1) : Math.round(x).toString());
