// Owns the process configuration: every environment variable the shop reads, parsed and checked
// once at start-up. A bad or missing value stops the process with one message naming every bad
// variable. `CONFIG_VARIABLES` is also the source of the README's configuration table.
import { isIP } from 'node:net';
import { join } from 'node:path';
import { cleanEnv, makeValidator, num, port, str, EnvError, EnvMissingError } from 'envalid';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

// The seed writes Python-style booleans (`USE_CDN=True`), so accept any case.
const flag = makeValidator<boolean>((input) => {
  const v = input.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off', ''].includes(v)) return false;
  throw new EnvError(`"${input}" is not a boolean (use true or false)`);
});

function list(input: string): string[] {
  return input
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const postgresUrl = (input: string): string => {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new EnvError(`"${redact(input)}" is not a URL`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new EnvError(`"${redact(input)}" is not a postgres:// URL`);
  }
  return input;
};

const pgUrl = makeValidator<string>(postgresUrl);

const redisUrl = makeValidator<string>((input) => {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new EnvError(`"${redact(input)}" is not a URL`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new EnvError(`"${redact(input)}" is not a redis:// URL`);
  return input;
});

/** Whole seconds, written as `3600`, `60s`, `15m`, `1h` or `14d`. */
const duration = makeValidator<number>((input) => {
  const m = /^\s*(\d{1,9})\s*([smhd]?)\s*$/.exec(input);
  if (!m) throw new EnvError(`"${input}" is not a duration such as 3600, 15m, 1h or 14d`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(m[1]) * unit;
  if (seconds < 1) throw new EnvError('must be at least one second');
  return seconds;
});
/** A rate such as `100/hour`, `20/minute`, `1000/day` or `5/15m`: requests per window. */
export interface Rate {
  readonly points: number;
  /** Window length in seconds. */
  readonly duration: number;
}

const UNITS: Record<string, number> = { s: 1, sec: 1, second: 1, m: 60, min: 60, minute: 60, h: 3600, hour: 3600, d: 86_400, day: 86_400 };

export function parseRate(input: string): Rate {
  const m = /^\s*(\d{1,9})\s*\/\s*(\d{0,6})\s*([a-z]+?)s?\s*$/i.exec(input);
  const unit = m ? UNITS[m[3]!.toLowerCase()] : undefined;
  if (!m || !unit || Number(m[1]) < 1 || m[2] === '0') throw new EnvError(`"${input}" is not a rate such as 100/hour, 20/minute or 5/15m`);
  return Object.freeze({ points: Number(m[1]), duration: (m[2] ? Number(m[2]) : 1) * unit });
}

const rate = makeValidator<Rate>(parseRate);

/** `100/hour`, `5/15m`: the way a rate is written. */
export function formatRate(r: Rate): string {
  for (const [unit, seconds] of [['day', 86_400], ['hour', 3600], ['minute', 60], ['second', 1]] as const) {
    if (r.duration === seconds) return `${r.points}/${unit}`;
  }
  for (const [unit, seconds] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (r.duration % seconds === 0) return `${r.points}/${r.duration / seconds}${unit}`;
  }
  return `${r.points}/${r.duration}s`;
}

/** `name=rate` pairs, e.g. `search=60/minute,checkout=20/hour`. */
const rateMap = makeValidator<Record<string, Rate>>((input) =>
  Object.fromEntries(
    list(input).map((pair) => {
      const [name, value, ...rest] = pair.split('=');
      if (!name || !/^[a-z_]+$/.test(name.trim()) || value === undefined || rest.length) throw new EnvError(`"${pair}" is not name=rate (e.g. search=60/minute)`);
      return [name.trim(), parseRate(value)];
    }),
  ),
);

/** A money amount with at most two decimals, e.g. `100.00` or `0.5`, kept as integer cents. */
const cents = makeValidator<number>((input) => {
  const m = /^\s*(\d{1,8})(?:\.(\d{1,2}))?\s*$/.exec(input);
  if (!m) throw new EnvError(`"${input}" is not an amount such as 100.00`);
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
});

/** A percentage with at most two decimals, 0 to 100, e.g. `8.25`. */
const percent = makeValidator<string>((input) => {
  const m = /^\s*(\d{1,3})(?:\.(\d{1,2}))?\s*$/.exec(input);
  if (!m || Number(input) > 100) throw new EnvError(`"${input}" is not a percentage from 0 to 100 such as 8.25`);
  return input.trim();
});

/** A cron pattern (UTC), e.g. `0 * * * *`, or with a leading seconds field; checked when the schedule is made. */
const cron = makeValidator<string>((input) => {
  const fields = input.trim().split(/\s+/);
  // Six fields (seconds first) too: cron-parser and BullMQ read both, and tests tick every few seconds.
  if ((fields.length !== 5 && fields.length !== 6) || !fields.every((f) => /^[\d*/,-]+$/.test(f))) throw new EnvError(`"${input}" is not a cron pattern such as 0 * * * *`);
  return fields.join(' ');
});

const emailList = makeValidator<string[]>((input) =>
  list(input).map((e) => {
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e)) throw new EnvError(`"${e}" is not an email address`);
    return e;
  }),
);

const pgUrlList = makeValidator<string[]>((input) => list(input).map(postgresUrl));

const httpUrl = makeValidator<string>((input) => {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new EnvError(`"${input}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EnvError(`"${input}" is not an http(s) URL`);
  return input.replace(/\/+$/, '');
});

const originList = makeValidator<string[]>((input) =>
  list(input).map((o) => {
    let url: URL;
    try {
      url = new URL(o);
    } catch {
      throw new EnvError(`"${o}" is not an origin such as http://localhost:3000`);
    }
    return url.origin;
  }),
);

const cidrList = makeValidator<string[]>((input) =>
  list(input).map((entry) => {
    const [addr = '', bits, ...rest] = entry.split('/');
    const family = isIP(addr);
    const max = family === 6 ? 128 : 32;
    const ok = family !== 0 && rest.length === 0 && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max));
    if (!ok) throw new EnvError(`"${entry}" is not an IP address or CIDR range`);
    return entry;
  }),
);

