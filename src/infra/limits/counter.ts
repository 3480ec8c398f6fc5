// The hot path of the rate limits: counting one request against each of its windows.
//
// Written by hand rather than with rate-limiter-flexible (which still keeps login backoff and
// violations), because the library makes one Redis call per window per request, and a request
// counts against three or four windows. Here two things cut the round trips while keeping counts
// exact across instances:
// - Batching: every window of every request that arrived in the same turn of the event loop goes
//   to Redis in one script call (atomic per key: INCRBY in a Lua script), same-key hits as one.
// - Leases: while a window is far from its limit, the script also reserves a few more hits for
//   this instance (at most 1/16 of what remains, at most 1024), counted in Redis at once; the
//   instance hands them to its next requests without a round trip until they run out or the
//   window resets. A reserved hit is a counted hit, so no mix of instances can ever let more
//   than the limit through. The cost is fairness at the edge: near the limit another instance
//   may be refused while this one still holds a few unused hits, which it will give to its own
//   next requests. Near the limit nothing is leased and every hit goes to Redis.
// In process, counting is synchronous: no promise at all on the path of an embedded request.
// In a Redis Cluster a script may only touch keys of one hash slot: there a window's key puts the
// caller in braces (`...:{ip:1.2.3.4}`), so a caller's windows share a slot, and a batch goes as
// one call per caller. A single server (or Sentinel's master) keeps the plain keys, which running
// instances count in during a rolling deploy, and one call in all.
import { isCluster, type RedisConnection } from '../redis.ts';

/** One window to count a hit in: its key is `prefix + who` (the caller's own part; `{who}` in a Cluster). */
export interface Window {
  prefix: string;
  durationMs: number;
  /** The window's limit: leases are sized from what remains of it. */
  points: number;
}

/** The window's count after this hit, and milliseconds until it resets. */
export interface Count {
  count: number;
  resetMs: number;
}

/**
 * Per window, a Map from caller to count; expired entries are swept once a minute. Two levels,
 * not one Map of `prefix + who`: the caller's string is hashed once per request, not once per
 * window, and no key is concatenated on the hot path.
 */
