// The hot path of the rate limits: counting one request against each of its windows.
//
// Written by hand rather than with rate-limiter-flexible (which still keeps login backoff and
// violations), because the library makes one Redis call per window per request, and a request
// counts against three or four windows. Here every window of every request that arrived in the
// same turn of the event loop goes to Redis in one script call: still atomic per key (INCR in a
// Lua script), so counts stay exact across instances, at a fraction of the round trips. In
// process, counting is synchronous: no promise at all on the path of an embedded request.
import type { Redis } from 'ioredis';

/** One window to count a hit in: its key is `prefix + who` (the caller's own part). */
export interface Window {
  prefix: string;
  durationMs: number;
}

/** The window's count after this hit, and milliseconds until it resets. */
export interface Count {
  count: number;
  resetMs: number;
}

/** Fixed windows in a Map; expired entries are swept once a minute. */
export class MemoryCounter {
  private readonly counts = new Map<string, { count: number; until: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), 60_000).unref();
  }

  hit(windows: readonly Window[], who: string): Count[] {
    const now = Date.now();
    const out: Count[] = new Array(windows.length);
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i]!;
      const key = w.prefix + who;
      let entry = this.counts.get(key);
      if (!entry || entry.until <= now) this.counts.set(key, (entry = { count: 0, until: now + w.durationMs }));
      entry.count++;
      out[i] = { count: entry.count, resetMs: entry.until - now };
    }
    return out;
  }

  delete(key: string): void {
    this.counts.delete(key);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.counts) if (entry.until <= now) this.counts.delete(key);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

// Per key: count the hit, start the window on the first one (or on a key left without expiry),
// and answer the count with the time left. Returns count, ttl, count, ttl…
const HITS = `
local out = {}
for i = 1, #KEYS do
  local n = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    ttl = tonumber(ARGV[i])
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  out[#out + 1] = n
  out[#out + 1] = ttl
end
return out`;

interface Pending {
  windows: readonly Window[];
  who: string;
  resolve: (counts: Count[]) => void;
}

type HitsClient = Redis & { pasargadHits(keys: number, ...args: (string | number)[]): Promise<number[]> };

/** Keys per script call at most: a burst of requests is split into calls of this size. */
const MAX_KEYS = 512;

/**
 * Counts in Redis, shared by every instance. While Redis is not ready, or a call fails or times
 * out, the same hits are counted in process (the insurance counter), so a request never waits on
 * a Redis that is down and never fails because of it.
 */
export class RedisCounter {
  private readonly client: HitsClient;
  private queue: Pending[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    client: Redis,
    readonly insurance: MemoryCounter = new MemoryCounter(),
  ) {
    if (!('pasargadHits' in client)) client.defineCommand('pasargadHits', { lua: HITS });
    this.client = client as HitsClient;
  }

  hit(windows: readonly Window[], who: string): Count[] | Promise<Count[]> {
    if (this.client.status !== 'ready') return this.insurance.hit(windows, who);
    return new Promise((resolve) => {
      this.queue.push({ windows, who, resolve });
      // While a call is out, requests wait for its answer and then go together in the next one
      // (under load, batches grow with the round trip); otherwise after the poll phase, so every
      // request read in this turn of the loop joins the batch.
      if (this.scheduled || this.inFlight > 0) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const queue = this.queue;
    this.queue = [];
    let batch: Pending[] = [];
    let keys = 0;
    for (const p of queue) {
      if (keys + p.windows.length > MAX_KEYS && batch.length) {
        this.send(batch);
        batch = [];
        keys = 0;
      }
      batch.push(p);
      keys += p.windows.length;
    }
    if (batch.length) this.send(batch);
  }

  private send(batch: Pending[]): void {
    const keys: string[] = [];
    const durations: number[] = [];
    for (const p of batch) for (const w of p.windows) (keys.push(w.prefix + p.who), durations.push(w.durationMs));
    this.inFlight++;
    this.client
      .pasargadHits(keys.length, ...keys, ...durations)
      .then(
        (flat) => {
          let i = 0;
          for (const p of batch) p.resolve(p.windows.map(() => ({ count: Number(flat[i++]), resetMs: Number(flat[i++]) })));
        },
        () => {
          for (const p of batch) p.resolve(this.insurance.hit(p.windows, p.who));
        },
      )
      .finally(() => {
        this.inFlight--;
        if (this.inFlight === 0 && this.queue.length && !this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.flush());
        }
      });
  }

  close(): void {
    this.insurance.close();
  }
}
