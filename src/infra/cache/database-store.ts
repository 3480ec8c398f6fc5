// The embedded implementation of a key-value store: rows of `kv_entries` in the shop's own
// database, so guest sessions and revoked tokens survive a restart without Redis. Expired rows
// read as absent; the cleanup task deletes them.
import { sql } from 'kysely';
import type { Database } from '../../db/database.ts';
import type { KeyValueStore, StoreName } from './store.ts';

const expiresIn = (ttlSeconds: number) => sql<string>`now() + make_interval(secs => ${ttlSeconds})`;

export class DatabaseKeyValueStore implements KeyValueStore {
  constructor(
    private readonly database: Database,
    readonly name: StoreName,
  ) {}

  async get(key: string): Promise<string | null> {
    const row = await this.database.db
      .selectFrom('kv_entries')
      .select('value')
      .where('store', '=', this.name)
      .where('key', '=', key)
      .where('expires_at', '>', sql<string>`now()`)
      .executeTakeFirst();
    return row?.value ?? null;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.database.db
      .insertInto('kv_entries')
      .values({ store: this.name, key, value, expires_at: expiresIn(ttlSeconds) })
      .onConflict((oc) => oc.columns(['store', 'key']).doUpdateSet({ value: (eb) => eb.ref('excluded.value'), expires_at: (eb) => eb.ref('excluded.expires_at') }))
      .execute();
  }

  async add(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    // The row lock taken by ON CONFLICT makes concurrent adds of one key serialise: one wins.
    const row = await this.database.db
      .insertInto('kv_entries')
      .values({ store: this.name, key, value, expires_at: expiresIn(ttlSeconds) })
      .onConflict((oc) =>
        oc
          .columns(['store', 'key'])
          .doUpdateSet({ value: (eb) => eb.ref('excluded.value'), expires_at: (eb) => eb.ref('excluded.expires_at') })
          .where('kv_entries.expires_at', '<=', sql<string>`now()`),
      )
      .returning('key')
      .executeTakeFirst();
    return row !== undefined;
  }

  async delete(key: string): Promise<void> {
    await this.database.db.deleteFrom('kv_entries').where('store', '=', this.name).where('key', '=', key).execute();
  }

  async clear(prefix = ''): Promise<number> {
    const escaped = prefix.replace(/[\\%_]/g, '\\$&');
    const r = await this.database.db.deleteFrom('kv_entries').where('store', '=', this.name).where('key', 'like', `${escaped}%`).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /** Removes expired rows; returns how many. */
  async purgeExpired(): Promise<number> {
    const r = await this.database.db.deleteFrom('kv_entries').where('store', '=', this.name).where('expires_at', '<=', sql<string>`now()`).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async close(): Promise<void> {}
}
