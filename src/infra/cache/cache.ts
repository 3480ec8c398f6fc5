// A named cache store (`default`, `api`): ready values in process memory (an LRU bounded by
// bytes), optionally backed by Redis as the shared second level. Entries carry tags; a tag is
// invalidated by moving it to a new version, so an entry is valid only while every tag it was
// made under still has the version it saw before its loader ran. That also makes a load that
// raced a write harmless: it is stored under the old versions and never served.
//
// Written here rather than taken from bentocache: its in-memory level cannot be bounded by bytes
// without serialising every value (so every hit would parse), and a hit costs ~7 µs there against
// ~0.1 µs for a plain LRU lookup, which matters when a cached response takes ~30 µs in all.
import { LRUCache } from 'lru-cache';
import type { InvalidationMessage, RemoteStore } from './remote.ts';
import type { StoreName } from './store.ts';

/** How a store turns its values into bytes for Redis and back, and how big a value is in memory. */
export interface Codec<T> {
  encode(value: T): Buffer;
  decode(bytes: Buffer): T;
  size(value: T): number;
}

export const jsonCodec: Codec<unknown> = {
  encode: (v) => Buffer.from(JSON.stringify(v)),
  decode: (b) => JSON.parse(b.toString()) as unknown,
  size: (v) => JSON.stringify(v).length * 2 + 64,
};

interface Entry<T> {
  value: T;
  tags: string[];
  versions: number[];
}

export interface CacheStats {
  store: StoreName;
  backend: 'memory' | 'redis';
  available: boolean;
  hits: number;
  misses: number;
  hitRate: number;
  keys: number;
  remoteKeys?: number;
  memoryBytes: number;
  evictions: number;
  /** Bytes given to Redis before and after compression. */
  rawBytes: number;
  storedBytes: number;
}

export interface SetOptions {
  ttl: number;
  tags?: string[];
  /** The tag versions read before the value was loaded (see `versionsFor`). */
  versions?: number[];
}

export interface CacheOptions<T> {
  name: StoreName;
  codec: Codec<T>;
  memoryBytes: number;
  remote?: RemoteStore;
  /** Longest an entry stays in process memory when Redis holds the shared copy. */
  localTtlSeconds?: number;
  /**
   * With Redis: how often this instance asks whether it missed a tag bump (a writer that could not
   * publish it), and retries its own unsent bumps. The longest a copy in memory outlives a write
   * that Redis took; 0 turns the check off.
   */
  syncMs?: number;
  /** false: nothing is kept; every read goes to its loader (CACHE_ENABLED=false). */
  enabled?: boolean;
}