/** `host:port` pairs, e.g. `10.0.0.1:26379,10.0.0.2:26379` (Sentinels, or some nodes of a Cluster). */
const hostPortList = makeValidator<readonly HostPort[]>((input) => {
  const nodes = list(input).map((entry) => {
    const m = /^(\[[0-9a-f:.]+\]|[^\s:[\]/]+):(\d{1,5})$/i.exec(entry);
    // Credentials written into an entry (`redis://:pw@host:port`, `user:pw@host:port`) stay out of the message.
    const shown = entry.includes('@') ? `***${entry.slice(entry.lastIndexOf('@'))}` : entry;
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65_535) throw new EnvError(`"${shown}" is not host:port`);
    return Object.freeze({ host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) });
  });
  // Empty (`REDIS_SENTINELS=` in an env file) reads as unset.
  return Object.freeze(nodes);
});

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Credentials and TLS of the data nodes behind Sentinel or in a Cluster (a plain server has them in its URL). */
export interface RedisAuth {
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

/**
 * Where one user of Redis (a cache store, the limits, the queues) connects. A plain server is a
 * URL with its logical database; behind Sentinel each user keeps its database on the master the
 * Sentinels name; a Cluster has database 0 only, so there users are kept apart by key prefix.
 */
export type RedisTarget =
  | { readonly kind: 'server'; readonly url: string }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly name: string; readonly sentinelPassword: string | undefined; readonly auth: RedisAuth; readonly db: number }
  | { readonly kind: 'cluster'; readonly nodes: readonly HostPort[]; readonly auth: RedisAuth; readonly prefix: string };

/** The same Redis server, logical database `db` (the URL path, as ioredis reads it). */
export function redisDatabase(url: string, db: number): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** Hides the password in a connection URL before it reaches an error message or a log. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
}

