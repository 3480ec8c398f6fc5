// A key-value store on Redis (production): one logical database per store, so a store can be
// cleared or given its own persistence settings without touching the others.
import { Redis } from 'ioredis';
import { StoreUnavailableError, type KeyValueStore, type StoreName } from './store.ts';

export interface RedisStoreOptions {
  /** Prepended to every key: lets tests and several shops share one server. */
  keyPrefix?: string;
  /** How long a command may wait for a (re)connection before the request fails with 503. */
  commandTimeoutMs?: number;
}

export function redisClient(url: string, opts: RedisStoreOptions = {}): Redis {
  const client = new Redis(url, {
    keyPrefix: opts.keyPrefix ?? '',
    connectTimeout: 2_000,
    commandTimeout: opts.commandTimeoutMs ?? 2_000,
    maxRetriesPerRequest: 1,
    // Reconnect forever, backing off to 2 s: the store heals when Redis returns.
    retryStrategy: (times) => Math.min(times * 100, 2_000),
  });
  // Without a listener ioredis reports every failed reconnect as an unhandled error.
  client.on('error', () => {});
  return client;
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

  /** SCAN and DEL under this client's key prefix (never KEYS, never FLUSHDB). */
  async clear(prefix = ''): Promise<number> {
    const own = this.client.options.keyPrefix ?? '';
    const pattern = `${(own + prefix).replace(/[*?[\]\\]/g, '\\$&')}*`;
    return this.run(async () => {
      let cursor = '0';
      let n = 0;
      do {
        const [next, keys] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        if (keys.length) n += await this.client.del(...keys.map((k) => k.slice(own.length)));
      } while (cursor !== '0');
      return n;
    });
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
