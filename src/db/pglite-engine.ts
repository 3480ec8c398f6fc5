// Owns the embedded database's PGlite instance, and replaces it when PostgreSQL inside it stops.
//
// PostgreSQL PANICs when it cannot write its WAL: on a full disk once the current 16 MiB segment
// is used up and the next cannot be made, on a read-only disk at the first commit. A server would
// restart its backends and recover from the WAL. PGlite 0.5 runs the same code in WASM in this
// process, and after the PANIC's abort it calls into that dead backend again (see guardAbort), which
// can spin for ever inside a synchronous call: the whole process stops answering, health checks
// included. A read-only disk also fails reads (PGlite opens every table's file for writing).
//
// So after a PANIC or FATAL, or a read-only disk, no statement reaches that instance again: it is
// dropped with its files closed (nothing it held in memory is lost that the WAL cannot replay),
// statements fail at once with a 503, and a new PGlite is opened on the same folder when the disk
// can take writes again. Opening replays the WAL exactly as PostgreSQL's crash recovery does, so
// every committed transaction is there and no uncommitted one is.
import type { PGlite } from '@electric-sql/pglite';
import { diskFault, diskState } from '../infra/disk.ts';

/** Free space a reopen waits for: recovery writes a new WAL segment (16 MiB) and a checkpoint. */
const ROOM_BYTES = 32 * 1024 * 1024;
/** First wait between reopen attempts; doubled after each failed one, up to MAX_RETRY_MS. */
const RETRY_MS = 2_000;
const MAX_RETRY_MS = 30_000;

export interface EngineLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * What statements meet while the embedded database is down. SQLSTATE 57P03 (cannot_connect_now)
 * is PostgreSQL's answer while it recovers, so the HTTP layer answers 503 as for a lost server.
 */
export class EmbeddedDatabaseDown extends Error {
  readonly code = '57P03';
  constructor(cause: unknown) {
    super('the embedded database stopped and is not open again yet (it reopens by itself once its disk can take writes)', { cause });
    this.name = 'EmbeddedDatabaseDown';
  }
}

export interface EngineOptions {
  /** Opens a new instance on the same data; absent (memory://, a shared test instance): no reopening. */
  reopen?: () => Promise<PGlite>;
  /** The data folder, checked for room and writability before a reopen. */
  dataDir?: string;
  /** Session settings every new instance needs (time zone, search path). */
  prepare: (pg: PGlite) => Promise<void>;
  log?: EngineLog;
}

export class PgliteEngine {
  #pg: PGlite | undefined;
  /** Bumped by each reopen: a transaction begun on one instance must not go on on the next. */
  #generation = 0;
  #down: unknown;
  #reopening: Promise<void> | undefined;
  #nextTry = 0;
  #retryMs = RETRY_MS;