export const CONFIG_VARIABLES = {
  NODE_ENV: str({ choices: ['development', 'production', 'test'], default: 'development', desc: 'Runtime environment; `production` requires SECRET_KEY.' }),
  PORT: port({ default: 8000, desc: 'HTTP port the API listens on.' }),
  HOST: str({ default: '0.0.0.0', desc: 'Interface the API binds to.' }),
  LOG_LEVEL: str({ choices: LOG_LEVELS, default: 'info', desc: 'pino log level.' }),
  DATA_DIR: str({ default: './data', desc: 'Embedded mode: where the PGlite database lives (`DATA_DIR/pglite`).' }),
  DATABASE_URL: pgUrl({ default: undefined, desc: 'PostgreSQL URL. Unset: embedded PGlite under DATA_DIR.' }),
  DATABASE_REPLICA_URLS: pgUrlList({ default: [], desc: 'Comma-separated read-replica URLs for lag-tolerant reads (round-robin, primary as fallback).' }),
  DATABASE_SCHEMA: str({ default: 'public', desc: 'PostgreSQL schema holding the shop tables.' }),
  DATABASE_POOL_SIZE: num({ default: 10, desc: 'Connections per PostgreSQL pool (primary and each replica).' }),
  REDIS_URL: redisUrl({ default: undefined, desc: 'Redis server for the cache stores (`default` db 1, `session` db 2, `api` db 3), the limits (with `session`) and the queues (db 0). For Sentinel or Cluster see REDIS_SENTINELS and REDIS_CLUSTER_NODES. Unset (all three): sessions live in the database.' }),
  REDIS_DEFAULT_URL: redisUrl({ default: undefined, desc: 'Overrides the `default` cache store with a server URL (default: REDIS_URL with database 1, or the Sentinel or Cluster Redis).' }),
  REDIS_SESSION_URL: redisUrl({ default: undefined, desc: 'Overrides the `session` store with a server URL (default: REDIS_URL with database 2, or the Sentinel or Cluster Redis). Run it with persistence on.' }),
  REDIS_API_URL: redisUrl({ default: undefined, desc: 'Overrides the `api` (HTTP response) cache store with a server URL (default: REDIS_URL with database 3, or the Sentinel or Cluster Redis).' }),
  REDIS_KEY_PREFIX: str({ default: '', desc: 'Prepended to every Redis key and channel, so several shops (or test runs) can share one Redis.' }),
  REDIS_SENTINELS: hostPortList({ default: undefined, desc: 'Instead of REDIS_URL: Redis Sentinels as `host:port,host:port`; every Redis user connects to the master they name (REDIS_SENTINEL_NAME) and follows a failover. Stores keep their databases (1, 2, 3; jobs 0).' }),
  REDIS_SENTINEL_NAME: str({ default: 'mymaster', desc: 'With REDIS_SENTINELS: the master group name the Sentinels monitor.' }),
  REDIS_SENTINEL_PASSWORD: str({ default: undefined, desc: 'With REDIS_SENTINELS: password of the Sentinels themselves (`requirepass` in sentinel.conf), if any.' }),
  REDIS_CLUSTER_NODES: hostPortList({ default: undefined, desc: 'Instead of REDIS_URL: some nodes of a Redis Cluster as `host:port,...` (the rest are discovered). A cluster has database 0 only: the stores are kept apart by key prefix (`default:`, `session:`, `api:`), the queues under a hash-tagged prefix.' }),
  REDIS_USERNAME: str({ default: undefined, desc: 'With REDIS_SENTINELS or REDIS_CLUSTER_NODES: ACL user on the Redis data nodes (with REDIS_URL put it in the URL).' }),
  REDIS_PASSWORD: str({ default: undefined, desc: 'With REDIS_SENTINELS or REDIS_CLUSTER_NODES: password of the Redis data nodes.' }),
  REDIS_TLS: flag({ default: false, desc: 'With REDIS_SENTINELS or REDIS_CLUSTER_NODES: connect over TLS (with REDIS_URL write `rediss://`).' }),
  CACHE_ENABLED: flag({ default: true, desc: 'Cache catalog responses and data (`false` serves every request from the database).' }),
  CACHE_MEMORY_MB: num({ default: 64, desc: 'Per store: bytes of in-process cache (the whole store in embedded mode, the hot L1 in front of Redis otherwise).' }),
  CACHE_COMPRESS_THRESHOLD: num({ default: 1024, desc: 'Values of at least this many bytes are stored in Redis compressed.' }),
  CACHE_TIMEOUT_MS: num({ default: 100, desc: 'A Redis cache command slower than this counts as a failure: the request goes to the database and the store rests for a while.' }),
  CACHE_SYNC_MS: num({ default: 1000, desc: 'With Redis: how often each instance checks that it missed no invalidation (one a busy Redis kept its writer from announcing) and retries its own: the longest a copy in memory outlives a write Redis took (0 disables).' }),
  CACHE_MAX_AGE: duration({ default: 30, desc: 'Cache-Control max-age of public catalog responses (they also carry an ETag and stale-while-revalidate of twice this).' }),
  PUBLIC_URL: httpUrl({ default: undefined, desc: 'The origin clients use (e.g. https://shop.example.com): the cache is warmed for it at start-up. Default http://localhost:PORT.' }),
  SECRET_KEY: str({ default: undefined, desc: 'Signing key for tokens (32+ characters). Required with DATABASE_URL or in production; embedded mode generates one in DATA_DIR.' }),
  ACCESS_TOKEN_TTL: duration({ default: 3600, desc: 'Lifetime of a JWT access token (seconds, or 15m, 1h, 14d).' }),
  REFRESH_TOKEN_TTL: duration({ default: 604_800, desc: 'Lifetime of a sign-in session: each refresh rotates the refresh token, and no rotated token outlives the sign-in.' }),
  REFRESH_REUSE_DETECTION: flag({ default: false, desc: 'Strict refresh tokens, for clients that keep the rotated one: a refresh token used again after REFRESH_REUSE_GRACE revokes its whole session. Off: a refresh token works until its session ends, as the storefront expects.' }),
  REFRESH_REUSE_GRACE: duration({ default: 10, desc: 'With REFRESH_REUSE_DETECTION: how long after its first use a refresh token may still be used (parallel refreshes).' }),
  SESSION_TTL: duration({ default: 1_209_600, desc: 'Guest session (`sessionid` cookie) lifetime, renewed on use.' }),
  PASSWORD_RESET_TTL: duration({ default: 3600, desc: 'How long a password reset link works (it works once).' }),
  STAFF_EMAIL: str({ default: undefined, desc: 'At start-up, creates this staff account if no user has the email (never overwrites).' }),
  STAFF_PASSWORD: str({ default: undefined, desc: 'Password for STAFF_EMAIL (8+ characters, not a common password).' }),
  CORS_ORIGINS: originList({ default: ['http://localhost:3000', 'http://127.0.0.1:3000'], desc: 'Comma-separated storefront origins allowed to call the API with credentials.' }),
  TRUSTED_PROXIES: cidrList({ default: [], desc: 'Comma-separated proxy addresses/CIDRs whose X-Forwarded-* headers are trusted.' }),
  RATE_LIMIT_ENABLED: flag({ default: true, desc: 'Apply rate limits and IP blocks.' }),
  RATE_LIMIT_ANON: rate({ default: parseRate('100/hour'), desc: 'Anonymous callers, per client IP.' }),
  RATE_LIMIT_USER: rate({ default: parseRate('1000/hour'), desc: 'Signed-in customers, per user.' }),
  RATE_LIMIT_BURST: rate({ default: parseRate('20/minute'), desc: 'Burst tier, per user (or per IP when anonymous), applied with the tiers above.' }),
  RATE_LIMIT_SUSTAINED: rate({ default: parseRate('1000/day'), desc: 'Sustained tier, per user (or per IP when anonymous), applied with the tiers above.' }),
  RATE_LIMIT_STAFF: rate({ default: parseRate('10000/hour'), desc: 'Staff accounts: this tier replaces the user, burst and sustained tiers.' }),
  RATE_LIMIT_ROUTES: rateMap({ default: {}, desc: 'Overrides of per-route limits, e.g. `search=60/minute,checkout=20/hour` (names in the README).' }),
  RATE_LIMIT_ALLOWLIST: cidrList({ default: [], desc: 'Comma-separated client addresses/CIDRs exempt from limits and blocks (load tests, internal callers). Nothing by default, loopback included.' }),
  RATE_LIMIT_BLOCK_AFTER: num({ default: 10, desc: 'Limit violations (429s) within RATE_LIMIT_BLOCK_WINDOW after which an IP is blocked (0 never blocks).' }),
  RATE_LIMIT_BLOCK_WINDOW: duration({ default: 3600, desc: 'Window in which violations are counted.' }),
  RATE_LIMIT_BLOCK_DURATION: duration({ default: 86_400, desc: 'How long a blocked IP gets 403 on every request.' }),
  LOGIN_FREE_FAILURES: num({ default: 5, desc: 'Failed sign-ins to one account from one address (and from one address across accounts) in a day before each further failure doubles a wait (1 s, 2 s, 4 s…).' }),
  LOGIN_MAX_BACKOFF: duration({ default: 900, desc: 'Longest wait after failed sign-ins.' }),
  LOGIN_ACCOUNT_FREE_FAILURES: num({ default: 100, desc: 'Failed sign-ins to one account from all addresses in a day before the wait applies account-wide (to addresses that have not signed in to it before).' }),
  RATE_LIMIT_TIMEOUT_MS: num({ default: 1000, desc: 'A limit count Redis has not answered in this long is made by the in-memory insurance limiter instead (a busy event loop alone can delay answers by tens of ms).' }),
  RATE_LIMIT_REDIS_URL: redisUrl({ default: undefined, desc: 'Redis for limits and blocks, shared by every instance (default: the Redis of the `session` store). Unset without any Redis: in-process.' }),
  STRIPE_SECRET_KEY: str({ default: undefined, desc: 'Stripe secret key: checkout through Stripe Checkout. Unset: the built-in test payment provider (offline).' }),
  ALLOW_TEST_PAYMENTS: flag({ default: false, desc: 'Let `NODE_ENV=production` run without STRIPE_SECRET_KEY, on the built-in test provider (anyone can "pay" there: demos and load tests only).' }),
  STRIPE_WEBHOOK_SECRET: str({ default: undefined, desc: 'Signing secret of the Stripe webhook endpoint (`/api/payments/stripe-webhook/`); required with STRIPE_SECRET_KEY.' }),
  STOREFRONT_URL: httpUrl({ default: 'http://localhost:3000', desc: 'The storefront: where a finished or abandoned checkout returns (`/checkout/success`, `/checkout/cancel`).' }),
  CHECKOUT_TTL: duration({ default: 3600, desc: 'How long a checkout holds its stock and promotion code before it expires (Stripe allows 30m to 24h).' }),
  CURRENCY: str({ default: 'usd', desc: 'ISO currency of prices and payments.' }),
  SHIPPING_FREE_FROM: cents({ default: 10_000, desc: 'Item total from which shipping is free (e.g. 100.00).' }),
  SHIPPING_BASE: cents({ default: 500, desc: 'Shipping below SHIPPING_FREE_FROM: this base amount…' }),
  SHIPPING_PER_KG: cents({ default: 50, desc: '…plus this amount per started kilogram of total weight.' }),
  TAX_RATE: percent({ default: '0', desc: 'Sales tax in percent of the discounted item total (0: none).' }),
  JOBS_REDIS_URL: redisUrl({ default: undefined, desc: 'Redis for the job queues (BullMQ; default: the REDIS_URL server, database 0, or the Sentinel or Cluster Redis). Run it with `maxmemory-policy noeviction`. Unset without any Redis: jobs live in the embedded database.' }),
  JOBS_CONCURRENCY: num({ default: 4, desc: 'Jobs a worker runs at once, per queue (`pasargad worker --concurrency` overrides).' }),
  JOBS_ATTEMPTS: num({ default: 10, desc: 'Runs per job before it fails for good (retries wait 5 s, 10 s, 20 s…: ten runs span about 40 minutes of an outage).' }),
  JOBS_BACKOFF: duration({ default: 5, desc: 'Wait before the first retry; each further retry waits twice as long.' }),
  JOBS_LOCK_TIMEOUT: duration({ default: 30, desc: "How long a running job stays with its worker unless the worker renews its hold (a live worker renews it well before then): a job whose worker died runs again after it. BullMQ's lock and stalled-job check, or the database queue's lease." }),
  JOBS_KEEP_COMPLETED: duration({ default: 86_400, desc: 'How long finished jobs are kept (then trimmed).' }),
  JOBS_KEEP_FAILED: duration({ default: 604_800, desc: 'How long failed jobs are kept, with why they failed.' }),
  JOBS_IN_PROCESS: flag({ default: false, desc: 'With BullMQ: `serve` also runs the workers and the scheduler (otherwise run `pasargad worker` and `pasargad scheduler`). Jobs in the database always run inside the server too.' }),
  SCHEDULE_CHECK_LOW_STOCK: cron({ default: '0 * * * *', desc: 'When `check_low_stock` runs (cron, UTC): hourly.' }),
  SCHEDULE_CLEANUP_EXPIRED_SESSIONS: cron({ default: '30 3 * * *', desc: 'When `cleanup_expired_sessions` runs: daily.' }),
  SCHEDULE_PROCESS_ABANDONED_CARTS: cron({ default: '0 4 * * *', desc: 'When `process_abandoned_carts` runs: daily.' }),
  SCHEDULE_WARM_CACHE: cron({ default: '*/5 * * * *', desc: 'When `warm_cache` re-makes the hot catalog answers.' }),
  SCHEDULE_RELEASE_LAPSED_CHECKOUTS: cron({ default: '* * * * *', desc: 'When `release_lapsed_checkouts` gives back the holds of expired checkouts.' }),
  SCHEDULE_SEND_MISSED_ORDER_EMAILS: cron({ default: '*/10 * * * *', desc: 'When `send_missed_order_emails` queues again the order emails whose job was lost (a process that died before its job reached the queue).' }),
  SCHEDULE_TRIM_JOBS: cron({ default: '15 * * * *', desc: 'When `trim_jobs` removes old finished jobs and effect records.' }),
  ABANDONED_CART_AFTER: duration({ default: 86_400, desc: "A signed-in user's cart untouched this long gets one reminder email per abandonment." }),
  GUEST_CART_MAX_AGE: duration({ default: 2_592_000, desc: 'Guest carts untouched this long are deleted.' }),
  EMAIL_HOST: str({ default: undefined, desc: 'SMTP server. Unset: emails are written to DATA_DIR/outbox and logged.' }),
  EMAIL_PORT: port({ default: 587, desc: 'SMTP port.' }),
  EMAIL_HOST_USER: str({ default: undefined, desc: 'SMTP user name.' }),
  EMAIL_HOST_PASSWORD: str({ default: undefined, desc: 'SMTP password.' }),
  EMAIL_USE_SSL: flag({ default: false, desc: 'SMTP over implicit TLS (port 465); otherwise STARTTLS is used when the server offers it.' }),
  DEFAULT_FROM_EMAIL: str({ default: 'Pasargad Prints <shop@localhost>', desc: 'Sender of every email.' }),
  EMAIL_RATE: rate({ default: parseRate('10/second'), desc: 'Emails sent per window at most, across all workers (the SMTP server’s limit).' }),
  LOW_STOCK_EMAILS: emailList({ default: [], desc: 'Who gets the low-stock digest (default: every active staff account).' }),
  USE_CDN: flag({ default: false, desc: 'Rewrite every media and static URL the server gives out to CDN_URL.' }),
  CDN_URL: httpUrl({ default: undefined, desc: 'CDN base URL; required when USE_CDN is true. Media is under CDN_URL/media/, static files under CDN_URL/static/.' }),
  MEDIA_DIR: str({ default: undefined, desc: 'Uploaded media when USE_S3 is false (default DATA_DIR/media); served by the app at /media/.' }),
  USE_S3: flag({ default: false, desc: 'Keep uploaded media in S3 (or an S3-compatible service) instead of MEDIA_DIR.' }),
  AWS_ACCESS_KEY_ID: str({ default: undefined, desc: 'S3 access key (unset: the SDK’s default credential chain).' }),
  AWS_SECRET_ACCESS_KEY: str({ default: undefined, desc: 'S3 secret key.' }),
  AWS_STORAGE_BUCKET_NAME: str({ default: undefined, desc: 'S3 bucket for media; required when USE_S3 is true.' }),
  AWS_S3_REGION_NAME: str({ default: 'us-east-1', desc: 'S3 region.' }),
  AWS_S3_ENDPOINT_URL: httpUrl({ default: undefined, desc: 'Endpoint of an S3-compatible service (MinIO, R2, s3rver…); path-style addressing is used with it.' }),
  MEDIA_MAX_UPLOAD_MB: num({ default: 10, desc: 'Largest image upload accepted, in MiB.' }),
  MEDIA_MAX_PIXELS: num({ default: 40_000_000, desc: 'Most pixels (width × height) an uploaded image may have: larger ones are refused before decoding (image bombs).' }),
  IMAGE_WIDTHS: str({ default: '200,600,1200', desc: 'Widths of the variants made of each uploaded image (never wider than the original), in WebP and JPEG at once and AVIF in a background job.' }),
  REQUEST_MONITORING: flag({ default: true, desc: 'Time every request (X-Response-Time, request patterns, Prometheus histogram, per-request SQL and cache tally, slow-request log). Off only to measure what it costs.' }),
  SLOW_REQUEST_MS: num({ default: 3000, desc: 'Requests slower than this are logged as warnings with their route, status, SQL statements and cache hits and misses.' }),
  SLOW_QUERY_MS: num({ default: 100, desc: 'SQL statements slower than this are kept (normalised text, count, total and max time) for the monitoring endpoint.' }),
  METRICS_ALLOW: cidrList({ default: ['127.0.0.1/32', '::1/128'], desc: 'Addresses (CIDRs) that may scrape GET /metrics without a token.' }),
  METRICS_TOKEN: str({ default: undefined, desc: 'When set, GET /metrics also answers any address that authenticates with basic auth, user `metrics` and this token as password (Prometheus `basic_auth`).' }),
  DEMO_PRODUCTS: num({ default: 200, desc: 'Embedded mode: products seeded into an empty catalog on first start (0 disables).' }),
};

