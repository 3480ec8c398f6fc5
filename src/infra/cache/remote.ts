// The shared second level of a cache store: one Redis logical database per store (a key prefix
// in a Cluster), plus a pub/sub channel that tells every instance which tags were invalidated.
// Every command names one key, or keys of one node, so the same code runs on a Cluster.
// (Classic PUBLISH reaches the subscribers on every node of a Cluster.) Every command has a short
// timeout; a failure puts the store to rest (callers then go to the database) and the outage is
// logged once, not per request.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { RedisTarget } from '../../config.ts';
import { randomUUID } from 'node:crypto';
import { isCluster, openRedis, type RedisConnection } from '../redis.ts';
import { deleteMatching } from './redis-store.ts';
import type { StoreName } from './store.ts';

export interface RemoteEnvelope {
  tags: string[];
  versions: number[];
  payload: Buffer;
}

export interface RemoteLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface RemoteOptions {
  target: RedisTarget;
  name: StoreName;
  keyPrefix?: string;
  timeoutMs: number;
  compressThreshold: number;
  log?: RemoteLog;
  /** How long a failed store rests before it is tried again. */
  restMs?: number;
}

/**
 * `epoch` (with tags): the store's bump counter after this bump. Every bump moves it by one, so an
 * instance that finds it ahead of the bumps it heard of knows it missed one (see Cache.sync).
 */
export type InvalidationMessage = { tags: Record<string, number>; epoch?: number } | { keys: string[] } | { prefix: string } | { clear: true };

/**
 * Tag counters and the store's bump counter (beside them, so a clear or an expiry takes it too).
 * The `{v}` hash tag puts them all in one slot of a Redis Cluster, so that there too a bump is one
 * MULTI and the versions with the epoch are one MGET, read at one instant (tagVersionsAt). Tag
 * traffic is light (a bump per write, a read per miss naming a tag not seen yet): one master
 * carries it. The entries themselves spread over every master.
 */
const tagKey = (tag: string) => `tagv:{v}:${tag}`;
const EPOCH_KEY = tagKey('~epoch');

const FLAG_GZIP = 1;

/** Seconds a tag counter outlives its last bump: far longer than any entry's TTL (at most an hour). */
export const TAG_VERSION_TTL = 2 * 86_400;

/**
 * Entry layout in Redis: [flags u8][header length u32][header JSON {t, v}][payload, gzipped when
 * flagged]. Buffers, not JSON: a cached response is stored as bytes and sent as bytes.
 */
export function encodeEnvelope(e: RemoteEnvelope, compressThreshold: number): Buffer {
  const header = Buffer.from(JSON.stringify({ t: e.tags, v: e.versions }));
  const compress = e.payload.length >= compressThreshold;
  const payload = compress ? gzipSync(e.payload, { level: 6 }) : e.payload;
  const head = Buffer.allocUnsafe(5);
  head.writeUInt8(compress ? FLAG_GZIP : 0, 0);
  head.writeUInt32BE(header.length, 1);
  return Buffer.concat([head, header, payload]);
}

export function decodeEnvelope(buf: Buffer): RemoteEnvelope {
  const flags = buf.readUInt8(0);
  const length = buf.readUInt32BE(1);
  const header = JSON.parse(buf.subarray(5, 5 + length).toString()) as { t: string[]; v: number[] };
  const body = buf.subarray(5 + length);
  return { tags: header.t, versions: header.v, payload: flags & FLAG_GZIP ? gunzipSync(body) : body };
}

export class RemoteStore {
  private readonly client: RedisConnection;
  private subscriber: RedisConnection | undefined;
  private readonly channel: string;
  private downUntil = 0;
  private down = false;
  /** Subscribed to the invalidation channel: without it, copies in memory cannot be trusted. */
  private listening = false;
  readonly stats = { rawBytes: 0, storedBytes: 0, failures: 0 };

  /** Names this store's messages, so its subscriber can pass over its own. */
  private readonly id = randomUUID();

