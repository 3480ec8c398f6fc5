// The key-value interface behind the named stores of the seed (`default`, `session`, `api`).
// This issue needs only the `session` store (guest sessions, revoked refresh tokens); the caching
// work extends the same interface. Values are strings; TTLs are whole seconds.

export type StoreName = 'default' | 'session' | 'api';

export interface KeyValueStore {
  readonly name: StoreName;
  /** The live value, or null when absent or expired. */
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Sets the key only when it is absent or expired; true when this call set it. Atomic across instances. */
  add(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Removes every entry whose key starts with `prefix` (all of this store's when empty); returns how many. */
  clear(prefix?: string): Promise<number>;
  close(): Promise<void>;
}

/** A store could not be reached: the request gets a 503, never a wrong answer. */
export class StoreUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE';
  constructor(readonly store: StoreName, cause: unknown) {
    super(`the ${store} store is unavailable`, { cause });
    this.name = 'StoreUnavailableError';
  }
}
