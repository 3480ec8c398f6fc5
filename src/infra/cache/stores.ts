// Opens the named stores for a configuration: Redis when one is configured for the store (a
// server, Sentinel or a Cluster), otherwise the embedded implementation.
import type { Config, RedisTarget } from '../../config.ts';
import type { Database } from '../../db/database.ts';
import { Cache, jsonCodec, type CacheStats } from './cache.ts';
import { DatabaseKeyValueStore } from './database-store.ts';
import { openRedis, type RedisConnectOptions } from '../redis.ts';
import { RedisKeyValueStore } from './redis-store.ts';
import { RemoteStore, type RemoteLog } from './remote.ts';
import { responseCodec, type CachedResponse } from './response-cache.ts';
import type { KeyValueStore } from './store.ts';

/** The `session` store: Redis database 2 in production, the embedded database otherwise. */
export function openSessionStore(config: Config, database: Database, opts: RedisConnectOptions = {}): KeyValueStore {
  const target = config.redis.session;
  return target ? new RedisKeyValueStore(openRedis(target, { keyPrefix: config.redis.keyPrefix, ...opts }), 'session') : new DatabaseKeyValueStore(database, 'session');
}

export interface Caches {
  /** Data (the seed's `default`): lookups and per-user values services keep. */
  readonly default: Cache<unknown>;
  /** Ready HTTP responses of the public catalog. */
  readonly api: Cache<CachedResponse>;
  /** Hits, misses, hit rate, keys, memory and compression of every cache store: one call for monitoring. */
  stats(): Promise<Record<'default' | 'api', CacheStats>>;
  close(): Promise<void>;
}

export interface CacheOpenOptions {
  log?: RemoteLog;
  /** Prepended to every Redis key and channel instead of REDIS_KEY_PREFIX (tests share one server). */
  keyPrefix?: string;
}

/** `default` and `api`: in-process LRUs in embedded mode; Redis (databases 1 and 3, or prefixes in a Cluster) behind an in-process L1 otherwise. */
export function openCaches(config: Config, o: CacheOpenOptions = {}): Caches {
  const c = config.cache;
  const remote = (target: RedisTarget | undefined, name: 'default' | 'api') =>
    target && c.enabled ? new RemoteStore({ target, name, keyPrefix: o.keyPrefix ?? config.redis.keyPrefix, timeoutMs: c.timeoutMs, compressThreshold: c.compressThreshold, log: o.log }) : undefined;
  const caches = {
    default: new Cache<unknown>({ name: 'default', codec: jsonCodec, memoryBytes: c.memoryBytes, remote: remote(config.redis.default, 'default'), enabled: c.enabled, syncMs: c.syncMs }),
    api: new Cache<CachedResponse>({ name: 'api', codec: responseCodec(c.compressThreshold), memoryBytes: c.memoryBytes, remote: remote(config.redis.api, 'api'), enabled: c.enabled, syncMs: c.syncMs }),
    async stats() {
      const [d, a] = await Promise.all([caches.default.stats(), caches.api.stats()]);
      return { default: d, api: a };
    },
    async close() {
      await Promise.all([caches.default.close(), caches.api.close()]);
    },
  };
  return caches;
}
