// SQL statement timing (the seed's "slow queries"): every statement Kysely runs is counted and
// timed here, per target (primary, replicas), and those slower than SLOW_QUERY_MS are kept by
// their normalised text: count, total and max time. Each app keeps its own (withStatements), so
// two apps on one database (tests, benches) neither share records nor replace each other's
// SLOW_QUERY_MS or histogram. (A request's own count: tally.ts.)
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryId, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import type { Database, Db } from '../../db/database.ts';

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

/**
 * Where a statement is recorded, by its Kysely query id: set as it is made through a database from
 * withStatements, read by the database layer when it times the statement (database.ts). Statements
 * made otherwise (straight on the Database, BEGIN and COMMIT) go to the Database's own.
 */
const recorders = new WeakMap<QueryId, StatementStats>();

export function recorderOf(queryId: QueryId): StatementStats | undefined {
  return recorders.get(queryId);
}

class RecordIn implements KyselyPlugin {
  constructor(private readonly statements: StatementStats) {}

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    recorders.set(args.queryId, this.statements);
    return args.node;
  }

  transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(args.result);
  }
}

/**
 * The same database, its statements timed into `statements` (transactions included). As with the
 * request's tally, everything but `db`, `read` and `statements` is the base's own, through the
 * prototype; the query counts (`stats`) stay the whole database's.
 */
export function withStatements(base: Database, statements: StatementStats): Database {
  const plugin = new RecordIn(statements);
  // One Kysely per target (the primary, each replica), made on first use, not one per read.
  const made = new WeakMap<Db, Db>();
  const recorded = (db: Db) => {
    let r = made.get(db);
    if (!r) made.set(db, (r = db.withPlugin(plugin)));
    return r;
  };
  const own = Object.create(base) as Database & { db: Db; statements: StatementStats };
  Object.defineProperty(own, 'db', { value: recorded(base.db) });
  Object.defineProperty(own, 'statements', { value: statements });
  own.read = (fn) => base.read((db) => fn(recorded(db)));
  return own;
}