  constructor(private readonly opts: RemoteOptions) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    // Commands made while (re)connecting wait in ioredis's queue, but never longer than the timeout.
    this.client = openRedis(opts.target, { keyPrefix: opts.keyPrefix, commandTimeoutMs: opts.timeoutMs });
    this.channel = `${opts.keyPrefix ?? ''}pasargad:cache:${opts.name}`;
  }

  /** Resolves once subscribed (until then nothing is cached: an invalidation could be missed). */
  readonly ready: Promise<void>;
  private markReady: () => void = () => {};

  get available(): boolean {
    return this.listening && (!this.down || Date.now() >= this.downUntil);
  }

  private failed(err: unknown): void {
    this.stats.failures++;
    if (!this.down) this.opts.log?.warn({ store: this.opts.name, err: (err as Error)?.message }, 'cache store unavailable: serving from the database until it returns');
    this.down = true;
    this.downUntil = Date.now() + (this.opts.restMs ?? 2_000);
    this.onFailed?.();
  }

  private recovered(): void {
    if (!this.down) return;
    this.down = false;
    this.opts.log?.info({ store: this.opts.name }, 'cache store reachable again');
    this.onRecovered?.();
  }

  /** Runs a command unless the store is resting; undefined when it cannot answer. */
  private async run<T>(command: (r: RedisConnection) => Promise<T>): Promise<T | undefined> {
    if (!this.available) return undefined;
    try {
      const result = await command(this.client);
      this.recovered();
      return result;
    } catch (err) {
      this.failed(err);
      return undefined;
    }
  }

  /** Called after an outage: invalidations may have been missed, so local copies must go. */
  onRecovered?: () => void;
  onFailed?: () => void;

  async get(key: string): Promise<RemoteEnvelope | null | undefined> {
    const buf = await this.run((r) => r.getBuffer(key));
    if (buf === undefined) return undefined;
    if (buf === null) return null;
    try {
      return decodeEnvelope(buf);
    } catch {
      return null;
    }
  }

  async set(key: string, envelope: RemoteEnvelope, ttlSeconds: number): Promise<void> {
    const buf = encodeEnvelope(envelope, this.opts.compressThreshold);
    const ok = await this.run((r) => r.set(key, buf, 'EX', ttlSeconds));
    if (ok !== undefined) {
      this.stats.rawBytes += envelope.payload.length;
      this.stats.storedBytes += buf.length;
    }
  }

  async del(keys: string[]): Promise<void> {
    // One DEL per key in a Cluster, where the keys may lie in different slots; one in all otherwise.
    if (keys.length) await this.run<unknown>((r) => (isCluster(r) ? Promise.all(keys.map((k) => r.del(k))) : r.del(...keys)));
  }

  /** Current versions of tags (0 for a tag never invalidated); undefined when Redis cannot answer. */
  async tagVersions(tags: string[]): Promise<number[] | undefined> {
    if (!tags.length) return [];
    const values = await this.run((r) => r.mget(...tags.map(tagKey)));
    return values?.map((v) => Number(v ?? 0));
  }

  /**
   * Current versions of tags with the store's epoch, read at one instant (one MGET of one slot; a
   * bump is one MULTI), so an instance that has heard every bump up to that epoch knows none of
   * these versions counts a bump it has not heard of. Undefined when Redis cannot answer.
   */
  async tagVersionsAt(tags: string[]): Promise<{ versions: number[]; epoch: number } | undefined> {
    const values = await this.run((r) => r.mget(...tags.map(tagKey), EPOCH_KEY));
    if (!values) return undefined;
    return { versions: values.slice(0, -1).map((v) => Number(v ?? 0)), epoch: Number(values.at(-1) ?? 0) };
  }

  /**
   * Moves tags to new versions, and the store's epoch by one, and tells every instance. Undefined
   * when Redis cannot answer (the bumps may still have been made, late: a busy Redis runs what it
   * was sent after the client gave up; the message then never goes, which Cache.sync makes up for).
   */
  async bumpTags(tags: string[]): Promise<{ tags: Record<string, number>; epoch: number } | undefined> {
    // A counter untouched for two days may go: every entry made under it expired long before.
    // One transaction in all (one slot, in a Cluster too), the epoch last.
    const bump = (p: ReturnType<RedisConnection['pipeline']>, key: string) => p.incr(key).expire(key, TAG_VERSION_TTL);
    // A pipeline does not reject when its commands fail (a timeout included): each answer carries
    // its own error. Taken as versions, a timed-out INCR read as version 0, which the writer applied
    // (and published, late) as if the bump had been made.
    const counts = (answers: [Error | null, unknown][] | null) => {
      const failed = (answers ?? []).find(([err]) => err);
      if (failed || !answers) throw failed?.[0] ?? new Error('pipeline discarded');
      return answers.filter((_, i) => i % 2 === 0).map(([, v]) => v);
    };
    const results = await this.run(async (r) => {
      // MULTI, so no reader sees a tag moved and the epoch not yet (tagVersionsAt relies on it).
      const pipeline = r.multi();
      for (const t of tags) bump(pipeline, tagKey(t));
      bump(pipeline, EPOCH_KEY);
      return counts(await pipeline.exec());
    });
    if (!results) return undefined;
    const versions: Record<string, number> = {};
    tags.forEach((t, i) => (versions[t] = Number(results[i] ?? 0)));
    const epoch = Number(results[tags.length] ?? 0);
    await this.publish({ tags: versions, epoch });
    return { tags: versions, epoch };
  }

  /** The store's bump counter (0 before any bump); undefined when Redis cannot answer in time. */
  async epoch(): Promise<number | undefined> {
    const v = await this.run((r) => r.get(EPOCH_KEY));
    return v === undefined ? undefined : Number(v ?? 0);
  }

  /** Deletes every key under a prefix (SCAN, never KEYS) and tells every instance. */
  async deletePrefix(prefix: string): Promise<number> {
    const deleted = await this.run((r) => deleteMatching(r, prefix));
    // If tag counters went too, every instance must forget what it holds (see Cache.apply).
    const counters = 'tagv:'.startsWith(prefix) || prefix.startsWith('tagv:');
    await this.publish(counters ? { clear: true } : { prefix });
    return deleted ?? 0;
  }

  /** Removes this store's entries (its own keys and tag versions only, never FLUSHDB). */
  async clear(): Promise<number> {
    const n = await this.deletePrefix('');
    await this.publish({ clear: true });
    return n;
  }

  /** Tells every other instance (this one applied it already: its own messages are not handed back). */
  async publish(message: InvalidationMessage): Promise<void> {
    await this.run((r) => r.publish(this.channel, JSON.stringify({ ...message, from: this.id })));
  }

  /** Listens for other instances' invalidations; `onReady` runs at each (re)subscription. */
  async subscribe(handler: (m: InvalidationMessage) => void, onReady: () => void): Promise<void> {
    const sub = openRedis(this.opts.target, { commandTimeoutMs: null, autoResubscribe: false });
    this.subscriber = sub;
    sub.on('error', () => {});
    sub.on('close', () => {
      if (!this.listening) return;
      this.listening = false;
      this.failed(new Error('connection to Redis lost'));
    });
    sub.on('message', (_channel, raw: string) => {
      try {
        const m = JSON.parse(raw) as InvalidationMessage & { from?: string };
        if (m.from === this.id) return;
        delete m.from;
        handler(m);
      } catch {
        // a malformed message is ignored
      }
    });
    // Listening only once SUBSCRIBE is confirmed: an invalidation published before that would be missed.
    sub.on('ready', () => {
      sub.subscribe(this.channel).then(
        () => {
          onReady();
          this.listening = true;
          this.recovered();
          this.markReady();
        },
        () => undefined,
      );
    });
  }

  /** Keys in the store's database; unknown in a Cluster, where every store shares database 0. */
  async keyCount(): Promise<number | undefined> {
    if (isCluster(this.client)) return undefined;
    return this.run((r) => r.dbsize());
  }

  async close(): Promise<void> {
    this.listening = false; // the subscriber's close that follows is ours, not an outage
    await Promise.all([this.client.quit().catch(() => this.client.disconnect()), this.subscriber?.quit().catch(() => this.subscriber?.disconnect())]);
  }
}