export class MemoryCounter {
  private readonly windows = new Map<string, Map<string, { count: number; until: number }>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), 60_000).unref();
  }

  hit(windows: readonly Window[], who: string): Count[] {
    const now = Date.now();
    const out: Count[] = new Array(windows.length);
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i]!;
      let counts = this.windows.get(w.prefix);
      if (!counts) this.windows.set(w.prefix, (counts = new Map()));
      let entry = counts.get(who);
      if (!entry || entry.until <= now) counts.set(who, (entry = { count: 0, until: now + w.durationMs }));
      entry.count++;
      out[i] = { count: entry.count, resetMs: entry.until - now };
    }
    return out;
  }

  private sweep(): void {
    const now = Date.now();
    for (const counts of this.windows.values()) for (const [who, entry] of counts) if (entry.until <= now) counts.delete(who);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

/** Most hits one lease reserves, and the share of what remains of the window it may take. */
const LEASE_MAX = 1024;
const LEASE_SHARE = 16;

// Per key (ARGV: duration, limit, hits, for each): count the batch's hits, reserve a lease when the
// window is far from its limit, start the window on its first hit (or on a key left without an
// expiry), and answer count, time left and lease size for each key.
const HITS = `
local out = {}
for i = 1, #KEYS do
  local duration, points, hits = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local lease = math.floor((points - tonumber(redis.call('GET', KEYS[i]) or '0') - hits) / ${LEASE_SHARE})
  if lease > ${LEASE_MAX} then lease = ${LEASE_MAX} elseif lease < 0 then lease = 0 end
  local n = redis.call('INCRBY', KEYS[i], hits + lease)
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    ttl = duration
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  out[#out + 1] = n
  out[#out + 1] = ttl
  out[#out + 1] = lease
end
return out`;

/** Hits reserved in Redis for this instance: counts `next`..`last`, usable until `until`. */
interface Lease {
  next: number;
  last: number;
  until: number;
}

/** A request waiting on Redis for some of its windows (`missing`, indexes into `windows`). */
interface Pending {
  windows: readonly Window[];
  who: string;
  counts: Count[];
  missing: number[];
  resolve: (counts: Count[]) => void;
}

/** One key of a script call, with the requests (and which of their windows) it answers. */
interface KeyHits {
  window: Window;
  who: string;
  waiters: { p: Pending; i: number }[];
}

type HitsClient = RedisConnection & { pasargadHits(keys: number, ...args: (string | number)[]): Promise<number[]> };

/** Keys per script call at most: a burst of many callers is split into calls of this size. */
const MAX_KEYS = 512;

/**
 * Counts in Redis, shared by every instance. While Redis is not ready, or a call fails or times
 * out, the same hits are counted in process (the insurance counter), so a request never waits on
 * a Redis that is down and never fails because of it.
 */
export class RedisCounter {
  private readonly client: HitsClient;
  private readonly cluster: boolean;
  /** Per window prefix, per caller (two levels, as in MemoryCounter). */
  private readonly leases = new Map<string, Map<string, Lease>>();
  private readonly sweeper: NodeJS.Timeout;
  private queue: Pending[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    client: RedisConnection,
    readonly insurance: MemoryCounter = new MemoryCounter(),
  ) {
    if (!('pasargadHits' in client)) client.defineCommand('pasargadHits', { lua: HITS });
    this.client = client as HitsClient;
    this.cluster = isCluster(client);
    this.sweeper = setInterval(() => this.sweep(), 60_000).unref();
  }

  hit(windows: readonly Window[], who: string): Count[] | Promise<Count[]> {
    if (this.client.status !== 'ready') return this.insurance.hit(windows, who);
    const counts: Count[] = new Array(windows.length);
    const missing = this.fromLeases(windows, who, counts, undefined);
    if (!missing) return counts;
    return new Promise((resolve) => {
      this.queue.push({ windows, who, counts, missing, resolve });
      // While a call is out, requests wait for its answer and then go together in the next one
      // (under load, batches grow with the round trip); otherwise after the poll phase, so every
      // request read in this turn of the loop joins the batch.
      if (this.scheduled || this.inFlight > 0) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  /** Fills counts from leases held here; returns the windows still to ask Redis for, if any. */
  private fromLeases(windows: readonly Window[], who: string, counts: Count[], indexes: number[] | undefined): number[] | undefined {
    const now = Date.now();
    let missing: number[] | undefined;
    const n = indexes ? indexes.length : windows.length;
    for (let j = 0; j < n; j++) {
      const i = indexes ? indexes[j]! : j;
      const held = this.leases.get(windows[i]!.prefix);
      const lease = held?.get(who);
      if (lease && lease.until > now) {
        counts[i] = { count: lease.next, resetMs: lease.until - now };
        if (lease.next++ === lease.last) held!.delete(who);
      } else (missing ??= []).push(i);
    }
    return missing;
  }

  private flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const queue = this.queue;
    this.queue = [];
    let batch = new Map<string, KeyHits>();
    for (const p of queue) {
      // A lease may have come back while this request waited.
      const missing = this.fromLeases(p.windows, p.who, p.counts, p.missing);
      if (!missing) {
        p.resolve(p.counts);
        continue;
      }
      p.missing = missing;
      if (batch.size + missing.length > MAX_KEYS && batch.size) {
        this.send(batch);
        batch = new Map();
      }
      for (const i of missing) {
        const window = p.windows[i]!;
        const key = this.cluster ? `${window.prefix}{${p.who}}` : window.prefix + p.who;
        let k = batch.get(key);
        if (!k) batch.set(key, (k = { window, who: p.who, waiters: [] }));
        k.waiters.push({ p, i });
      }
    }
    if (batch.size) this.send(batch);
  }

  private send(batch: Map<string, KeyHits>): void {
    if (!this.cluster) return this.call(batch);
    const byCaller = new Map<string, Map<string, KeyHits>>();
    for (const [key, k] of batch) {
      let own = byCaller.get(k.who);
      if (!own) byCaller.set(k.who, (own = new Map()));
      own.set(key, k);
    }
    for (const own of byCaller.values()) this.call(own);
  }

  /** One script call: every key of `batch` must share a hash slot in a Cluster. */
  private call(batch: Map<string, KeyHits>): void {
    const keys: string[] = [];
    const args: number[] = [];
    for (const [key, { window, waiters }] of batch) (keys.push(key), args.push(window.durationMs, window.points, waiters.length));
    const sent = Date.now();
    this.inFlight++;
    this.client
      .pasargadHits(keys.length, ...keys, ...args)
      .then(
        (flat) => {
          let at = 0;
          for (const { window, who, waiters } of batch.values()) {
            const [n, ttl, lease] = [Number(flat[at++]), Number(flat[at++]), Number(flat[at++])];
            // The batch's hits take the counts before the lease, in arrival order.
            let count = n - lease - waiters.length;
            for (const { p, i } of waiters) p.counts[i] = { count: ++count, resetMs: ttl };
            // Timed from the send, so the lease never outlives the window in Redis.
            if (lease > 0) {
              let held = this.leases.get(window.prefix);
              if (!held) this.leases.set(window.prefix, (held = new Map()));
              held.set(who, { next: n - lease + 1, last: n, until: sent + ttl });
            }
          }
        },
        () => {
          for (const { waiters } of batch.values()) for (const { p, i } of waiters) p.counts[i] = this.insurance.hit([p.windows[i]!], p.who)[0]!;
        },
      )
      .then(() => {
        for (const { waiters } of batch.values()) for (const { p } of waiters) p.resolve(p.counts);
      })
      .finally(() => {
        this.inFlight--;
        if (this.inFlight === 0 && this.queue.length && !this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.flush());
        }
      });
  }

  private sweep(): void {
    const now = Date.now();
    for (const held of this.leases.values()) for (const [who, lease] of held) if (lease.until <= now) held.delete(who);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.insurance.close();
  }
}