  constructor(
    pg: PGlite,
    private readonly o: EngineOptions,
  ) {
    this.#pg = pg;
    guardAbort(pg, (err) => this.#stop(err));
  }

  get generation(): number {
    return this.#generation;
  }

  /** The instance in use, when it is up (and `generation`'s, if given): no promise on the common path. */
  current(generation?: number): PGlite | undefined {
    return generation === undefined || generation === this.#generation ? this.#pg : undefined;
  }

  /** The instance to run a statement on. While down: a reopen if one is due, else an error at once. */
  async instance(generation?: number): Promise<PGlite> {
    if (!this.#pg && this.o.reopen) await this.#tryReopen();
    const pg = this.#pg;
    if (!pg) throw new EmbeddedDatabaseDown(this.#down);
    if (generation !== undefined && generation !== this.#generation) throw new EmbeddedDatabaseDown(this.#down);
    return pg;
  }

  /** Told of every statement that failed: some failures end the instance. */
  failed(err: unknown): void {
    const severity = (err as { severity?: string } | undefined)?.severity;
    if (severity === 'PANIC' || severity === 'FATAL' || diskFault(err) === 'read_only') this.#stop(err);
  }

  /** Whether the instance in use is gone (a statement now fails, or waits for a reopen). */
  get down(): boolean {
    return !this.#pg;
  }

  #stop(err: unknown): void {
    const pg = this.#pg;
    if (!pg) return;
    this.#pg = undefined;
    this.#down = err instanceof EmbeddedDatabaseDown ? err.cause : err;
    this.#retryMs = RETRY_MS;
    this.#nextTry = 0;
    const { log, dataDir } = this.o;
    const what = this.o.reopen ? 'embedded database stopped: statements fail until it is reopened on the same data' : 'embedded database stopped';
    void (dataDir ? diskState(dataDir).catch(() => undefined) : Promise.resolve(undefined)).then((disk) => log?.error({ err, disk }, what));
    // Not at once: this may run inside the abort, with PostgreSQL's stack still being unwound.
    setImmediate(() => closeFiles(pg));
  }

  #tryReopen(): Promise<void> {
    if (this.#reopening) return this.#reopening;
    if (Date.now() < this.#nextTry) return Promise.resolve();
    this.#reopening = this.#reopen().finally(() => (this.#reopening = undefined));
    return this.#reopening;
  }

  async #reopen(): Promise<void> {
    const { reopen, dataDir, prepare, log } = this.o;
    this.#nextTry = Date.now() + this.#retryMs;
    // A disk still full or read-only would only make the attempt fail after a second's work.
    if (dataDir) {
      const disk = await diskState(dataDir).catch(() => undefined);
      if (!disk || disk.fault || disk.freeBytes < ROOM_BYTES) return;
    }
    try {
      const pg = await reopen!();
      await prepare(pg);
      guardAbort(pg, (err) => this.#stop(err));
      this.#pg = pg;
      this.#generation++;
      this.#down = undefined;
      log?.warn({}, 'embedded database reopened: the WAL was replayed, statements run again');
    } catch (err) {
      this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
      this.#nextTry = Date.now() + this.#retryMs;
      log?.error({ err, retry_in_ms: this.#retryMs }, 'embedded database: reopening failed');
    }
  }

  async close(): Promise<void> {
    await this.#reopening;
    const pg = this.#pg;
    this.#pg = undefined;
    this.#down = new Error('closed');
    this.#nextTry = Infinity;
    await pg?.close();
  }
}

/**
 * A PANIC aborts PostgreSQL's WebAssembly (Emscripten's abort), and PGlite 0.5's
 * execProtocolRawSync does not notice: it goes on calling the backend while the statement's bytes
 * are not all read, and then flushes it, each time running code of a backend that stopped half way
 * (seen: a PANIC in an UPDATE with a 60 kB parameter left the process at 100% CPU, answering
 * nothing, for good). Emscripten calls Module.onAbort before it unwinds; from then on every way back
 * into the WebAssembly that loop takes throws or does nothing, so the statement fails at once and
 * the instance is stopped. These are PGlite's internals (checked on 0.5.16, the pinned version): their names are checked
 * here at start, and test/chaos/disk.test.ts fails, rather than hangs for ever, if their behaviour changes.
 */
function guardAbort(pg: PGlite, stopped: (err: Error) => void): void {
  const mod = pg.Module as unknown as Record<string, unknown>;
  // The version is pinned in package.json; an upgrade that renames these fails every suite here.
  const missing = ['_PostgresMainLoopOnce', 'stackRestore', '_pq_buffer_remaining_data', '_PostgresSendReadyForQueryIfNecessary', '_pgl_pq_flush'].filter((name) => typeof mod[name] !== 'function');
  if (missing.length) throw new Error(`this PGlite lacks what the abort guard replaces (${missing.join(', ')}): check pglite-engine.ts against it`);
  mod.onAbort = () => {
    const err = new EmbeddedDatabaseDown(new Error('PostgreSQL aborted (a PANIC)'));
    const fail = () => {
      throw err;
    };
    mod._PostgresMainLoopOnce = fail;
    // Called in the loop's catch: throwing there takes the error out of the loop.
    mod.stackRestore = fail;
    mod._pq_buffer_remaining_data = () => 0;
    mod._PostgresSendReadyForQueryIfNecessary = () => undefined;
    mod._pgl_pq_flush = () => undefined;
    stopped(err);
  };
}

/**
 * Closes the files an instance holds without running any of PostgreSQL in it (PGlite's close()
 * runs PostgreSQL's shutdown, a checkpoint, in the backend that stopped). Its memory goes with the
 * last reference to it.
 */
export function closeFiles(pg: PGlite): void {
  try {
    (pg as { Module?: { FS?: { quit(): void } } }).Module?.FS?.quit();
  } catch {
    // Already closed, or the runtime never started.
  }
}
