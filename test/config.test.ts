import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, configTable, CONFIG_VARIABLES, loadConfig, redact } from '../src/config.ts';

test('defaults give the embedded demo shop on port 8000', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.database.url, undefined);
  assert.equal(c.dataDir, './data');
  assert.deepEqual(c.database.replicaUrls, []);
  assert.deepEqual(c.corsOrigins, ['http://localhost:3000', 'http://127.0.0.1:3000']);
  assert.equal(c.cdnUrl, undefined);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.database));
});

test('every bad variable is named in one error', () => {
  const err = (() => {
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud', USE_CDN: 'maybe', TRUSTED_PROXIES: '10.0.0.0/99' });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof ConfigError);
  for (const name of ['PORT', 'DATABASE_URL', 'LOG_LEVEL', 'USE_CDN', 'TRUSTED_PROXIES']) assert.match(err.message, new RegExp(name));
  assert.equal(err.problems.length, 6, 'a DATABASE_URL was given, so SECRET_KEY is required too');
  assert.match(err.message, /SECRET_KEY is required/);
  // rules between variables are checked in the same pass, not after the others are fixed
  assert.throws(() => loadConfig({ PORT: 'x', DATABASE_URL: 'postgres://u@h/db', USE_CDN: 'true' }), (e: ConfigError) =>
    e.problems.length === 3 && /PORT/.test(e.message) && /SECRET_KEY is required/.test(e.message) && /CDN_URL is required/.test(e.message));
});

test('cross-variable rules', () => {
  assert.throws(() => loadConfig({ USE_CDN: 'True' }), /CDN_URL is required/);
  assert.equal(loadConfig({ USE_CDN: 'True', CDN_URL: 'https://cdn.example.com/' }).cdnUrl, 'https://cdn.example.com');
  assert.equal(loadConfig({ USE_CDN: 'false', CDN_URL: 'https://cdn.example.com' }).cdnUrl, undefined);
  assert.throws(() => loadConfig({ DATABASE_URL: 'postgres://u@h/db' }), /SECRET_KEY is required/);
  assert.throws(() => loadConfig({ SECRET_KEY: 'short' }), /at least 32/);
  assert.throws(() => loadConfig({ DATABASE_REPLICA_URLS: 'postgres://r/db' }), /needs DATABASE_URL/);
  assert.throws(() => loadConfig({ DATABASE_SCHEMA: 'bad;drop' }), /DATABASE_SCHEMA/);
  const c = loadConfig({ DATABASE_URL: 'postgres://u:pw@h/db', SECRET_KEY: 'x'.repeat(32), DATABASE_REPLICA_URLS: 'postgres://r1/db, postgres://r2/db', TRUSTED_PROXIES: '127.0.0.1,10.0.0.0/8,::1' });
  assert.deepEqual(c.database.replicaUrls, ['postgres://r1/db', 'postgres://r2/db']);
  assert.deepEqual(c.trustedProxies, ['127.0.0.1', '10.0.0.0/8', '::1']);
  // Production takes real payments: the test provider only when asked for by name.
  const prod = { NODE_ENV: 'production', SECRET_KEY: 'x'.repeat(32) };
  assert.throws(() => loadConfig(prod), /STRIPE_SECRET_KEY is required when NODE_ENV is production/);
  assert.equal(loadConfig({ ...prod, ALLOW_TEST_PAYMENTS: 'true' }).payments.stripeSecretKey, undefined);
  assert.throws(() => loadConfig({ ...prod, STRIPE_SECRET_KEY: 'sk_live_x' }), /STRIPE_WEBHOOK_SECRET is required/);
  assert.equal(loadConfig({ ...prod, STRIPE_SECRET_KEY: 'sk_live_x', STRIPE_WEBHOOK_SECRET: 'whsec_x' }).payments.stripeSecretKey, 'sk_live_x');
});

test('accounts settings: token and session lifetimes, Redis session store, first staff account', () => {
  const d = loadConfig({});
  assert.deepEqual({ ...d.auth }, { accessTokenTtl: 3600, refreshTokenTtl: 604_800, sessionTtl: 1_209_600, passwordResetTtl: 3600, refreshReuseDetection: false, refreshReuseGrace: 10 });
  assert.deepEqual({ ...d.redis }, { url: undefined, default: undefined, session: undefined, api: undefined, keyPrefix: '' });
  assert.equal(d.staff, undefined);
  const c = loadConfig({ ACCESS_TOKEN_TTL: '15m', REFRESH_TOKEN_TTL: '14d', SESSION_TTL: '90', REDIS_URL: 'redis://:pw@cache:6380/0', STAFF_EMAIL: 'boss@example.com', STAFF_PASSWORD: 'Staff-Pass-2026' });
  assert.deepEqual({ ...c.auth }, { accessTokenTtl: 900, refreshTokenTtl: 1_209_600, sessionTtl: 90, passwordResetTtl: 3600, refreshReuseDetection: false, refreshReuseGrace: 10 });
  assert.deepEqual([c.redis.default, c.redis.session, c.redis.api, c.jobs.redis], [1, 2, 3, 0].map((db) => ({ kind: 'server', url: `redis://:pw@cache:6380/${db}` })));
  assert.deepEqual(loadConfig({ REDIS_URL: 'redis://cache', REDIS_SESSION_URL: 'redis://sessions:6379/5' }).redis.session, { kind: 'server', url: 'redis://sessions:6379/5' });
  assert.deepEqual({ ...c.staff }, { email: 'boss@example.com', password: 'Staff-Pass-2026' });
  assert.throws(() => loadConfig({ STAFF_EMAIL: 'boss@example.com' }), /set both or neither/);
  assert.throws(() => loadConfig({ STAFF_EMAIL: 'boss', STAFF_PASSWORD: 'x' }), /STAFF_EMAIL must be an email/);
  assert.throws(() => loadConfig({ SESSION_TTL: 'forever', ACCESS_TOKEN_TTL: '0', REDIS_URL: 'http://cache' }), (e: ConfigError) => e.problems.length === 3);
});

test('Redis behind Sentinel or in a Cluster: every user on it, by database or by prefix; bad mixes named', () => {
  const s = loadConfig({ REDIS_SENTINELS: '10.0.0.1:26379, [::1]:26380', REDIS_SENTINEL_NAME: 'shop', REDIS_PASSWORD: 'pw', RATE_LIMIT_REDIS_URL: 'redis://limits:6379/0' });
  const auth = { username: undefined, password: 'pw', tls: false };
  const sentinels = [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }];
  assert.deepEqual(s.redis.api, { kind: 'sentinel', sentinels, name: 'shop', sentinelPassword: undefined, auth, db: 3 });
  assert.deepEqual([s.redis.default, s.redis.session, s.jobs.redis].map((t) => t?.kind === 'sentinel' && t.db), [1, 2, 0]);
  assert.deepEqual(s.limits.redis, { kind: 'server', url: 'redis://limits:6379/0' }, 'a URL of its own still wins');
  const c = loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000,r2:7001', REDIS_TLS: 'true' });
  const nodes = [{ host: 'r1', port: 7000 }, { host: 'r2', port: 7001 }];
  const cluster = (prefix: string) => ({ kind: 'cluster', nodes, auth: { username: undefined, password: undefined, tls: true }, prefix });
  assert.deepEqual([c.redis.default, c.redis.session, c.redis.api, c.limits.redis, c.jobs.redis], [cluster('default:'), cluster('session:'), cluster('api:'), cluster(''), cluster('')]);
  assert.equal(loadConfig({ REDIS_SENTINELS: '' }).redis.session, undefined, 'empty reads as unset');
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (e) {
      return (e as ConfigError).problems;
    }
  };
  assert.match(problems({ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2' }).join(), /exclude each other/);
  assert.match(problems({ REDIS_CLUSTER_NODES: 'b:2', REDIS_URL: 'redis://x' }).join(), /REDIS_URL names a single server/);
  assert.match(problems({ REDIS_PASSWORD: 'pw', REDIS_URL: 'redis://x' }).join(), /REDIS_PASSWORD needs REDIS_SENTINELS or REDIS_CLUSTER_NODES/);
  assert.match(problems({ REDIS_SENTINEL_NAME: 'shop' }).join(), /REDIS_SENTINEL_NAME needs REDIS_SENTINELS/);
  assert.match(problems({ REDIS_TLS: 'true', REDIS_URL: 'redis://x' }).join(), /REDIS_TLS needs REDIS_SENTINELS or REDIS_CLUSTER_NODES/);
  assert.equal(loadConfig({ REDIS_TLS: 'false', REDIS_URL: 'redis://x:6379' }).redis.api?.kind, 'server', 'REDIS_TLS=false asks for nothing to refuse');
  assert.match(problems({ REDIS_CLUSTER_NODES: 'b:2', REDIS_KEY_PREFIX: '{shop}:' }).join(), /must not contain \{ or \}/);
  assert.deepEqual(problems({ REDIS_CLUSTER_NODES: 'b, c:99999' }).map((p) => p.split(':')[0]), ['REDIS_CLUSTER_NODES']);
  // A URL or credentials where host:port belongs: named, without the password.
  for (const [name, value] of [['REDIS_CLUSTER_NODES', 'redis://:hunter2@r1:7000'], ['REDIS_SENTINELS', 's0:26379,admin:hunter2@s1:26379']] as const) {
    const said = problems({ [name]: value }).join();
    assert.match(said, new RegExp(`^${name}: .*is not host:port`));
    assert.doesNotMatch(said, /hunter2/);
  }
});

test('passwords never reach messages', () => {
  assert.equal(redact('postgres://shop:hunter2@db:5432/shop'), 'postgres://shop:***@db:5432/shop');
  assert.equal(redact('redis://:hunter2@cache:6379/2'), 'redis://:***@cache:6379/2');
  assert.throws(() => loadConfig({ REDIS_URL: 'http://:hunter2@cache' }), (e: Error) => !e.message.includes('hunter2'));
  assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://shop:hunter2@db/shop' }), (e: Error) => !e.message.includes('hunter2'));
});

test('the README table lists every variable', () => {
  const table = configTable();
  for (const name of Object.keys(CONFIG_VARIABLES)) assert.match(table, new RegExp(`\\| \`${name}\` \\|`));
});

test('rate limits: rates as N/unit or N/Nunit, per-route overrides by name, bad values named', () => {
  const c = loadConfig({ RATE_LIMIT_ANON: '50/hour', RATE_LIMIT_BURST: '5/15m', RATE_LIMIT_ROUTES: 'search=60/minute, checkout=20/hour', RATE_LIMIT_ALLOWLIST: '10.0.0.0/8,::1' });
  assert.deepEqual(c.limits.anonymous, { points: 50, duration: 3600 });
  assert.deepEqual(c.limits.burst, { points: 5, duration: 900 });
  assert.deepEqual(c.limits.routes, { search: { points: 60, duration: 60 }, checkout: { points: 20, duration: 3600 } });
  assert.deepEqual(c.limits.allowlist, ['10.0.0.0/8', '::1']);
  assert.equal(c.limits.redis, undefined);
  assert.deepEqual(loadConfig({ REDIS_URL: 'redis://cache:6379' }).limits.redis, { kind: 'server', url: 'redis://cache:6379/2' }, 'the session database by default');
  assert.throws(
    () => loadConfig({ RATE_LIMIT_USER: '0/hour', RATE_LIMIT_ROUTES: 'search', RATE_LIMIT_BLOCK_AFTER: '-1', RATE_LIMIT_ALLOWLIST: 'everyone' }),
    (e: ConfigError) => ['RATE_LIMIT_USER', 'RATE_LIMIT_ROUTES', 'RATE_LIMIT_BLOCK_AFTER', 'RATE_LIMIT_ALLOWLIST'].every((n) => e.problems.some((p) => p.startsWith(n))),
  );
});

test('schedules: five cron fields, or six with seconds first; anything else named', () => {
  assert.equal(loadConfig({ SCHEDULE_TRIM_JOBS: '*/2 * * * * *' }).jobs.schedules.trim_jobs, '*/2 * * * * *');
  assert.equal(loadConfig({ SCHEDULE_TRIM_JOBS: ' 15  * * * * ' }).jobs.schedules.trim_jobs, '15 * * * *');
  assert.throws(
    () => loadConfig({ SCHEDULE_TRIM_JOBS: '* * * *', SCHEDULE_WARM_CACHE: '0 0 * * * * *' }),
    (e: ConfigError) => ['SCHEDULE_TRIM_JOBS', 'SCHEDULE_WARM_CACHE'].every((n) => e.problems.some((p) => p.startsWith(n))),
  );
});
