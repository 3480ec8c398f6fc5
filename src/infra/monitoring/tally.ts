// The per-request tally of SQL statements and cache lookups that the slow-request log reports,
// kept without AsyncLocalStorage: on Node 20 (and 22 without a flag) it hooks every promise in
// the process, which was measured at 4-6% of a cached answer's throughput. Node 24's
// AsyncContextFrame costs only the requests that use it (`npm run bench -- --only als`: within
// the noise of a loaded machine, server CPU per cached answer +3%, 2026-12-07), but 20 and 22 are
// still supported, so the design stays. Instead the request's context (ctxOf) hands
// services a database whose Kysely counts through a plugin and cache stores that count their
// lookups, made only for requests that reach a handler; a cached answer pays nothing.
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import type { Database, Db } from '../../db/database.ts';
import type { Cache } from '../cache/cache.ts';
import type { Caches } from '../cache/stores.ts';

/** What one request made the server do. */
export interface RequestWork {
  sql: number;
  sqlMs: number;
  cacheHits: number;
  cacheMisses: number;
}

export function newWork(): RequestWork {
  return { sql: 0, sqlMs: 0, cacheHits: 0, cacheMisses: 0 };
}

class TallyPlugin implements KyselyPlugin {
  private readonly started = new WeakMap<object, number>();
  constructor(private readonly work: RequestWork) {}

  // Counted when sent, so a statement that fails or times out (often the slow one) counts too;
  // its time is added when it answers.
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.work.sql++;
    this.started.set(args.queryId, performance.now());
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const t = this.started.get(args.queryId);
    if (t !== undefined) this.work.sqlMs += performance.now() - t;
    return args.result;
  }
}

/**
 * The same database, its statements counted into `work` (transactions included). Everything but
 * `db` and `read` is the base's own (through the prototype, as for the caches below), so a member
 * added to Database later needs nothing here.
 */
export function talliedDatabase(base: Database, work: RequestWork): Database {
  const plugin = new TallyPlugin(work);
  const counted = (db: Db) => db.withPlugin(plugin);
  const tallied = Object.create(base) as Database & { db: Db };
  Object.defineProperty(tallied, 'db', { value: counted(base.db) });
  tallied.read = (fn) => base.read((db) => fn(counted(db)));
  return tallied;
}

/** A store whose lookups (get, and getOrSet through it) are counted into `work`. */
function talliedCache<T>(cache: Cache<T>, work: RequestWork): Cache<T> {
  const counted = Object.create(cache) as Cache<T>;
  counted.get = async (key: string) => {
    const value = await cache.get(key);
    if (value === undefined) work.cacheMisses++;
    else work.cacheHits++;
    return value;
  };
  return counted;
}

export function talliedCaches(base: Caches, work: RequestWork): Caches {
  const out = Object.create(base) as Caches & { default: Caches['default']; api: Caches['api'] };
  Object.defineProperty(out, 'default', { value: talliedCache(base.default, work) });
  Object.defineProperty(out, 'api', { value: talliedCache(base.api, work) });
  return out;
}
