// Kysely dialect for PGlite. Written here because the published one does not support PGlite 0.5.
// PGlite is one connection, so a transaction must own it: every query takes a mutex, and a
// transaction holds it from BEGIN to COMMIT, so other requests' statements never land inside it.
// Statements go to whichever instance the engine has open (pglite-engine.ts replaces a stopped one).
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
} from 'kysely';
import type { PgliteEngine } from './pglite-engine.ts';

class Mutex {
  #tail: Promise<void> = Promise.resolve();

  lock(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const prev = this.#tail;
    this.#tail = prev.then(() => held);
    return prev.then(() => release);
  }
}

class PgliteConnection implements DatabaseConnection {
  /** The engine's generation when the open transaction began; undefined outside one. */
  transaction: number | undefined;

  constructor(private readonly engine: PgliteEngine) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    // Inside a transaction only the instance it began on will do: its other statements are gone
    // with a stopped instance, and the rest must not commit on their own on the next one.
    const pg = this.engine.current(this.transaction) ?? (await this.engine.instance(this.transaction));
    try {
      // A raw statement without parameters may be a whole script (a migration): run it with the
      // simple protocol, as node-postgres does, so both drivers accept the same SQL.
      if (query.parameters.length === 0 && query.query.kind === 'RawNode') {
        const results = await pg.exec(query.sql);
        const last = results[results.length - 1];
        return { rows: (last?.rows ?? []) as R[], numAffectedRows: BigInt(last?.affectedRows ?? 0) };
      }
      return this.#result(query, await pg.query<R>(query.sql, query.parameters as unknown[]));
    } catch (err) {
      this.engine.failed(err);
      throw err;
    }
  }

  #result<R>(query: CompiledQuery, res: { rows: R[]; affectedRows?: number }): QueryResult<R> {
    const kind = query.query.kind;
    // Raw statements may write too (sql`update …`): their count is kept, as node-postgres keeps it.
    const changes = kind === 'InsertQueryNode' || kind === 'UpdateQueryNode' || kind === 'DeleteQueryNode' || kind === 'MergeQueryNode' || kind === 'RawNode';
    return changes ? { rows: res.rows, numAffectedRows: BigInt(res.affectedRows ?? 0) } : { rows: res.rows };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported on PGlite');
  }
}

class PgliteDriver implements Driver {
  readonly #mutex = new Mutex();
  readonly #conn: PgliteConnection;
  #release: (() => void) | undefined;

  constructor(private readonly engine: PgliteEngine) {
    this.#conn = new PgliteConnection(engine);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const release = await this.#mutex.lock();
    this.#release = release;
    return this.#conn;
  }

  async beginTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('begin'));
    this.#conn.transaction = this.engine.generation;
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    try {
      await conn.executeQuery(CompiledQuery.raw('commit'));
    } finally {
      this.#conn.transaction = undefined;
    }
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    const began = this.#conn.transaction;
    this.#conn.transaction = undefined;
    // The instance it began on is gone, and its transaction with it: nothing to roll back.
    if (began !== undefined && (this.engine.down || began !== this.engine.generation)) return;
    await conn.executeQuery(CompiledQuery.raw('rollback'));
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  async destroy(): Promise<void> {
    // The PGlite instance belongs to whoever opened it (see database.ts).
  }
}

export class PgliteDialect implements Dialect {
  constructor(private readonly engine: PgliteEngine) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PgliteDriver(this.engine);
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}
