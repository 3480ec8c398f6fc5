// Rate limits (the seed's section 4): fixed windows counted atomically in Redis (batched per turn
// of the event loop, with small leases far from the limit, shared by every instance; see
// counter.ts), with in-process insurance counters while Redis is out of reach; in-process counters
// in embedded mode. Login backoff and violations, off the hot path, use rate-limiter-flexible.
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RedisConnection } from '../redis.ts';
import type { Config, Rate } from '../../config.ts';
import { BlockRegistry, type BlockEntry, type BlockLog } from './blocks.ts';
import { MemoryCounter, RedisCounter, type Count } from './counter.ts';
import { limitSubject } from './ip.ts';

type LimitsConfig = Config['limits'];

/**
 * How long an address stays known to an account after a sign-in from it. (Under 24.8 days: the
 * in-process limiter expires keys with a timer, which fires at once beyond 2^31 ms.)
 */
const KNOWN_FOR = 14 * 86_400;

/** A sign-in attempt as counted by Limits.loginAttempt, to be settled by loginFailed, loginSucceeded or loginAbandoned. */
export interface LoginAttempt {
  ip: string;
  email: string;
  /** Seconds to wait before trying again (0: check the password). */
  wait: number;
  /** Failure counts it added to (given back unless it fails). */
  counted: string[];
  /** Keys past their free failures whose one slot it holds, with how far past. */
  slots: { key: string; over: number }[];
}

/** Who is asking: the client IP, and the user when a valid token came with the request. */
export interface Caller {
  ip: string;
  userId: number | null;
  staff: boolean;
}

/** A per-route limit, declared next to its route (see `rateLimit` in plugin.ts). */
export interface RouteLimit {
  name: string;
  rate: Rate;
  /**
   * An anonymous flow (sign-in, sign-up, password reset): counted per client IP against the
   * anonymous tiers whoever calls, so a customer token buys no window of its own.
   */
  anonymous?: boolean;
  /**
   * Also counted per target email (the body's `email`, normalised), from every address together:
   * window `<name>_email`, at the route's own rate unless RATE_LIMIT_ROUTES names it. Anyone can
   * spend another's email window, so a request over it is never a violation of the caller's
   * address; `'silent'`: not even refused, the route is told (`request.emailThrottled`) and
   * answers as usual without acting (a reset request: the owner still gets the same answer, and
   * the links already mailed).
   */
  perEmail?: boolean | 'silent';
}

/** A window as counted: its rate, key prefix and the header texts, worked out once. */
export interface Tier {
  name: string;
  rate: Rate;
  prefix: string;
  durationMs: number;
  points: number;
  /** `RateLimit-Limit` and `RateLimit-Policy` values. */
  limitText: string;
  policy: string;
}

function tier(name: string, rate: Rate): Tier {
  // The rate is part of the key: a changed RATE_LIMIT_* starts fresh windows.
  return { name, rate, prefix: `pasargad:limits:${name}:${rate.points}/${rate.duration}:`, durationMs: rate.duration * 1000, points: rate.points, limitText: String(rate.points), policy: `${rate.points};w=${rate.duration}` };
}