export function sameVersions(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The family of a key (`product_list:…` → `product_list`): every key is tagged with it. */
export function familyOf(key: string): string {
  const i = key.indexOf(':');
  return i === -1 ? key : key.slice(0, i);
}

export class Cache<T> {
  readonly name: StoreName;
  private readonly local: LRUCache<string, Entry<T>>;
  // With Redis a forgotten version is simply asked again, so the map can be bounded; in memory
  // alone it is the only record, and holds one number per tag ever invalidated.
  private readonly versions: Map<string, number> | LRUCache<string, number>;
  /** Tag bumps Redis did not take (it was out of reach): made before anything is served again. */
  private readonly unsent = new Set<string>();
  private readonly inflight = new Map<string, { work: Promise<T>; versions: number[] | undefined }>();
  private readonly counters = { hits: 0, misses: 0, evictions: 0 };
  private readonly listeners = new Set<(m: InvalidationMessage, own: boolean) => void>();
  /**
   * The store's bump counter (remote.ts) up to which this instance knows every bump: moved by
   * messages only while they leave no gap (a later one does not say an earlier one came; `ahead`
   * holds those that came early, as two writers' messages may cross), and by `sync`. Undefined
   * until the first sync.
   */
  private epoch: number | undefined;
  private readonly ahead = new Set<number>();
  /**
   * For tags an entry learns only once its value is made (`lateVersions`): a count of the
   * invalidations this instance applied, the count at which each tag was last moved, and the
   * count before which nothing is known (the map was emptied, or every copy forgotten).
   */
  private applied = 0;
  private readonly movedAt = new Map<string, number>();
  private movedFloor = 0;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing = false;
  private sending: Promise<void> | undefined;
  private readied: Promise<void> | undefined;

  constructor(private readonly opts: CacheOptions<T>) {
    this.name = opts.name;
    this.versions = opts.remote ? new LRUCache<string, number>({ max: 200_000 }) : new Map<string, number>();
    this.local = new LRUCache<string, Entry<T>>({
      maxSize: opts.memoryBytes,
      sizeCalculation: (e, key) => Math.max(1, opts.codec.size(e.value) + 2 * key.length + 64 * e.tags.length),
      ttlAutopurge: false,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.counters.evictions++;
      },
    });
    const remote = opts.remote;
    if (remote) {
      // While Redis was out of reach, other instances' invalidations may have been missed.
      remote.onFailed = () => this.forgetLocal();
      remote.onRecovered = () => {
        this.forgetLocal();
        void this.sendUnsent();
      };
      void remote.subscribe(
        (m) => this.apply(m, false),
        () => this.forgetLocal(),
      );
      const every = opts.syncMs ?? 1_000;
      if (every > 0) {
        this.syncTimer = setInterval(() => void this.sync(), every);
        this.syncTimer.unref();
      }
    }
  }

  /**
   * What pub/sub cannot promise. A writer whose bump outlived CACHE_TIMEOUT_MS (a busy Redis) gave
   * up and published nothing, though Redis may have made the bump once it ran again; a writer cut
   * off from Redis holds its bumps in `unsent`. So, every `syncMs`: our own unsent bumps are tried
   * again (not only when some later command happens to succeed), and the store's epoch is read:
   * ahead of what we heard, the versions of every tag we know are read again; behind (Redis
   * restarted, cleared, expired), every copy is dropped. A Redis too slow to answer this read
   * puts the store to rest, which drops every copy too: no copy in memory outlives the interval.
   */
  async sync(): Promise<void> {
    const remote = this.opts.remote;
    if (!remote || this.syncing || !remote.available) return;
    this.syncing = true;
    try {
      if (this.unsent.size) return await this.sendUnsent();
      const current = await remote.epoch();
      if (current === undefined) return; // failed: the store rests and dropped its copies
      const known = this.epoch;
      if (known !== undefined && current < known) {
        this.forgetLocal();
        this.ahead.clear();
      } else if (known === undefined || current > known) {
        const tags = [...this.versions.keys()];
        const changed: Record<string, number> = {};
        for (let i = 0; i < tags.length; i += 500) {
          const batch = tags.slice(i, i + 500);
          const fetched = await remote.tagVersions(batch);
          if (!fetched) return;
          batch.forEach((t, j) => {
            const have = this.versions.get(t);
            // Only forward: a lower value is a bump's message overtaking this read, not a reset.
            if (have !== undefined && fetched[j]! > have) changed[t] = fetched[j]!;
          });
        }
        if (Object.keys(changed).length) this.apply({ tags: changed }, false);
      }
      this.epoch = current;
      for (const e of this.ahead) if (e <= current) this.ahead.delete(e);
    } finally {
      this.syncing = false;
    }
  }

  /**
   * Resolves when the store can be used (Redis subscribed, and its epoch read once, so values that
   * name tags as they are made can be stored from the first load); at once for memory.
   */
  ready(): Promise<void> {
    const remote = this.opts.remote;
    if (!remote) return Promise.resolve();
    this.readied ??= remote.ready.then(() => this.sync());
    return this.readied;
  }

  get backend(): 'memory' | 'redis' {
    return this.opts.remote ? 'redis' : 'memory';
  }

  /** Whether the cache can be used right now (Redis, when there is one, is reachable). */
  get available(): boolean {
    return this.opts.enabled !== false && (!this.opts.remote || (this.opts.remote.available && this.unsent.size === 0));
  }

  private sendUnsent(): Promise<void> {
    // One at a time: recovery and the periodic sync may both ask.
    this.sending ??= (async () => {
      if (!this.unsent.size || !this.opts.remote) return;
      const tags = [...this.unsent];
      const bumped = await this.opts.remote.bumpTags(tags);
      if (!bumped) return;
      for (const t of tags) this.unsent.delete(t);
      this.apply(bumped, true);
    })().finally(() => (this.sending = undefined));
    return this.sending;
  }

  /** Runs for every invalidation this instance applies, its own and other instances' (tests, warming). */
  onInvalidation(listener: (m: InvalidationMessage, own: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private forgetLocal(): void {
    this.local.clear();
    this.versions.clear();
    this.movedFloor = ++this.applied;
    this.movedAt.clear();
  }

  private moved(tag: string): void {
    // Bounded: past 100,000 tags the record starts again, and loads begun before cannot be stored.
    if (this.movedAt.size >= 100_000) {
      this.movedAt.clear();
      this.movedFloor = this.applied;
    }
    this.movedAt.set(tag, this.applied);
  }

  /** A mark taken before a value is loaded, for `lateVersions`. */
  mark(): number {
    return this.applied;
  }

  /**
   * The versions to store a value under for tags it learned only as it was made (the products a
   * list page holds), or undefined if it must not be stored: one of them moved since `since` (a
   * write raced the load, which may have read the rows before it). With Redis, a tag not known
   * here is asked of Redis; the version it gives may count a write made after the rows were read
   * whose message has not reached this instance yet, so it is trusted only if Redis's epoch, read
   * at the same instant, is the one up to which this instance has heard every bump. Otherwise
   * (a message on its way) it is remembered and the next load is stored.
   */
  async lateVersions(tags: string[], since: number): Promise<number[] | undefined> {
    if (!this.available || this.movedFloor > since) return undefined;
    const out: number[] = [];
    const unknown: number[] = [];
    for (const [i, t] of tags.entries()) {
      if ((this.movedAt.get(t) ?? 0) > since) return undefined;
      const v = this.versions.get(t);
      if (v === undefined && this.opts.remote) unknown.push(i);
      out.push(v ?? 0);
    }
    if (!unknown.length) return out;
    const fetched = await this.opts.remote!.tagVersionsAt(unknown.map((i) => tags[i]!));
    if (!fetched) return undefined;
    unknown.forEach((i, j) => {
      out[i] = fetched.versions[j]!;
      if (!this.versions.has(tags[i]!)) this.versions.set(tags[i]!, out[i]);
    });
    // Heard of since the mark, while Redis was asked: a write raced the load after all.
    if (this.movedFloor > since || tags.some((t) => (this.movedAt.get(t) ?? 0) > since)) return undefined;
    if (fetched.epoch !== this.epoch) return undefined;
    return out;
  }

  private apply(m: InvalidationMessage, own: boolean): void {
    this.applied++;
    if ('tags' in m) {
      // A bump this instance already counted (its epoch is behind what it has heard) that brings a
      // tag back below what it knows: the store's counters went back (Redis restarted, cleared).
      const recounted = m.epoch !== undefined && this.epoch !== undefined && m.epoch <= this.epoch;
      if (m.epoch !== undefined && this.epoch !== undefined && m.epoch > this.epoch) {
        if (this.ahead.size >= 10_000) this.ahead.clear(); // the next sync makes up for them
        this.ahead.add(m.epoch);
        while (this.ahead.delete(this.epoch + 1)) this.epoch++;
      }
      for (const [tag, v] of Object.entries(m.tags)) {
        const known = this.versions.get(tag);
        if (known !== undefined && v < known) {
          // Counters that went back could make old copies look current again: drop every copy.
          // Otherwise this is a bump overtaken by a later one of the same tag (concurrent writes
          // on this instance or others, answered or delivered out of order): the later stands.
          // Dropping every copy then (as this did) emptied the cache at each pair of concurrent
          // checkouts.
          if (!recounted) {
            this.moved(tag);
            continue;
          }
          this.forgetLocal();
        }
        if (known === undefined || v !== known) this.versions.set(tag, v);
        this.moved(tag);
      }
    } else if ('keys' in m) {
      for (const k of m.keys) this.local.delete(k);
    } else if ('prefix' in m) {
      for (const k of this.local.keys()) if (k.startsWith(m.prefix)) this.local.delete(k);
    } else {
      this.forgetLocal();
    }
    for (const l of this.listeners) l(m, own);
  }

  private tagsFor(key: string, tags: string[] = []): string[] {
    const family = familyOf(key);
    return tags.includes(family) ? tags : [family, ...tags];
  }

  /** Versions known in this process, or undefined if one must be asked of Redis. */
  private knownVersions(tags: string[]): number[] | undefined {
    const out: number[] = [];
    for (const t of tags) {
      const v = this.versions.get(t);
      if (v === undefined) {
        if (this.opts.remote) return undefined;
        out.push(0);
      } else out.push(v);
    }
    return out;
  }

  /** The current versions of `tags` (read before loading a value that will be stored under them). */
  async versionsFor(key: string, tags?: string[]): Promise<number[] | undefined> {
    const all = this.tagsFor(key, tags);
    const known = this.knownVersions(all);
    if (known) return known;
    const fetched = await this.opts.remote!.tagVersions(all);
    if (!fetched) return undefined;
    all.forEach((t, i) => {
      if (!this.versions.has(t)) this.versions.set(t, fetched[i]!);
    });
    return this.knownVersions(all);
  }

  private valid(e: Entry<T>): boolean | undefined {
    let unknown = false;
    for (let i = 0; i < e.tags.length; i++) {
      let v = this.versions.get(e.tags[i]!);
      if (v === undefined) {
        // In memory alone a tag never invalidated is at 0; with Redis, Redis must say.
        if (this.opts.remote) {
          unknown = true;
          continue;
        }
        v = 0;
      }
      if (v !== e.versions[i]) return false;
    }
    return unknown ? undefined : true;
  }

  /**
   * A value from process memory only, without waiting: the hot path of the response cache.
   * `count: false` leaves the hit and miss counters alone (the server's own warming requests).
   */
  peek(key: string, count = true): T | undefined {
    if (!this.available) return undefined;
    const e = this.local.get(key);
    if (!e) return undefined;
    if (this.valid(e) !== true) return undefined;
    if (count) this.counters.hits++;
    return e.value;
  }

  async get(key: string, count = true): Promise<T | undefined> {
    if (!this.available) return undefined;
    const e = this.local.get(key);
    if (e) {
      let ok = this.valid(e);
      if (ok === undefined) {
        await this.versionsFor(key, e.tags);
        ok = this.valid(e);
      }
      if (ok) {
        if (count) this.counters.hits++;
        return e.value;
      }
      this.local.delete(key);
    }
    const remote = this.opts.remote;
    if (remote) {
      const found = await remote.get(key);
      if (found) {
        // Still current? Asked before the value is decoded: decoding remakes a response's
        // compressed variants, work lost on an entry a write has dropped.
        const stamp = { tags: found.tags, versions: found.versions } as Entry<T>;
        if (this.valid(stamp) === undefined) await this.versionsFor(key, found.tags);
        if (this.valid(stamp)) {
          let value: T | undefined;
          try {
            value = this.opts.codec.decode(found.payload);
          } catch {
            // Not ours, or an older format (a rolling deploy): a miss, and the entry goes.
            await remote.del([key]);
          }
          if (value !== undefined) {
            if (count) this.counters.hits++;
            this.local.set(key, { value, tags: found.tags, versions: found.versions }, { ttl: (this.opts.localTtlSeconds ?? 60) * 1000 });
            return value;
          }
        }
      }
    }
    if (count) this.counters.misses++;
    return undefined;
  }

  async set(key: string, value: T, o: SetOptions): Promise<void> {
    if (!this.available) return;
    const tags = this.tagsFor(key, o.tags);
    const versions = o.versions ?? (await this.versionsFor(key, o.tags));
    if (!versions) return;
    const entry: Entry<T> = { value, tags, versions };
    const remote = this.opts.remote;
    this.local.set(key, entry, { ttl: Math.min(o.ttl, remote ? (this.opts.localTtlSeconds ?? 60) : o.ttl) * 1000 });
    if (remote) await remote.set(key, { tags, versions, payload: this.opts.codec.encode(value) }, o.ttl);
  }

  /**
   * The seed's get_or_set_cache: the cached value, or the loader's, stored for `ttl` seconds.
   * Concurrent misses of one key in this process run the loader once. If the cache is out of
   * reach the loader simply runs: no request fails because of the cache.
   */
  async getOrSet(key: string, loader: () => Promise<T>, o: { ttl: number; tags?: string[]; shows?: (value: T) => string[] }): Promise<T> {
    const hit = await this.get(key);
    if (hit !== undefined) return hit;
    const versions = this.available ? await this.versionsFor(key, o.tags) : undefined;
    const running = this.inflight.get(key);
    // Join a load only if no write happened since it started; a later caller must see the write.
    if (running && versions && running.versions && sameVersions(running.versions, versions)) return running.work;
    const since = this.mark();
    const work = (async () => {
      const value = await loader();
      if (versions) await this.setShowing(key, value, { ttl: o.ttl, tags: o.tags, versions }, o.shows?.(value) ?? [], since);
      return value;
    })();
    const entry = { work, versions };
    this.inflight.set(key, entry);
    try {
      return await work;
    } finally {
      if (this.inflight.get(key) === entry) this.inflight.delete(key);
    }
  }

  /**
   * `set` with tags the value named once it was made (`shows`), if none of them moved since the
   * mark `since` taken before it was loaded (see lateVersions).
   */
  async setShowing(key: string, value: T, o: SetOptions & { versions: number[] }, shows: string[], since: number): Promise<void> {
    const early = this.tagsFor(key, o.tags);
    const late = [...new Set(shows)].filter((t) => !early.includes(t));
    const lateVersions = late.length ? await this.lateVersions(late, since) : [];
    if (lateVersions) await this.set(key, value, { ttl: o.ttl, tags: [...early, ...late], versions: [...o.versions, ...lateVersions] });
  }

  /**
   * The seed's `@cache_response(timeout, key_prefix)` on a function: calls with equal arguments
   * share one entry, `keyPrefix:<arguments as JSON>`, in this store.
   */
  wrap<A extends unknown[]>(fn: (...args: A) => Promise<T>, o: { keyPrefix: string; ttl: number; tags?: (...args: A) => string[] }): (...args: A) => Promise<T> {
    return (...args: A) => this.getOrSet(`${o.keyPrefix}:${JSON.stringify(args)}`, () => fn(...args), { ttl: o.ttl, tags: o.tags?.(...args) });
  }

  /** Every entry made under any of these tags stops being served, on every instance. */
  async invalidateTags(tags: string[]): Promise<void> {
    if (!tags.length) return;
    const remote = this.opts.remote;
    if (!remote) {
      const bumped: Record<string, number> = {};
      for (const t of tags) bumped[t] = (this.versions.get(t) ?? 0) + 1;
      this.apply({ tags: bumped }, true);
      return;
    }
    const bumped = await remote.bumpTags(tags);
    if (bumped) {
      this.apply(bumped, true);
      return;
    }
    // Redis out of reach: the store serves nothing until these bumps are made (see sendUnsent).
    for (const t of tags) this.unsent.add(t);
    this.forgetLocal();
  }

  /**
   * The seed's invalidate_cache: exact keys, and patterns ending in `*`. `family:*` (a whole key
   * family such as `product_list:*`) is one tag bump; any other pattern is a SCAN of this store.
   */
  async invalidate(patterns: string[]): Promise<void> {
    const keys: string[] = [];
    const families: string[] = [];
    const prefixes: string[] = [];
    if (patterns.includes('*')) return this.clear();
    for (const p of patterns) {
      if (!p.endsWith('*')) keys.push(p);
      else if (/^[^:*?[\]]+:\*$/.test(p)) families.push(p.slice(0, -2));
      else prefixes.push(p.slice(0, -1));
    }
    if (families.length) await this.invalidateTags(families);
    if (keys.length) {
      for (const k of keys) this.local.delete(k);
      await this.opts.remote?.del(keys);
      await this.opts.remote?.publish({ keys });
      // `product:42` is also the tag of everything that shows product 42.
      await this.invalidateTags(keys);
    }
    for (const prefix of prefixes) {
      for (const k of this.local.keys()) if (k.startsWith(prefix)) this.local.delete(k);
      await this.opts.remote?.deletePrefix(prefix);
    }
  }

  /** Empties this store (its own entries only). */
  async clear(): Promise<void> {
    this.forgetLocal();
    await this.opts.remote?.clear();
  }

  /** The most used keys in process memory, most recent first (for warming). */
  recentKeys(limit: number): string[] {
    const out: string[] = [];
    for (const k of this.local.keys()) {
      out.push(k);
      if (out.length >= limit) break;
    }
    return out;
  }

  async stats(): Promise<CacheStats> {
    const { hits, misses, evictions } = this.counters;
    const remote = this.opts.remote;
    return {
      store: this.name,
      backend: this.backend,
      available: this.available,
      hits,
      misses,
      hitRate: hits + misses === 0 ? 0 : hits / (hits + misses),
      keys: this.local.size,
      ...(remote ? { remoteKeys: await remote.keyCount() } : {}),
      memoryBytes: this.local.calculatedSize,
      evictions,
      rawBytes: remote?.stats.rawBytes ?? 0,
      storedBytes: remote?.stats.storedBytes ?? 0,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.syncTimer);
    await this.opts.remote?.close();
  }
}
