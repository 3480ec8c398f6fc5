// Owns the database connection: embedded PGlite when DATABASE_URL is unset, a node-postgres pool
// otherwise, plus optional read replicas. Both drivers return the same JS types (see schema.ts),
// and every statement is counted so tests and benchmarks can prove a fixed statement count.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql, type LogEvent } from 'kysely';
import pg from 'pg';
import { pino } from 'pino';
import type { Config } from '../config.ts';
import { diskState } from '../infra/disk.ts';
import type { Cache } from '../infra/cache/cache.ts';
import { recorderOf, StatementStats } from '../infra/monitoring/statements.ts';
import { PgliteDialect } from './pglite-dialect.ts';
import { closeFiles, PgliteEngine, type EngineLog, type EngineOptions } from './pglite-engine.ts';
import type { DB } from './schema.ts';

export type { DB } from './schema.ts';
export type Db = Kysely<DB>;

export interface QueryStats {
  /** Statements run through Kysely on any target since start. */
  statements: number;
  /** Statements per target: `primary`, `replica0`, `replica1`… */
  byTarget: Record<string, number>;
}

export interface Database {
  readonly kind: 'pglite' | 'postgres';
  /** The schema holding the shop's tables (first on the search path). */
  readonly schema: string;
  /** The primary: every write and every read that must see the latest write. */
  readonly db: Db;
  /**
   * Runs a lag-tolerant read on the next healthy replica (round-robin). If the replica cannot be
   * reached it is taken out of rotation for a while and the read runs on the primary instead.
   */
  read<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /**
   * Sends every `read()` to the primary for the next `ms`. Called whenever catalog data changed
   * (see readPrimaryAfterChanges), so that neither the writer's next read nor a cache fill made
   * after the invalidation can see a replica that has not replayed the write yet.
   */
  readPrimaryFor?(ms: number): void;
  /** Runs a multi-statement script (migrations, maintenance) on the primary. */
  exec(script: string): Promise<void>;
  readonly stats: QueryStats;
  /**
   * Every statement timed, the slow ones kept by their normalised text (monitoring). An app's
   * statements are timed into its own instead (withStatements in statements.ts).
   */
  readonly statements: StatementStats;
  /** Connection pools in use (PostgreSQL: primary and replicas; none embedded). */
  pools(): PoolStats[];
  close(): Promise<void>;
}

export interface PoolStats {
  target: string;
  max: number;
  total: number;
  idle: number;
  waiting: number;
}

// Timestamps stay text so microseconds survive (JS Dates keep milliseconds); int8 (counts, ids)
// become numbers, as PGlite already does.
const identity = (v: string) => v;
const PARSERS: Record<number, (v: string) => unknown> = { 1184: identity, 1114: identity, 1082: identity, 20: Number };

const REPLICA_RETRY_MS = 10_000;

/**
 * How long `read()` stays on the primary after a catalog change. Streaming replicas replay within
 * milliseconds on a healthy network; this is the replay lag tolerated before a replica may answer
 * again. Monitor pg_stat_replication.replay_lag: lag beyond it lets a cache fill store a stale
 * answer until the next change of that data or the entry's TTL (docs/deployment.md).
 */
export const REPLICA_CATCH_UP_MS = 2_000;

/** True for errors that mean "this server could not be reached", not "this query is wrong". */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  const code = e.code ?? '';
  if (/^(08|57P0)/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE'].includes(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(e.message ?? '');
}

function isPoolTimeout(err: unknown): boolean {
  return /timeout exceeded when trying to connect/i.test((err as { message?: string } | undefined)?.message ?? '');
}

function counter(stats: QueryStats, statements: StatementStats, target: string) {
  stats.byTarget[target] = 0;
  return (event: LogEvent) => {
    stats.statements++;
    stats.byTarget[target] = (stats.byTarget[target] ?? 0) + 1;
    (recorderOf(event.query.queryId) ?? statements).record(target, event.query.sql, event.queryDurationMillis);
  };
}

function poolStats(target: string, pool: pg.Pool, max: number): PoolStats {
  return { target, max, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
}

function pgPool(url: string, schema: string, max: number, connectTimeoutMs: number): pg.Pool {
  const searchPath = schema === 'public' ? 'public' : `${schema},public`;
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    options: `-c search_path=${searchPath} -c TimeZone=UTC -c DateStyle=ISO`,
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => PARSERS[oid] ?? pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser },
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener the
  // process would crash. The next query gets a fresh connection.
  pool.on('error', () => {});
  // A checked-out client between statements (inside a transaction, say) emits 'error' on itself
  // when the server ends its session (a restart: 57P01), and the pool listens only to idle ones:
  // unheard, that crashed the process. Its next statement fails with a connection error (a 503)
  // and the pool discards it on release, as it is no longer queryable.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

async function openPostgres(config: Config): Promise<Database> {
  const { url, replicaUrls, schema, poolSize } = config.database;
  const stats: QueryStats = { statements: 0, byTarget: {} };
  const statements = new StatementStats();
  const primaryPool = pgPool(url!, schema, poolSize, 5_000);
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: primaryPool }), log: counter(stats, statements, 'primary') });
  const replicas = replicaUrls.map((replicaUrl, i) => {
    const pool = pgPool(replicaUrl, schema, poolSize, 2_000);
    return { pool, db: new Kysely<DB>({ dialect: new PostgresDialect({ pool }), log: counter(stats, statements, `replica${i}`) }), downUntil: 0 };
  });
  let next = 0;
  let primaryUntil = 0;

  return {
    kind: 'postgres',
    schema,
    db,
    stats,
    statements,
    pools: () => [poolStats('primary', primaryPool, poolSize), ...replicas.map((r, i) => poolStats(`replica${i}`, r.pool, poolSize))],
    readPrimaryFor(ms) {
      primaryUntil = Math.max(primaryUntil, Date.now() + ms);
    },
    async read(fn) {
      const now = Date.now();
      if (primaryUntil > now) return fn(db);
      for (let tries = 0; tries < replicas.length; tries++) {
        const replica = replicas[next++ % replicas.length]!;
        if (replica.downUntil > now) continue;
        try {
          return await fn(replica.db);
        } catch (err) {
          // A full pool or a query cancelled by replay (40001) is a busy replica, not a dead one:
          // this read moves to the primary, the replica stays in rotation.
          if (isPoolTimeout(err) || (err as { code?: string }).code === '40001') break;
          if (!isConnectionError(err)) throw err;
          replica.downUntil = Date.now() + REPLICA_RETRY_MS;
        }
      }
      return fn(db);
    },
    async exec(script) {
      await primaryPool.query(script);
    },
    async close() {
      await Promise.all([db.destroy(), ...replicas.map((r) => r.db.destroy())]);
    },
  };
}

