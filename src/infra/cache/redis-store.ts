// A key-value store on Redis (production): one logical database per store (a key prefix per
// store in a Cluster), so a store can be cleared without touching the others.
import { isCluster, masters, type RedisConnection } from '../redis.ts';
import { StoreUnavailableError, type KeyValueStore, type StoreName } from './store.ts';

/**
 * Deletes every key that starts with `prefix` (after the client's own key prefix): SCAN in
 * batches, never KEYS, never FLUSHDB; in a Cluster on every master, as each holds only its own
 * slots. Returns how many went.
 */
export async function deleteMatching(client: RedisConnection, prefix: string): Promise<number> {
  const own = client.options.keyPrefix ?? '';
  const pattern = `${(own + prefix).replace(/[*?[\]\\]/g, '\\$&')}*`;
  let n = 0;
  // A Cluster knows its masters only once connected: wait for that (within the command timeout).
  if (isCluster(client)) await client.ping();
  for (const node of masters(client)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (!keys.length) continue;
      // One DEL per key, pipelined: the keys of one node may lie in different slots, and a
      // Cluster refuses a DEL across slots. SCAN answers with whole keys; the client adds its
      // prefix again, so take it off first.
      const pipeline = client.pipeline();
      for (const k of keys) pipeline.del(k.slice(own.length));
      for (const [err, deleted] of (await pipeline.exec()) ?? []) {
        if (err) throw err;
        n += Number(deleted);
      }
    } while (cursor !== '0');
  }
  return n;
}

export class RedisKeyValueStore implements KeyValueStore {
  constructor(
    private readonly client: RedisConnection,
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