/** One window's answer for this request. */
export interface Verdict {
  tier: Tier;
  /** `anonymous`, `user`, `burst`, `sustained`, `staff`, or the route limit's name. */
  name: string;
  rate: Rate;
  allowed: boolean;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export interface LimitsOptions {
  /** Redis for counters and blocks (its key prefix applies); in-process when absent. */
  client?: RedisConnection;
  subscriber?: RedisConnection;
  channelPrefix?: string;
  log?: BlockLog;
}

/**
 * Of the windows a request counted against, the one to report (as one Verdict, made once): the
 * rejecting one that lasts longest, else the one nearest to running out.
 */
function shown(tiers: readonly Tier[], counts: Count[]): Verdict {
  let at = 0;
  let allowed = true;
  let share = Infinity;
  let remaining = 0;
  let resetMs = 0;
  for (let i = 0; i < tiers.length; i++) {
    const points = tiers[i]!.rate.points;
    const { count, resetMs: reset } = counts[i]!;
    const ok = count <= points;
    const left = ok ? points - count : 0;
    const pick = !ok ? allowed || reset > resetMs : allowed && (left / points < share || (left === remaining && reset > resetMs));
    if (i === 0 || pick) [at, allowed, share, remaining, resetMs] = [i, ok, left / points, left, reset];
  }
  const t = tiers[at]!;
  return { tier: t, name: t.name, rate: t.rate, allowed, remaining, resetMs: Math.max(0, resetMs) };
}

export class Limits {
  readonly blocks: BlockRegistry;
  private readonly counter: MemoryCounter | RedisCounter;
  // The tiers each kind of caller counts against, built once (route tiers on first use).
  private readonly staffTiers: Tier[];
  private readonly userTiers: Tier[];
  private readonly anonymousTiers: Tier[];
  private readonly routeTiers = new Map<string, Tier>();
  private readonly violations: RateLimiterAbstract;
  private readonly loginFailures: RateLimiterAbstract;
  private readonly loginWaits: RateLimiterAbstract;
  private readonly loginKnown: RateLimiterAbstract;
  private redisDown = false;

  constructor(
    readonly config: LimitsConfig,
    private readonly o: LimitsOptions = {},
  ) {
    this.counter = o.client ? new RedisCounter(o.client) : new MemoryCounter();
    const [burst, sustained] = [tier('burst', config.burst), tier('sustained', config.sustained)];
    this.staffTiers = [tier('staff', config.staff)];
    this.userTiers = [tier('user', config.user), burst, sustained];
    this.anonymousTiers = [tier('anonymous', config.anonymous), burst, sustained];
    this.blocks = new BlockRegistry({ client: o.client, subscriber: o.subscriber, channelPrefix: o.channelPrefix, log: o.log });
    // Violations only count; the block itself is recorded in the registry.
    this.violations = this.make('violations', { points: Number.MAX_SAFE_INTEGER, duration: config.blockWindow });
    this.loginFailures = this.make('login_failures', { points: Number.MAX_SAFE_INTEGER, duration: 86_400 });
    this.loginWaits = this.make('login_wait', { points: 1, duration: config.loginMaxBackoff });
    // Addresses an account signed in from in the last 14 days: the account-wide wait spares them.
    this.loginKnown = this.make('login_known', { points: Number.MAX_SAFE_INTEGER, duration: KNOWN_FOR });
    const client = o.client;
    if (client) {
      // Log once per outage, not per request: the insurance limiters answer meanwhile.
      client.on('error', (err: Error) => {
        if (this.redisDown) return;
        this.redisDown = true;
        o.log?.warn({ err: err.message }, 'rate limits: Redis unreachable; each instance limits on its own until it returns');
      });
      client.on('ready', () => {
        if (!this.redisDown) return;
        this.redisDown = false;
        o.log?.info({}, 'rate limits: Redis reachable again');
      });
    }
  }

  /** Whether counts are shared right now (false: in-process, or the insurance limiters answer). */
  get redisReady(): boolean {
    return this.o.client?.status === 'ready';
  }

  /** Resolves when counts are shared (Redis connected) and the block list is loaded; at once in-process. */
  get ready(): Promise<void> {
    const client = this.o.client;
    const connected = !client || client.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => client.once('ready', () => resolve()));
    return Promise.all([connected, this.blocks.ready]).then(() => undefined);
  }

  private make(name: string, rate: Rate): RateLimiterAbstract {
    const base = { keyPrefix: `pasargad:limits:${name}`, points: rate.points, duration: rate.duration };
    if (!this.o.client) return new RateLimiterMemory(base);
    return new RateLimiterRedis({
      ...base,
      storeClient: this.o.client,
      // Not ready (reconnecting) means the insurance limiter at once, not a wait in ioredis's queue.
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory(base),
    });
  }

  /** The per-email window of a route (see RouteLimit.perEmail). */
  private emailTier(route: RouteLimit): Tier {
    const name = `${route.name}_email`;
    let own = this.routeTiers.get(name);
    if (!own) this.routeTiers.set(name, (own = tier(name, this.config.routes[name] ?? this.config.routes[route.name] ?? route.rate)));
    return own;
  }