/**
 * Read-your-own-write for replica reads. Every change a catalog read could show (product, category,
 * review, image, stock, promotion) invalidates the response cache through its domain event, on
 * this instance before the write's response is sent and on the others through Redis pub/sub. Each
 * invalidation, ours or another instance's, sends replica reads to the primary for `ms`: the
 * writer's next GET sees its write, and a cache entry stored under the new tag versions was read
 * from the primary or from a replica given `ms` to replay. Left open, and bounded by replay lag
 * and the entry's TTL: an instance that fetches the new versions from Redis before the pub/sub
 * message reaches it, and invalidations held back while Redis is down. The price: after each
 * change this process's cache misses go to the primary for `ms`. Returns the unsubscribe.
 */
export function readPrimaryAfterChanges(database: Database, cache: Pick<Cache<unknown>, 'onInvalidation'>, ms = REPLICA_CATCH_UP_MS): () => void {
  if (!database.readPrimaryFor) return () => {};
  return cache.onInvalidation(() => database.readPrimaryFor!(ms));
}

/** A raw PGlite instance with the extensions and type parsers the shop relies on. */
export async function createPglite(dataDir: string): Promise<import('@electric-sql/pglite').PGlite> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
  if (dataDir.startsWith('memory://')) return PGlite.create({ dataDir, extensions: { pg_trgm }, parsers: PARSERS });
  mkdirSync(dataDir, { recursive: true });
  const pg = new PGlite({ dataDir, extensions: { pg_trgm }, parsers: PARSERS });
  try {
    await pg.waitReady;
    return pg;
  } catch (err) {
    // A failed start keeps the folder's files open; PGlite says only "failed to initialize", so
    // the disk's state is named when it is the likely reason.
    closeFiles(pg);
    const disk = await diskState(dataDir).catch(() => undefined);
    const why = disk?.fault === 'read_only' ? ': its disk is read-only' : disk?.fault === 'full' ? ': its disk is full' : '';
    throw new Error(`could not open the embedded database in ${dataDir}${why} (${(err as Error).message})`, { cause: err });
  }
}

/** Opens an embedded PGlite database. `dataDir` `memory://` keeps it in memory. */
export async function openPglite(dataDir: string, schema = 'public', log?: EngineLog): Promise<Database> {
  const reopen = dataDir.startsWith('memory://') ? undefined : () => createPglite(dataDir);
  return wrapEngine(await createPglite(dataDir), schema, true, { reopen, dataDir, log });
}

/** Wraps an open PGlite instance; tests share one per file, a schema per suite. */
export async function wrapPglite(pglite: import('@electric-sql/pglite').PGlite, schema = 'public', owned = false): Promise<Database> {
  return wrapEngine(pglite, schema, owned, {});
}

async function wrapEngine(pglite: import('@electric-sql/pglite').PGlite, schema: string, owned: boolean, o: Omit<EngineOptions, 'prepare'>): Promise<Database> {
  const prepare = async (pg: import('@electric-sql/pglite').PGlite) => {
    await pg.exec(`set time zone 'UTC'; set search_path to ${schema === 'public' ? 'public' : `${schema}, public`}`);
  };
  await prepare(pglite);
  const engine = new PgliteEngine(pglite, { ...o, prepare });
  const stats: QueryStats = { statements: 0, byTarget: {} };
  const statements = new StatementStats();
  const db = new Kysely<DB>({ dialect: new PgliteDialect(engine), log: counter(stats, statements, 'primary') });
  return {
    kind: 'pglite',
    schema,
    db,
    stats,
    statements,
    pools: () => [],
    read: (fn) => fn(db),
    async exec(script) {
      await sql.raw(script).execute(db);
    },
    async close() {
      await db.destroy();
      if (owned) await engine.close();
    },
  };
}

export async function openDatabase(config: Config): Promise<Database> {
  if (config.database.url) return openPostgres(config);
  const dir = config.dataDir.startsWith('memory://') ? config.dataDir : join(config.dataDir, 'pglite');
  // The request log is not made yet; the embedded database's own events are logged alike.
  return openPglite(dir, config.database.schema, pino({ level: config.logLevel }).child({ component: 'database' }));
}
