// Opens the named stores for a configuration: Redis when REDIS_URL (or a store's own URL) is
// set, otherwise the embedded implementation.
import type { Config } from '../../config.ts';
import type { Database } from '../../db/database.ts';
import { DatabaseKeyValueStore } from './database-store.ts';
import { RedisKeyValueStore, redisClient, type RedisStoreOptions } from './redis-store.ts';
import type { KeyValueStore } from './store.ts';

/** The `session` store: Redis database 2 in production, the embedded database otherwise. */
export function openSessionStore(config: Config, database: Database, opts: RedisStoreOptions = {}): KeyValueStore {
  const url = config.redis.sessionUrl;
  return url ? new RedisKeyValueStore(redisClient(url, opts), 'session') : new DatabaseKeyValueStore(database, 'session');
}
