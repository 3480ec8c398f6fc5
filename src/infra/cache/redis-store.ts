// A key-value store on Redis (production): one logical database per store, so a store can be
// cleared or given its own persistence settings without touching the others.
import { Redis } from 'ioredis';
import { StoreUnavailableError, type KeyValueStore, type StoreName } from './store.ts';

export interface RedisStoreOptions {
  /** Prepended to every key: lets tests and several shops share one server. */
  keyPrefix?: string;
  /** How long a command may wait for a (re)connection before the request fails with 503. */
  commandTimeoutMs?: number;
  /**
   * For pub/sub connections: ioredis re-subscribes after a reconnect with a promise nobody can
   * catch, so a connection that drops again mid-way is an unhandled rejection. Off, the owner
   * subscribes again itself on 'ready'.
   */
  autoResubscribe?: boolean;
}

export function redisClient(url: string, opts: RedisStoreOptions = {}): Redis {
  const client = new Redis(url, {
    keyPrefix: opts.keyPrefix ?? '',
    connectTimeout: 2_000,
    commandTimeout: opts.commandTimeoutMs ?? 2_000,
    maxRetriesPerRequest: 1,
    // Reconnect forever, backing off to 2 s: the store heals when Redis returns.
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    autoResubscribe: opts.autoResubscribe ?? true,
  });
  // Without a listener ioredis reports every failed reconnect as an unhandled error.
  client.on('error', () => {});
  return client;
}

/**
 * Deletes every key that starts with `prefix` (after the client's own key prefix): SCAN in
 * batches, never KEYS, never FLUSHDB. Returns how many went.
 */
export async function deleteMatching(client: Redis, prefix: string): Promise<number> {
  const own = client.options.keyPrefix ?? '';
  const pattern = `${(own + prefix).replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    // SCAN answers with whole keys; the client adds its prefix again, so take it off first.
    if (keys.length) n += await client.del(...keys.map((k) => k.slice(own.length)));
  } while (cursor !== '0');
  return n;
}

export class RedisKeyValueStore implements KeyValueStore {
  constructor(
    private readonly client: Redis,
    readonly name: StoreName,
  ) {}

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw new StoreUnavailableError(this.name, err);
    }
  }

  get(key: string): Promise<string | null> {
    return this.run(() => this.client.get(key));
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.run(() => this.client.set(key, value, 'EX', ttlSeconds));
  }

  async add(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    return (await this.run(() => this.client.set(key, value, 'EX', ttlSeconds, 'NX'))) === 'OK';
  }

  async delete(key: string): Promise<void> {
    await this.run(() => this.client.del(key));
  }

  clear(prefix = ''): Promise<number> {
    return this.run(() => deleteMatching(this.client, prefix));
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
