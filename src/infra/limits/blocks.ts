// Blocked client addresses. Every request asks whether its IP is blocked, so the answer must cost
// no round trip: each instance holds the (short) list in memory. With Redis the list lives in one
// hash shared by every instance, and a pub/sub message tells the others of each block and unblock
// at once; a reload on every (re)connection and every 30 s covers messages missed meanwhile.
// Embedded, the list is in-process, as DESIGN.md has it.
import type { RedisConnection } from '../redis.ts';

export interface BlockEntry {
  ip: string;
  reason: string;
  blocked_at: string;
  expires_at: string;
}

type Message = { block: BlockEntry } | { unblock: string };

export interface BlockLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface BlockRegistryOptions {
  /** Commands (keys get its key prefix). */
  client?: RedisConnection;
  /** A second connection for SUBSCRIBE. */
  subscriber?: RedisConnection;
  channelPrefix?: string;
  log?: BlockLog;
}

const HASH = 'pasargad:limits:blocks';

export class BlockRegistry {
  private readonly local = new Map<string, BlockEntry & { until: number }>();
  private readonly channel: string;
  private timer: NodeJS.Timeout | undefined;
  readonly ready: Promise<void>;

  constructor(private readonly o: BlockRegistryOptions = {}) {
    this.channel = `${o.channelPrefix ?? ''}${HASH}`;
    const { client, subscriber } = o;
    if (!client || !subscriber) {
      this.ready = Promise.resolve();
      return;
    }
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      try {
        this.apply(JSON.parse(text) as Message);
      } catch {
        // Not ours: ignore.
      }
    });
    // Each (re)connection: subscribe again (here, so a failure is caught) and reload what may
    // have been missed.
    subscriber.on('ready', () => {
      subscriber.subscribe(this.channel).catch(() => undefined);
      void this.reload();
    });
    this.ready = subscriber.subscribe(this.channel).then(
      () => this.reload(),
      () => undefined,
    );
    this.timer = setInterval(() => void this.reload(), 30_000);
    this.timer.unref();
  }

  private apply(m: Message): void {
    if ('block' in m) this.local.set(m.block.ip, { ...m.block, until: Date.parse(m.block.expires_at) });
    else this.local.delete(m.unblock);
  }

  /** Replaces the local copy with the shared list, dropping expired entries from both. */
  private async reload(): Promise<void> {
    const client = this.o.client;
    if (!client) return;
    try {
      const all = await client.hgetall(HASH);
      const now = Date.now();
      const expired: string[] = [];
      this.local.clear();
      for (const [ip, text] of Object.entries(all)) {
        const entry = JSON.parse(text) as BlockEntry;
        const until = Date.parse(entry.expires_at);
        if (until > now) this.local.set(ip, { ...entry, until });
        else expired.push(ip);
      }
      if (expired.length) await client.hdel(HASH, ...expired);
    } catch {
      // Redis out of reach: keep what this instance knows.
    }
  }

  /** The live block of `ip`, from memory. */
  get(ip: string): BlockEntry | undefined {
    const e = this.local.get(ip);
    if (!e) return undefined;
    if (e.until <= Date.now()) {
      this.local.delete(ip);
      return undefined;
    }
    return e;
  }

  async block(ip: string, reason: string, seconds: number): Promise<BlockEntry> {
    const now = Date.now();
    const entry: BlockEntry = { ip, reason, blocked_at: new Date(now).toISOString(), expires_at: new Date(now + seconds * 1000).toISOString() };
    this.apply({ block: entry });
    await this.share({ block: entry }, (c) => c.hset(HASH, ip, JSON.stringify(entry)));
    this.o.log?.warn({ ip, reason, expires_at: entry.expires_at }, 'IP blocked');
    return entry;
  }

  /** True when the IP was blocked. */
  async unblock(ip: string): Promise<boolean> {
    const known = this.get(ip) !== undefined;
    this.apply({ unblock: ip });
    let removed = 0;
    await this.share({ unblock: ip }, async (c) => (removed = await c.hdel(HASH, ip)));
    return known || removed > 0;
  }

  /** Every live block, oldest first: the shared list when Redis answers, this instance's otherwise. */
  async list(): Promise<BlockEntry[]> {
    await this.reload();
    const now = Date.now();
    return [...this.local.values()]
      .filter((e) => e.until > now)
      .map(({ until: _until, ...e }) => e)
      .sort((a, b) => a.blocked_at.localeCompare(b.blocked_at));
  }

  private async share(m: Message, write: (c: RedisConnection) => Promise<unknown>): Promise<void> {
    const client = this.o.client;
    if (!client) return;
    try {
      await write(client);
      await client.publish(this.channel, JSON.stringify(m));
    } catch (err) {
      this.o.log?.warn({ err: (err as Error).message }, 'IP block list: Redis unreachable; the change holds on this instance only');
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