  /** Counts a request of a per-email route against the window of the email it names. */
  checkEmail(route: RouteLimit, email: string): Verdict | Promise<Verdict> {
    const tiers = [this.emailTier(route)];
    const counted = this.counter.hit(tiers, `email:${email.trim().toLowerCase()}`);
    return Array.isArray(counted) ? shown(tiers, counted) : counted.then((counts) => shown(tiers, counts));
  }

  /** The windows this caller's request counts against, in the order they are reported. */
  tiers(caller: Caller, route?: RouteLimit): readonly Tier[] {
    const base = caller.userId === null ? this.anonymousTiers : caller.staff ? this.staffTiers : this.userTiers;
    if (!route) return base;
    let own = this.routeTiers.get(route.name);
    if (!own) this.routeTiers.set(route.name, (own = tier(route.name, this.config.routes[route.name] ?? route.rate)));
    return [...base, own];
  }

  /**
   * Counts the request against every window that applies (all of them, as DRF's throttles do) and
   * answers with the one to report. In process the answer is immediate; with Redis it may be a promise.
   */
  check(caller: Caller, route?: RouteLimit): Verdict | Promise<Verdict> {
    const tiers = this.tiers(caller, route);
    const who = caller.userId !== null ? `u:${caller.userId}` : `ip:${limitSubject(caller.ip)}`;
    const counted = this.counter.hit(tiers, who);
    return Array.isArray(counted) ? shown(tiers, counted) : counted.then((counts) => shown(tiers, counts));
  }

  /** Records a 429 for `ip`; the violation that reaches RATE_LIMIT_BLOCK_AFTER blocks it. */
  async violation(ip: string, limit: string): Promise<BlockEntry | undefined> {
    const after = this.config.blockAfter;
    if (after === 0) return undefined;
    const res = await this.violations.consume(ip).catch((r: unknown) => (r instanceof RateLimiterRes ? r : undefined));
    if (!res || res.consumedPoints < after) return undefined;
    await this.violations.delete(ip).catch(() => undefined);
    const window = Math.round(this.config.blockWindow / 60);
    return this.blocks.block(ip, `${res.consumedPoints} rate-limit violations within ${window} minutes (last: ${limit})`, this.config.blockDuration);
  }

  async unblock(ip: string): Promise<boolean> {
    await this.violations.delete(ip).catch(() => undefined);
    return this.blocks.unblock(ip);
  }

  // Failed sign-ins back off exponentially (issue 20): after a number of free failures in a day,
  // the n-th further one makes the next attempt wait 2^(n-1) s (at most LOGIN_MAX_BACKOFF). Three
  // counts, so that slowing a guesser never hands strangers the power to lock an account:
  // - per account and address together (LOGIN_FREE_FAILURES): a guesser waits, the owner elsewhere
  //   does not; a success there clears it;
  // - per address, across accounts (LOGIN_FREE_FAILURES): one address guessing at many accounts;
  //   never cleared by a success (a thief with one good account would reset it between guesses),
  //   but it spares an account that signed in from that address before (a guesser behind the
  //   owner's NAT does not lock the owner out);
  // - per account, from every address (LOGIN_ACCOUNT_FREE_FAILURES, far higher): guessing spread
  //   over many addresses. Its wait spares addresses the account signed in from in the last 14
  //   days, so the owner is not locked out by others; a success does not clear it either (each
  //   sign-in of the owner would buy the guessers a fresh allowance).
  private loginKeys(address: string, email: string): { key: string; free: number; spareKnown?: true }[] {
    const account = email.trim().toLowerCase();
    const ip = limitSubject(address);
    return [
      { key: `pair:${ip}|${account}`, free: this.config.loginFreeFailures },
      { key: `ip:${ip}`, free: this.config.loginFreeFailures, spareKnown: true },
      { key: `acct:${account}`, free: this.config.loginAccountFreeFailures, spareKnown: true },
    ];
  }

  private knownKey(ip: string, email: string): string {
    return `${email.trim().toLowerCase()}|${limitSubject(ip)}`;
  }