export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly port: number;
  readonly host: string;
  readonly logLevel: LogLevel;
  readonly dataDir: string;
  readonly database: {
    readonly url: string | undefined;
    readonly replicaUrls: readonly string[];
    readonly schema: string;
    readonly poolSize: number;
  };
  readonly secretKey: string | undefined;
  readonly redis: {
    /** REDIS_URL as given (unset with Sentinel or Cluster). */
    readonly url: string | undefined;
    /** Each store's Redis; undefined: embedded. */
    readonly default: RedisTarget | undefined;
    readonly session: RedisTarget | undefined;
    readonly api: RedisTarget | undefined;
    readonly keyPrefix: string;
  };
  readonly cache: {
    readonly enabled: boolean;
    readonly memoryBytes: number;
    readonly compressThreshold: number;
    readonly timeoutMs: number;
    readonly syncMs: number;
    readonly maxAge: number;
  };
  readonly publicUrl: string | undefined;
  readonly auth: {
    readonly accessTokenTtl: number;
    readonly refreshTokenTtl: number;
    readonly sessionTtl: number;
    readonly passwordResetTtl: number;
    readonly refreshReuseDetection: boolean;
    readonly refreshReuseGrace: number;
  };
  readonly staff: { readonly email: string; readonly password: string } | undefined;
  readonly corsOrigins: readonly string[];
  readonly trustedProxies: readonly string[];
  readonly limits: {
    readonly enabled: boolean;
    readonly anonymous: Rate;
    readonly user: Rate;
    readonly burst: Rate;
    readonly sustained: Rate;
    readonly staff: Rate;
    readonly routes: Readonly<Record<string, Rate>>;
    readonly allowlist: readonly string[];
    readonly blockAfter: number;
    readonly blockWindow: number;
    readonly blockDuration: number;
    readonly loginFreeFailures: number;
    readonly loginMaxBackoff: number;
    readonly loginAccountFreeFailures: number;
    readonly redis: RedisTarget | undefined;
    readonly timeoutMs: number;
  };
  readonly payments: {
    readonly stripeSecretKey: string | undefined;
    readonly stripeWebhookSecret: string | undefined;
    readonly storefrontUrl: string;
    readonly checkoutTtl: number;
    readonly currency: string;
  };
  readonly pricing: {
    /** Integer cents. */
    readonly freeShippingFrom: number;
    readonly shippingBase: number;
    readonly shippingPerKg: number;
    /** Percent, as text with up to two decimals. */
    readonly taxRate: string;
  };
  readonly jobs: {
    readonly redis: RedisTarget | undefined;
    readonly concurrency: number;
    readonly attempts: number;
    readonly backoffMs: number;
    readonly lockMs: number;
    readonly keepCompleted: number;
    readonly keepFailed: number;
    readonly inProcess: boolean;
    readonly schedules: Readonly<Record<'check_low_stock' | 'cleanup_expired_sessions' | 'process_abandoned_carts' | 'warm_cache' | 'release_lapsed_checkouts' | 'send_missed_order_emails' | 'trim_jobs', string>>;
    readonly abandonedCartAfter: number;
    readonly guestCartMaxAge: number;
  };
  readonly email: {
    readonly host: string | undefined;
    readonly port: number;
    readonly user: string | undefined;
    readonly password: string | undefined;
    readonly secure: boolean;
    readonly from: string;
    readonly rate: Rate;
    readonly lowStockTo: readonly string[];
  };
  readonly cdnUrl: string | undefined;
  readonly media: {
    readonly dir: string;
    readonly s3: { readonly bucket: string; readonly region: string; readonly endpoint: string | undefined; readonly accessKeyId: string | undefined; readonly secretAccessKey: string | undefined } | undefined;
    readonly maxUploadBytes: number;
    readonly maxPixels: number;
    readonly widths: readonly number[];
  };
  readonly monitoring: {
    readonly requests: boolean;
    readonly slowRequestMs: number;
    readonly slowQueryMs: number;
    readonly metricsAllow: readonly string[];
    readonly metricsToken: string | undefined;
  };
  readonly demoProducts: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** `200,600,1200` as sorted, distinct widths; undefined when any is not a width. */
