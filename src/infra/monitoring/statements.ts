// SQL statement timing (the seed's "slow queries"): every statement Kysely runs is counted and
// timed here, per target (primary, replicas), and those slower than SLOW_QUERY_MS are kept by
// their normalised text: count, total and max time. (A request's own count: tally.ts.)

export interface SlowStatement {
  statement: string;
  count: number;
  total_ms: number;
  max_ms: number;
  mean_ms: number;
  last_seen: string;
}

/** Distinct slow statements kept at most; the least recent goes first. */
const MAX_SLOW = 200;
const MAX_TEXT = 1000;

/**
 * The statement with its values taken out, so one query shape is one entry: Kysely already sends
 * parameters as $1, $2…; literals written into the text (numbers, strings) become `?`.
 */
export function normalise(sql: string): string {
  const text = sql
    .replace(/'(?:[^']|'')*'/g, '?')
    .replace(/\b\d+(?:\.\d+)?\b/g, '?')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

export class StatementStats {
  statements = 0;
  totalMs = 0;
  readonly byTarget: Record<string, { statements: number; total_ms: number; max_ms: number }> = {};
  private readonly slow = new Map<string, SlowStatement>();
  /** Called for every statement (Prometheus histogram), when set. */
  onStatement?: (target: string, ms: number) => void;

  constructor(public slowMs = 100) {}

  record(target: string, sql: string, ms: number): void {
    this.statements++;
    this.totalMs += ms;
    const t = (this.byTarget[target] ??= { statements: 0, total_ms: 0, max_ms: 0 });
    t.statements++;
    t.total_ms += ms;
    if (ms > t.max_ms) t.max_ms = ms;
    this.onStatement?.(target, ms);
    if (ms >= this.slowMs) this.keepSlow(sql, ms);
  }

  private keepSlow(sql: string, ms: number): void {
    const key = normalise(sql);
    let s = this.slow.get(key);
    if (s) this.slow.delete(key);
    else s = { statement: key, count: 0, total_ms: 0, max_ms: 0, mean_ms: 0, last_seen: '' };
    s.count++;
    s.total_ms += ms;
    if (ms > s.max_ms) s.max_ms = ms;
    s.mean_ms = s.total_ms / s.count;
    s.last_seen = new Date().toISOString();
    // Re-inserted, so the Map's order is least recently seen first.
    this.slow.set(key, s);
    if (this.slow.size > MAX_SLOW) this.slow.delete(this.slow.keys().next().value!);
  }

  /** The slow statements, by total time spent, rounded to 0.01 ms. */
  slowest(limit = 50): SlowStatement[] {
    const r = (n: number) => Math.round(n * 100) / 100;
    return [...this.slow.values()]
      .sort((a, b) => b.total_ms - a.total_ms)
      .slice(0, limit)
      .map((s) => ({ ...s, total_ms: r(s.total_ms), max_ms: r(s.max_ms), mean_ms: r(s.mean_ms) }));
  }
}