  /**
   * Before a sign-in attempt is checked: counts it against every key (as a failure until it turns
   * out otherwise) and, for each key past its free failures, takes that key's one slot, which a
   * failure turns into the wait (loginFailed) and a success gives back. An attempt that finds a
   * slot taken (a wait on, or another attempt being checked) is not checked at all: the answer
   * says how long to wait. Done before the password is checked, and atomically per key, so that
   * attempts sent together cannot all slip in before the first failure sets the wait.
   */
  async loginAttempt(ip: string, email: string): Promise<LoginAttempt> {
    const keys = this.loginKeys(ip, email);
    const counts = await Promise.all(keys.map((k) => this.loginFailures.consume(k.key).catch((r: unknown) => (r instanceof RateLimiterRes ? r : undefined))));
    const attempt: LoginAttempt = { ip, email, wait: 0, counted: [], slots: [] };
    for (let i = 0; i < keys.length; i++) {
      if (counts[i]) attempt.counted.push(keys[i]!.key);
    }
    let known: boolean | undefined;
    for (let i = 0; i < keys.length; i++) {
      const { key, free, spareKnown } = keys[i]!;
      const over = (counts[i]?.consumedPoints ?? 0) - free;
      if (over <= 0) continue;
      // Asked only when an address-wide or account-wide count is past its free failures, which is rare.
      if (spareKnown && (known ??= (await this.loginKnown.get(this.knownKey(ip, email)).catch(() => null)) !== null)) continue;
      const slot = await this.loginWaits.consume(key).catch((r: unknown) => (r instanceof RateLimiterRes ? r : undefined));
      if (slot && slot.consumedPoints <= 1) {
        attempt.slots.push({ key, over });
        continue;
      }
      // Waiting (or Redis and its insurance both failed: then wait rather than guess freely).
      attempt.wait = Math.max(1, Math.ceil((slot?.msBeforeNext ?? 1000) / 1000));
      await this.loginAbandoned(attempt);
      break;
    }
    return attempt;
  }

  /** The attempt was not checked (it must wait, or failed for another reason): as if it never came. */
  async loginAbandoned(attempt: LoginAttempt): Promise<void> {
    const { counted, slots } = attempt;
    attempt.counted = [];
    attempt.slots = [];
    await Promise.all([...counted.map((k) => this.loginFailures.reward(k, 1).catch(() => undefined)), ...slots.map((s) => this.loginWaits.delete(s.key).catch(() => undefined))]);
  }

  /** A wrong password: each key whose slot the attempt holds waits 2^(n-1) s (n: failures past the free ones). */
  async loginFailed(attempt: LoginAttempt): Promise<void> {
    await Promise.all(attempt.slots.map(({ key, over }) => this.loginWaits.block(key, Math.min(this.config.loginMaxBackoff, 2 ** Math.min(over - 1, 30))).catch(() => undefined)));
  }

  /**
   * A success: not a failure after all (the address-wide and account-wide counts are given back;
   * this address's count for the account is cleared), any slot it held is released, and the
   * address becomes known to the account.
   */
  async loginSucceeded(attempt: LoginAttempt): Promise<void> {
    const [pair, ...rest] = this.loginKeys(attempt.ip, attempt.email);
    const known = this.knownKey(attempt.ip, attempt.email);
    await Promise.all([
      this.loginFailures.delete(pair!.key).catch(() => undefined),
      this.loginWaits.delete(pair!.key).catch(() => undefined),
      ...rest.filter((k) => attempt.counted.includes(k.key)).map((k) => this.loginFailures.reward(k.key, 1).catch(() => undefined)),
      ...attempt.slots.filter((s) => s.key !== pair!.key).map((s) => this.loginWaits.delete(s.key).catch(() => undefined)),
      this.loginKnown.delete(known).then(() => this.loginKnown.consume(known)).catch(() => undefined),
    ]);
  }

  async close(): Promise<void> {
    this.blocks.close();
    this.counter.close();
    await Promise.all(
      [this.o.client, this.o.subscriber].map(async (c) => {
        if (c) await c.quit().catch(() => c.disconnect());
      }),
    );
  }
}