function imageWidths(input: string): number[] | undefined {
  const widths = list(input).map(Number);
  if (!widths.length || widths.some((w) => !Number.isInteger(w) || w < 16 || w > 8192)) return undefined;
  return [...new Set(widths)].sort((a, b) => a - b);
}

/** Parses the environment once. Throws a ConfigError that lists every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const e = cleanEnv(env, CONFIG_VARIABLES, {
    reporter: ({ errors }) => {
      for (const [name, err] of Object.entries(errors)) {
        if (!err) continue;
        problems.push(err instanceof EnvMissingError ? `${name} is required` : `${name}: ${err.message}`);
      }
    },
  });
  // Cross-variable rules run even when other variables are bad, so one start names every problem;
  // a variable that failed to parse is undefined here and its own error is already listed.
  const bad = new Set(problems.map((p) => p.split(/[ :]/)[0]));
  const ok = (name: string) => !bad.has(name);
  if (ok('USE_CDN') && ok('CDN_URL') && e.USE_CDN && !e.CDN_URL) problems.push('CDN_URL is required when USE_CDN is true');
  if (ok('USE_S3') && ok('AWS_STORAGE_BUCKET_NAME') && e.USE_S3 && !e.AWS_STORAGE_BUCKET_NAME) problems.push('AWS_STORAGE_BUCKET_NAME is required when USE_S3 is true');
  if (ok('AWS_ACCESS_KEY_ID') && ok('AWS_SECRET_ACCESS_KEY') && Boolean(e.AWS_ACCESS_KEY_ID) !== Boolean(e.AWS_SECRET_ACCESS_KEY)) problems.push('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither');
  if (ok('MEDIA_MAX_UPLOAD_MB') && !(e.MEDIA_MAX_UPLOAD_MB > 0)) problems.push('MEDIA_MAX_UPLOAD_MB must be above 0');
  if (ok('MEDIA_MAX_PIXELS') && (!Number.isInteger(e.MEDIA_MAX_PIXELS) || e.MEDIA_MAX_PIXELS < 1)) problems.push('MEDIA_MAX_PIXELS must be a whole number of at least 1');
  if (ok('IMAGE_WIDTHS') && !imageWidths(e.IMAGE_WIDTHS)) problems.push('IMAGE_WIDTHS must list widths from 16 to 8192 pixels, such as 200,600,1200');
  if (ok('SECRET_KEY') && e.SECRET_KEY !== undefined && e.SECRET_KEY.length < 32) problems.push('SECRET_KEY must be at least 32 characters');
  if (ok('SECRET_KEY') && e.SECRET_KEY === undefined && (env.DATABASE_URL || e.NODE_ENV === 'production')) {
    problems.push('SECRET_KEY is required when DATABASE_URL is set or NODE_ENV is production');
  }
  if (ok('DATABASE_POOL_SIZE') && (!Number.isInteger(e.DATABASE_POOL_SIZE) || e.DATABASE_POOL_SIZE < 1)) problems.push('DATABASE_POOL_SIZE must be a whole number of at least 1');
  if (ok('CACHE_MEMORY_MB') && !(e.CACHE_MEMORY_MB >= 1)) problems.push('CACHE_MEMORY_MB must be at least 1');
  if (ok('CACHE_COMPRESS_THRESHOLD') && !(Number.isInteger(e.CACHE_COMPRESS_THRESHOLD) && e.CACHE_COMPRESS_THRESHOLD >= 0)) problems.push('CACHE_COMPRESS_THRESHOLD must be a whole number of bytes');
  if (ok('RATE_LIMIT_TIMEOUT_MS') && !(e.RATE_LIMIT_TIMEOUT_MS >= 1)) problems.push('RATE_LIMIT_TIMEOUT_MS must be at least 1');
  if (ok('CACHE_TIMEOUT_MS') && !(e.CACHE_TIMEOUT_MS >= 1)) problems.push('CACHE_TIMEOUT_MS must be at least 1');
  if (ok('CACHE_SYNC_MS') && !(Number.isInteger(e.CACHE_SYNC_MS) && e.CACHE_SYNC_MS >= 0)) problems.push('CACHE_SYNC_MS must be a whole number of milliseconds (0 disables the check)');
  for (const name of ['SLOW_REQUEST_MS', 'SLOW_QUERY_MS'] as const) if (ok(name) && !(e[name] >= 0)) problems.push(`${name} must be a number of milliseconds`);
  if (ok('METRICS_TOKEN') && e.METRICS_TOKEN && e.METRICS_TOKEN.length < 16) problems.push('METRICS_TOKEN must be at least 16 characters');
  if (ok('DEMO_PRODUCTS') && (!Number.isInteger(e.DEMO_PRODUCTS) || e.DEMO_PRODUCTS < 0)) problems.push('DEMO_PRODUCTS must be a whole number of at least 0');
  if (ok('DATABASE_SCHEMA') && !/^[a-z_][a-z0-9_]{0,62}$/.test(e.DATABASE_SCHEMA ?? '')) problems.push('DATABASE_SCHEMA must be a lower-case SQL identifier');
  if (ok('DATABASE_REPLICA_URLS') && (e.DATABASE_REPLICA_URLS?.length ?? 0) > 0 && !env.DATABASE_URL) problems.push('DATABASE_REPLICA_URLS needs DATABASE_URL');
  if (ok('STAFF_EMAIL') && ok('STAFF_PASSWORD') && Boolean(e.STAFF_EMAIL) !== Boolean(e.STAFF_PASSWORD)) problems.push('STAFF_EMAIL and STAFF_PASSWORD go together: set both or neither');
  if (ok('STAFF_EMAIL') && e.STAFF_EMAIL && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e.STAFF_EMAIL)) problems.push('STAFF_EMAIL must be an email address');
  if (ok('JOBS_CONCURRENCY') && (!Number.isInteger(e.JOBS_CONCURRENCY) || e.JOBS_CONCURRENCY < 1)) problems.push('JOBS_CONCURRENCY must be a whole number of at least 1');
  if (ok('JOBS_ATTEMPTS') && (!Number.isInteger(e.JOBS_ATTEMPTS) || e.JOBS_ATTEMPTS < 1)) problems.push('JOBS_ATTEMPTS must be a whole number of at least 1');
  for (const name of ['RATE_LIMIT_BLOCK_AFTER', 'LOGIN_FREE_FAILURES', 'LOGIN_ACCOUNT_FREE_FAILURES'] as const) {
    if (ok(name) && (!Number.isInteger(e[name]) || e[name] < 0)) problems.push(`${name} must be a whole number of at least 0`);
  }
  if (ok('STRIPE_SECRET_KEY') && ok('STRIPE_WEBHOOK_SECRET') && e.STRIPE_SECRET_KEY && !e.STRIPE_WEBHOOK_SECRET) problems.push('STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY');
  if (ok('CHECKOUT_TTL') && ok('STRIPE_SECRET_KEY') && e.STRIPE_SECRET_KEY && (e.CHECKOUT_TTL < 1800 || e.CHECKOUT_TTL > 86_400)) problems.push('CHECKOUT_TTL must be from 30m to 24h with Stripe');
  if (ok('STRIPE_SECRET_KEY') && ok('ALLOW_TEST_PAYMENTS') && e.NODE_ENV === 'production' && !e.STRIPE_SECRET_KEY && !e.ALLOW_TEST_PAYMENTS) {
    problems.push('STRIPE_SECRET_KEY is required when NODE_ENV is production (or set ALLOW_TEST_PAYMENTS=true for a demo: anyone can pay on the test provider)');
  }
  if (ok('CURRENCY') && !/^[a-z]{3}$/.test(e.CURRENCY ?? '')) problems.push('CURRENCY must be a 3-letter lower-case ISO code such as usd');
  const sentinels = ok('REDIS_SENTINELS') && e.REDIS_SENTINELS?.length ? e.REDIS_SENTINELS : undefined;
  const clusterNodes = ok('REDIS_CLUSTER_NODES') && e.REDIS_CLUSTER_NODES?.length ? e.REDIS_CLUSTER_NODES : undefined;
  const managed = env.REDIS_SENTINELS?.trim() ? 'REDIS_SENTINELS' : env.REDIS_CLUSTER_NODES?.trim() ? 'REDIS_CLUSTER_NODES' : undefined;
  if (env.REDIS_SENTINELS?.trim() && env.REDIS_CLUSTER_NODES?.trim()) problems.push('REDIS_SENTINELS and REDIS_CLUSTER_NODES exclude each other: set the one your Redis is run with');
  if (managed && env.REDIS_URL) problems.push(`REDIS_URL names a single server: with ${managed} leave it unset (credentials go in REDIS_USERNAME and REDIS_PASSWORD, TLS in REDIS_TLS)`);
  for (const name of ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'] as const) if (env[name] && !env.REDIS_SENTINELS?.trim()) problems.push(`${name} needs REDIS_SENTINELS`);
  for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS'] as const) {
    // REDIS_TLS=false says nothing to refuse: only a value that asks for something does.
    const asked = name === 'REDIS_TLS' ? ok(name) && e.REDIS_TLS : env[name];
    if (asked && !managed) problems.push(`${name} needs REDIS_SENTINELS or REDIS_CLUSTER_NODES (with REDIS_URL, write them in the URL: rediss://user:password@host:6379)`);
  }
  if (clusterNodes && ok('REDIS_KEY_PREFIX') && /[{}]/.test(e.REDIS_KEY_PREFIX)) problems.push('REDIS_KEY_PREFIX must not contain { or } with REDIS_CLUSTER_NODES: braces choose the cluster slot of every key');
  if (problems.length > 0) throw new ConfigError(problems);

  // Every Redis user's target: its own URL when one is given, else the shared Redis (REDIS_URL,
  // the Sentinels' master or the Cluster) with the user's database or, in a Cluster, its prefix.
  const auth: RedisAuth = Object.freeze({ username: e.REDIS_USERNAME || undefined, password: e.REDIS_PASSWORD || undefined, tls: e.REDIS_TLS });
  const server = (url: string | undefined): RedisTarget | undefined => (url ? Object.freeze({ kind: 'server', url }) : undefined);
  const shared = (db: number, prefix: string): RedisTarget | undefined =>
    sentinels
      ? Object.freeze({ kind: 'sentinel', sentinels, name: e.REDIS_SENTINEL_NAME, sentinelPassword: e.REDIS_SENTINEL_PASSWORD || undefined, auth, db })
      : clusterNodes
        ? Object.freeze({ kind: 'cluster', nodes: clusterNodes, auth, prefix })
        : server(e.REDIS_URL && redisDatabase(e.REDIS_URL, db));
  // Limits share the session store's Redis; in a Cluster their keys carry their own names.
  const session = server(e.REDIS_SESSION_URL) ?? shared(2, 'session:');
  const limitsRedis = server(e.RATE_LIMIT_REDIS_URL) ?? server(e.REDIS_SESSION_URL) ?? shared(2, '');

  return Object.freeze({
    env: e.NODE_ENV as Config['env'],
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL as LogLevel,
    dataDir: e.DATA_DIR,
    database: Object.freeze({
      url: e.DATABASE_URL,
      replicaUrls: Object.freeze([...e.DATABASE_REPLICA_URLS]),
      schema: e.DATABASE_SCHEMA,
      poolSize: e.DATABASE_POOL_SIZE,
    }),
    secretKey: e.SECRET_KEY,
    redis: Object.freeze({
      url: e.REDIS_URL,
      default: server(e.REDIS_DEFAULT_URL) ?? shared(1, 'default:'),
      session,
      api: server(e.REDIS_API_URL) ?? shared(3, 'api:'),
      keyPrefix: e.REDIS_KEY_PREFIX,
    }),
    cache: Object.freeze({
      enabled: e.CACHE_ENABLED,
      memoryBytes: Math.round(e.CACHE_MEMORY_MB * 1024 * 1024),
      compressThreshold: e.CACHE_COMPRESS_THRESHOLD,
      timeoutMs: e.CACHE_TIMEOUT_MS,
      syncMs: e.CACHE_SYNC_MS,
      maxAge: e.CACHE_MAX_AGE,
    }),
    publicUrl: e.PUBLIC_URL,
    auth: Object.freeze({ accessTokenTtl: e.ACCESS_TOKEN_TTL, refreshTokenTtl: e.REFRESH_TOKEN_TTL, sessionTtl: e.SESSION_TTL, passwordResetTtl: e.PASSWORD_RESET_TTL, refreshReuseDetection: e.REFRESH_REUSE_DETECTION, refreshReuseGrace: e.REFRESH_REUSE_GRACE }),
    staff: e.STAFF_EMAIL && e.STAFF_PASSWORD ? Object.freeze({ email: e.STAFF_EMAIL, password: e.STAFF_PASSWORD }) : undefined,
    corsOrigins: Object.freeze([...e.CORS_ORIGINS]),
    trustedProxies: Object.freeze([...e.TRUSTED_PROXIES]),
    limits: Object.freeze({
      enabled: e.RATE_LIMIT_ENABLED,
      anonymous: e.RATE_LIMIT_ANON,
      user: e.RATE_LIMIT_USER,
      burst: e.RATE_LIMIT_BURST,
      sustained: e.RATE_LIMIT_SUSTAINED,
      staff: e.RATE_LIMIT_STAFF,
      routes: Object.freeze({ ...e.RATE_LIMIT_ROUTES }),
      allowlist: Object.freeze([...e.RATE_LIMIT_ALLOWLIST]),
      blockAfter: e.RATE_LIMIT_BLOCK_AFTER,
      blockWindow: e.RATE_LIMIT_BLOCK_WINDOW,
      blockDuration: e.RATE_LIMIT_BLOCK_DURATION,
      loginFreeFailures: e.LOGIN_FREE_FAILURES,
      loginMaxBackoff: e.LOGIN_MAX_BACKOFF,
      loginAccountFreeFailures: e.LOGIN_ACCOUNT_FREE_FAILURES,
      redis: limitsRedis,
      timeoutMs: e.RATE_LIMIT_TIMEOUT_MS,
    }),
    payments: Object.freeze({
      stripeSecretKey: e.STRIPE_SECRET_KEY || undefined,
      stripeWebhookSecret: e.STRIPE_WEBHOOK_SECRET || undefined,
      storefrontUrl: e.STOREFRONT_URL,
      checkoutTtl: e.CHECKOUT_TTL,
      currency: e.CURRENCY,
    }),
    pricing: Object.freeze({ freeShippingFrom: e.SHIPPING_FREE_FROM, shippingBase: e.SHIPPING_BASE, shippingPerKg: e.SHIPPING_PER_KG, taxRate: e.TAX_RATE }),
    jobs: Object.freeze({
      redis: server(e.JOBS_REDIS_URL) ?? shared(0, ''),
      concurrency: e.JOBS_CONCURRENCY,
      attempts: e.JOBS_ATTEMPTS,
      backoffMs: e.JOBS_BACKOFF * 1000,
      lockMs: e.JOBS_LOCK_TIMEOUT * 1000,
      keepCompleted: e.JOBS_KEEP_COMPLETED,
      keepFailed: e.JOBS_KEEP_FAILED,
      inProcess: e.JOBS_IN_PROCESS,
      schedules: Object.freeze({
        check_low_stock: e.SCHEDULE_CHECK_LOW_STOCK,
        cleanup_expired_sessions: e.SCHEDULE_CLEANUP_EXPIRED_SESSIONS,
        process_abandoned_carts: e.SCHEDULE_PROCESS_ABANDONED_CARTS,
        warm_cache: e.SCHEDULE_WARM_CACHE,
        release_lapsed_checkouts: e.SCHEDULE_RELEASE_LAPSED_CHECKOUTS,
        send_missed_order_emails: e.SCHEDULE_SEND_MISSED_ORDER_EMAILS,
        trim_jobs: e.SCHEDULE_TRIM_JOBS,
      }),
      abandonedCartAfter: e.ABANDONED_CART_AFTER,
      guestCartMaxAge: e.GUEST_CART_MAX_AGE,
    }),
    email: Object.freeze({
      host: e.EMAIL_HOST || undefined,
      port: e.EMAIL_PORT,
      user: e.EMAIL_HOST_USER || undefined,
      password: e.EMAIL_HOST_PASSWORD || undefined,
      secure: e.EMAIL_USE_SSL,
      from: e.DEFAULT_FROM_EMAIL,
      rate: e.EMAIL_RATE,
      lowStockTo: Object.freeze([...e.LOW_STOCK_EMAILS]),
    }),
    cdnUrl: e.USE_CDN ? e.CDN_URL?.replace(/\/+$/, '') : undefined,
    media: Object.freeze({
      dir: e.MEDIA_DIR ?? join(e.DATA_DIR, 'media'),
      s3: e.USE_S3
        ? Object.freeze({ bucket: e.AWS_STORAGE_BUCKET_NAME!, region: e.AWS_S3_REGION_NAME, endpoint: e.AWS_S3_ENDPOINT_URL, accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY })
        : undefined,
      maxUploadBytes: Math.round(e.MEDIA_MAX_UPLOAD_MB * 1024 * 1024),
      maxPixels: e.MEDIA_MAX_PIXELS,
      widths: Object.freeze(imageWidths(e.IMAGE_WIDTHS) ?? []),
    }),
    monitoring: Object.freeze({
      requests: e.REQUEST_MONITORING,
      slowRequestMs: e.SLOW_REQUEST_MS,
      slowQueryMs: e.SLOW_QUERY_MS,
      metricsAllow: Object.freeze([...e.METRICS_ALLOW]),
      metricsToken: e.METRICS_TOKEN || undefined,
    }),
    demoProducts: e.DEMO_PRODUCTS,
  });
}

/** Markdown table of every variable, for the README (`pasargad config --markdown`). */
export function configTable(): string {
  const rows = Object.entries(CONFIG_VARIABLES).map(([name, spec]) => {
    const d = (spec as { default?: unknown }).default;
    const isRate = (v: unknown): v is Rate => typeof v === 'object' && v !== null && 'points' in v;
    const money = name.startsWith('SHIPPING_') && typeof d === 'number';
    const shown = money ? `\`${Math.floor(d / 100)}.${String(d % 100).padStart(2, '0')}\`` : isRate(d) ? `\`${formatRate(d)}\`` : typeof d === 'object' && d !== null && !Array.isArray(d) ? '—' : d === undefined || d === '' ? '—' : Array.isArray(d) ? (d.length ? `\`${d.join(',')}\`` : '—') : `\`${String(d)}\``;
    return `| \`${name}\` | ${shown} | ${(spec as { desc?: string }).desc ?? ''} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
