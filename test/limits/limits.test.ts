// Rate limits, IP blocks and the client IP, through the HTTP API: in-process counters (PGlite)
// and Redis shared by two instances (PostgreSQL + Redis), exactly under concurrency, and still
// limiting while Redis is gone.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { testApp } from '../helpers/app.ts';
import { signedIn } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { dropPrefix, uniquePrefix } from '../helpers/redis.ts';
import { tcpProxy } from '../helpers/tcp-proxy.ts';

const REDIS = 'redis://127.0.0.1:6379';
const prefixes: string[] = [];
after(async () => {
  for (const p of prefixes) await dropPrefix(p, `${REDIS}/2`);
});

let nextIp = 1;
/** A fresh documentation-range address per test, so no test sees another's counts. */
const freshIp = () => `198.51.100.${nextIp++}`;

forEachBackend('rate limits', ({ backend, db }) => {
  const apps: FastifyInstance[] = [];
  after(async () => {
    for (const a of apps) await a.close();
  });

  /** An app with limits on; instances made with the same `shared` prefix share Redis counters. */
  async function limitedApp(env: Record<string, string> = {}, shared?: string): Promise<FastifyInstance> {
    const prefix = shared ?? uniquePrefix();
    prefixes.push(prefix);
    const app = await testApp(db(), { RATE_LIMIT_ENABLED: 'true', ...(backend === 'postgres' ? { REDIS_URL: REDIS } : {}), ...env }, { cacheKeyPrefix: prefix });
    apps.push(app);
    return app;
  }

  const call = (app: FastifyInstance, ip: string, url: string, o: Partial<InjectOptions> = {}) =>
    app.inject({ method: 'GET', url, remoteAddress: ip, ...o, headers: { host: 'shop.test', ...(o.headers ?? {}) } });

  test('anonymous callers: every response carries the RateLimit headers; over the limit a 429 names the window, also for a cached answer', async () => {
    await f.product(db().db);
    const app = await limitedApp({ RATE_LIMIT_ANON: '3/hour', RATE_LIMIT_BURST: '100/minute' });
    const ip = freshIp();
    for (let i = 0; i < 3; i++) {
      const res = await call(app, ip, '/api/products/');
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['ratelimit-limit'], '3');
      assert.equal(res.headers['ratelimit-remaining'], String(2 - i));
      assert.ok(Number(res.headers['ratelimit-reset']) > 3500);
      assert.equal(res.headers['ratelimit-policy'], undefined, 'the policy only with a refusal');
      if (i > 0) assert.equal(res.headers['x-cache'], 'HIT');
    }
    const refused = await call(app, ip, '/api/products/');
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.headers['x-cache'], undefined, 'the cache is never reached');
    const retry = Number(refused.headers['retry-after']);
    assert.ok(retry > 3500 && retry <= 3600, String(retry));
    assert.equal(refused.headers['ratelimit-remaining'], '0');
    assert.equal(refused.headers['ratelimit-policy'], '3;w=3600');
    assert.deepEqual(refused.json(), {
      error: true,
      message: `Request was throttled. Expected available in ${retry} seconds.`,
      status_code: 429,
      code: 'throttled',
      limit: 'anonymous',
      rate: '3/hour',
      retry_after: retry,
    });
    // Another address has its own count.
    assert.equal((await call(app, freshIp(), '/api/products/')).statusCode, 200);
  });

  test('signed-in users are counted per user, staff on their own higher tier; the burst tier applies to both kinds', async () => {
    const app = await limitedApp({ RATE_LIMIT_ANON: '100/hour', RATE_LIMIT_USER: '2/hour', RATE_LIMIT_BURST: '4/minute', RATE_LIMIT_STAFF: '6/hour' });
    const ip = freshIp();
    const a = await signedIn(app, db());
    const b = await signedIn(app, db());
    const staff = await signedIn(app, db(), { staff: true });
    for (let i = 0; i < 2; i++) assert.equal((await call(app, ip, '/api/users/profile/', { headers: a.headers })).statusCode, 200);
    const over = await call(app, ip, '/api/users/profile/', { headers: a.headers });
    assert.equal(over.statusCode, 429);
    assert.equal(over.json().limit, 'user');
    // B, and anonymous callers from the same address, are not affected by A's count.
    assert.equal((await call(app, ip, '/api/users/profile/', { headers: b.headers })).statusCode, 200);
    assert.equal((await call(app, ip, '/api/products/')).statusCode, 200);
    for (let i = 0; i < 6; i++) assert.equal((await call(app, ip, '/api/users/profile/', { headers: staff.headers })).statusCode, 200, `staff request ${i + 1}`);
    const staffOver = await call(app, ip, '/api/users/profile/', { headers: staff.headers });
    assert.equal(staffOver.statusCode, 429);
    assert.equal(staffOver.json().limit, 'staff');
    // Burst: 4 a minute per anonymous address, before its hourly 100.
    const burstIp = freshIp();
    for (let i = 0; i < 4; i++) assert.equal((await call(app, burstIp, '/api/products/categories/')).statusCode, 200);
    const burst = await call(app, burstIp, '/api/products/categories/');
    assert.equal(burst.statusCode, 429);
    assert.equal(burst.json().limit, 'burst');
  });

  test('per-route limits are declared at the route and overridable by name; other routes keep counting only the tiers', async () => {
    const app = await limitedApp({ RATE_LIMIT_BURST: '100/minute', RATE_LIMIT_ROUTES: 'search=2/minute' });
    const ip = freshIp();
    assert.equal((await call(app, ip, '/api/products/search/?q=dragon')).statusCode, 200);
    const second = await call(app, ip, '/api/products/advanced-search/?q=dragon');
    assert.equal(second.statusCode, 200, 'quick and advanced search share the `search` limit');
    assert.equal(second.headers['ratelimit-limit'], '2');
    assert.equal(second.headers['ratelimit-remaining'], '0');
    const refused = await call(app, ip, '/api/products/search/?q=dragon');
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.json().limit, 'search');
    assert.ok(Number(refused.headers['retry-after']) <= 60);
    assert.equal((await call(app, ip, '/api/products/')).statusCode, 200);
    // Registration: 5 an hour per address by default.
    const regIp = freshIp();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(app, regIp, '/api/users/auth/register/', { method: 'POST', payload: {} })).statusCode);
    assert.deepEqual(statuses, [400, 400, 400, 400, 400, 429]);
  });

  test('health checks, the API docs and allow-listed addresses are never limited', async () => {
    const app = await limitedApp({ RATE_LIMIT_ANON: '1/hour', RATE_LIMIT_ALLOWLIST: '203.0.113.0/24,2001:db8::/32' });
    const ip = freshIp();
    assert.equal((await call(app, ip, '/api/products/')).statusCode, 200);
    assert.equal((await call(app, ip, '/api/products/')).statusCode, 429);
    for (let i = 0; i < 3; i++) {
      const health = await call(app, ip, '/health/');
      assert.equal(health.statusCode, 200);
      assert.equal(health.headers['ratelimit-limit'], undefined);
      assert.equal((await call(app, ip, '/api/docs/json')).statusCode, 200);
      assert.equal((await call(app, ip, '/robots.txt')).statusCode, 200);
    }
    for (const allowed of ['203.0.113.77', '2001:db8::5', '::ffff:203.0.113.8']) {
      for (let i = 0; i < 3; i++) {
        const res = await call(app, allowed, '/api/products/');
        assert.equal(res.statusCode, 200, allowed);
        assert.equal(res.headers['ratelimit-limit'], undefined);
      }
    }
    // Loopback is not exempt unless listed.
    assert.equal((await call(app, '127.0.0.1', '/api/products/')).statusCode, 200);
    assert.equal((await call(app, '127.0.0.1', '/api/products/')).statusCode, 429);
    // Unknown paths count too: a scanner's guesses are limited like any request.
    const scanner = freshIp();
    assert.equal((await call(app, scanner, '/wp-admin/')).statusCode, 404);
    const guessed = await call(app, scanner, '/.env');
    assert.equal(guessed.statusCode, 429);
    assert.equal(guessed.json().code, 'throttled');
  });

  test('an allow-listed address that forwards for others (a proxy not in TRUSTED_PROXIES) exempts no one: its clients are limited together, as at /metrics', async () => {
    const app = await limitedApp({ RATE_LIMIT_ANON: '1/hour', RATE_LIMIT_ALLOWLIST: '127.0.0.1' });
    for (let i = 0; i < 3; i++) assert.equal((await call(app, '127.0.0.1', '/api/products/')).statusCode, 200, 'its own requests stay exempt');
    for (const header of [{ 'x-forwarded-for': '198.51.100.7' }, { 'x-real-ip': '198.51.100.8' }, { forwarded: 'for=198.51.100.9' }]) {
      const statuses = [];
      for (let i = 0; i < 2; i++) statuses.push((await call(app, '127.0.0.1', '/api/products/', { headers: header })).statusCode);
      assert.ok(statuses.includes(429), `forwarded with ${Object.keys(header)[0]}: ${statuses}`);
    }
  });

  test('repeated violations block the address: 403 on every request until staff unblock it', async () => {
    const app = await limitedApp({ RATE_LIMIT_ANON: '1/hour', RATE_LIMIT_BLOCK_AFTER: '3', RATE_LIMIT_BLOCK_DURATION: '2h' });
    const staff = await signedIn(app, db(), { staff: true });
    const staffIp = freshIp();
    const ip = freshIp();
    assert.equal((await call(app, ip, '/api/products/')).statusCode, 200);
    for (let i = 0; i < 3; i++) assert.equal((await call(app, ip, '/api/products/')).statusCode, 429);
    const blocked = await call(app, ip, '/api/products/categories/');
    assert.equal(blocked.statusCode, 403);
    assert.equal((await call(app, ip, '/health/')).statusCode, 403, 'a block covers exempt routes too');
    const body = blocked.json();
    assert.equal(body.error, true);
    assert.equal(body.status_code, 403);
    assert.equal(body.code, 'ip_blocked');
    assert.match(body.message, /^Your IP address is blocked until \d{4}-\d\d-\d\dT/);
    const until = Date.parse(body.blocked_until);
    assert.ok(until > Date.now() + 7100_000 && until <= Date.now() + 7200_000);
    // Even a signed-in user from that address.
    assert.equal((await call(app, ip, '/api/users/profile/', { headers: staff.headers })).statusCode, 403);

    assert.equal((await call(app, staffIp, '/api/utils/rate-limits/blocked/')).statusCode, 401);
    const customer = await signedIn(app, db());
    assert.equal((await call(app, staffIp, '/api/utils/rate-limits/blocked/', { headers: customer.headers })).statusCode, 403);
    const list = await call(app, staffIp, '/api/utils/rate-limits/blocked/', { headers: staff.headers });
    assert.equal(list.statusCode, 200);
    const entry = list.json().results.find((e: { ip: string }) => e.ip === ip);
    assert.ok(entry, 'listed');
    assert.match(entry.reason, /3 rate-limit violations within 60 minutes \(last: anonymous\)/);
    assert.equal(entry.expires_at, body.blocked_until);
    assert.equal(list.headers['cache-control'], 'private, no-store');

    assert.equal((await call(app, staffIp, '/api/utils/rate-limits/blocked/not-an-ip/', { method: 'DELETE', headers: staff.headers })).statusCode, 400);
    assert.equal((await call(app, staffIp, `/api/utils/rate-limits/blocked/${freshIp()}/`, { method: 'DELETE', headers: staff.headers })).statusCode, 404);
    const unblocked = await call(app, staffIp, `/api/utils/rate-limits/blocked/${ip}/`, { method: 'DELETE', headers: staff.headers });
    assert.equal(unblocked.statusCode, 200);
    assert.deepEqual(unblocked.json(), { message: `${ip} unblocked` });
    const after = await call(app, ip, '/api/products/categories/');
    assert.equal(after.statusCode, 429, 'unblocked, though its hourly window is still spent');
    assert.ok(!(await call(app, staffIp, '/api/utils/rate-limits/blocked/', { headers: staff.headers })).json().results.some((e: { ip: string }) => e.ip === ip));
  });

  test('X-Forwarded-For counts only from a trusted proxy: a spoofed header from anyone else changes nothing', async () => {
    const app = await limitedApp({ RATE_LIMIT_ANON: '2/hour', TRUSTED_PROXIES: '10.9.0.1' });
    const direct = freshIp();
    for (let i = 0; i < 2; i++) assert.equal((await call(app, direct, '/api/products/', { headers: { 'x-forwarded-for': `192.0.2.${i}` } })).statusCode, 200);
    assert.equal((await call(app, direct, '/api/products/', { headers: { 'x-forwarded-for': '192.0.2.99' } })).statusCode, 429, 'a new header does not buy a new count');
    // Through the proxy, each client is itself.
    const client = freshIp();
    for (let i = 0; i < 2; i++) assert.equal((await call(app, '10.9.0.1', '/api/products/', { headers: { 'x-forwarded-for': client } })).statusCode, 200);
    assert.equal((await call(app, '10.9.0.1', '/api/products/', { headers: { 'x-forwarded-for': client } })).statusCode, 429);
    assert.equal((await call(app, '10.9.0.1', '/api/products/', { headers: { 'x-forwarded-for': freshIp() } })).statusCode, 200);
  });

  test('failed sign-ins back off per account and address together: a stranger cannot lock the owner out; an address guessing at many accounts waits; past the account-wide ceiling only addresses new to the account wait', async () => {
    const app = await limitedApp({ LOGIN_FREE_FAILURES: '2', LOGIN_ACCOUNT_FREE_FAILURES: '6', RATE_LIMIT_ROUTES: 'login=100/hour', RATE_LIMIT_BURST: '100/minute', RATE_LIMIT_BLOCK_AFTER: '0' });
    const user = await signedIn(app, db());
    const login = (password: string, from: string, email = user.email) => call(app, from, '/api/users/auth/login/', { method: 'POST', payload: { email, password } });
    const owner = freshIp();
    assert.equal((await login(user.password, owner)).statusCode, 200, 'the owner signs in from home');
    const attacker = freshIp();
    for (let i = 1; i <= 3; i++) assert.equal((await login(`wrong-${i}`, attacker)).statusCode, 401);
    const waiting = await login(user.password, attacker);
    assert.equal(waiting.statusCode, 429, 'the guessing address waits, even with the right password');
    assert.equal(waiting.headers['retry-after'], '1');
    assert.equal(waiting.json().limit, 'login_failures');
    assert.equal(waiting.json().status_code, 429);
    // The stranger's failures are not the owner's: from home or from anywhere new, the owner gets in.
    assert.equal((await login(user.password, owner)).statusCode, 200, 'the owner at home');
    assert.equal((await login(user.password, freshIp())).statusCode, 200, 'the owner somewhere new');
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await login('wrong-4', attacker)).statusCode, 401);
    const longer = await login(user.password, attacker);
    assert.equal(longer.statusCode, 429);
    assert.equal(longer.headers['retry-after'], '2', 'the wait doubles');
    // Guessing spread over many addresses: past LOGIN_ACCOUNT_FREE_FAILURES (6 here; 4 above, 3 now) failures to the
    // account in a day, addresses that never signed in to it wait too; the owner's do not.
    for (let i = 0; i < 3; i++) assert.equal((await login(`spread-${i}`, freshIp())).statusCode, 401);
    const spread = await login(user.password, freshIp());
    assert.equal(spread.statusCode, 429, 'an address new to the account, past the account-wide ceiling');
    assert.equal(spread.json().limit, 'login_failures');
    assert.equal((await login(user.password, owner)).statusCode, 200, 'the owner’s own address is never locked by others');
    // One address guessing at many accounts waits across them, but not for an account that signed
    // in from there before (a guesser behind the owner's NAT).
    const guesser = freshIp();
    const neighbour = await signedIn(app, db());
    assert.equal((await login(neighbour.password, guesser, neighbour.email)).statusCode, 200);
    for (let i = 0; i < 3; i++) assert.equal((await login('x', guesser, `nobody-${i}-${guesser}@example.com`)).statusCode, 401);
    assert.equal((await login('x', guesser, `nobody-9-${guesser}@example.com`)).statusCode, 429);
    assert.equal((await login(neighbour.password, guesser, neighbour.email)).statusCode, 200, 'an account known at that address');
  });

  test('anonymous flows are limited per address whoever calls (a customer token buys no window of its own), and reset and sign-up per target email from any address', async () => {
    const app = await limitedApp({ RATE_LIMIT_ROUTES: 'login=2/hour,register=2/hour,password_reset=2/hour', RATE_LIMIT_BURST: '100/minute', RATE_LIMIT_BLOCK_AFTER: '0' });
    const [a, b] = [await signedIn(app, db()), await signedIn(app, db())];
    const post = (from: string, url: string, payload: object, token?: string) =>
      call(app, from, url, { method: 'POST', payload, headers: token ? { authorization: `Bearer ${token}` } : {} });
    const ip = freshIp();
    for (let i = 0; i < 2; i++) assert.equal((await post(ip, '/api/users/auth/login/', { email: a.email, password: 'wrong' })).statusCode, 401);
    for (const token of [a.access, b.access]) {
      const r = await post(ip, '/api/users/auth/login/', { email: a.email, password: 'wrong' }, token);
      assert.equal(r.statusCode, 429, 'sign-in: a token does not open a new window');
      assert.equal(r.json().limit, 'login');
    }
    const ip2 = freshIp();
    for (let i = 0; i < 2; i++) assert.equal((await post(ip2, '/api/users/password/reset/', { email: `someone-${i}-${ip2}@example.com` })).statusCode, 200);
    assert.equal((await post(ip2, '/api/users/password/reset/', { email: `someone-9-${ip2}@example.com` }, a.access)).statusCode, 429, 'reset: the same');
    const ip3 = freshIp();
    const reg = (i: number, token?: string) => post(ip3, '/api/users/auth/register/', { email: `new-${i}-${ip3}@example.com`, username: `n${i}-${ip3}`, first_name: 'N', last_name: 'U', password: 'Str0ng-Pass-2026', password_confirm: 'Str0ng-Pass-2026' }, token);
    for (let i = 0; i < 2; i++) {
      const r = await reg(i);
      assert.equal(r.statusCode, 201, r.body);
    }
    assert.equal((await reg(3, b.access)).statusCode, 429, 'sign-up: the same');
    // One victim's address from many addresses: the reset emails stop at the per-email window.
    const victim = `victim-${ip}@example.com`;
    for (let i = 0; i < 2; i++) assert.equal((await post(freshIp(), '/api/users/password/reset/', { email: victim })).statusCode, 200);
    // Past it, the same answer (anyone can spend an email's window: the owner must not be refused)
    // but nothing more is mailed.
    const queued = app.jobs.add.bind(app.jobs);
    const mailed: string[] = [];
    app.jobs.add = (async (name: string, payload: { email?: string }, ...rest: unknown[]) => {
      if (name === 'send_password_reset') mailed.push(payload.email!);
      return (queued as (...a: unknown[]) => Promise<unknown>)(name, payload, ...rest);
    }) as typeof app.jobs.add;
    const flood = await post(freshIp(), '/api/users/password/reset/', { email: victim.toUpperCase() });
    assert.equal(flood.statusCode, 200, 'the same email, however written, from a new address');
    assert.deepEqual(flood.json(), { message: 'If an account exists for this email, a reset link has been sent.' });
    assert.deepEqual(mailed, [], 'no link mailed past the email’s window');
    assert.equal((await post(freshIp(), '/api/users/password/reset/', { email: `other-${ip}@example.com` })).statusCode, 200, 'another email is not limited by it');
    assert.deepEqual(mailed, [`other-${ip}@example.com`]);
    app.jobs.add = queued;
  });

  test('a wait cannot be outrun in parallel: once failures call for one, of attempts that arrive together only one is checked', async () => {
    const app = await limitedApp({ LOGIN_FREE_FAILURES: '2', LOGIN_ACCOUNT_FREE_FAILURES: '4', RATE_LIMIT_ROUTES: 'login=1000/hour', RATE_LIMIT_BURST: '1000/minute', RATE_LIMIT_BLOCK_AFTER: '0' });
    const user = await signedIn(app, db());
    const login = (password: string, from: string) => call(app, from, '/api/users/auth/login/', { method: 'POST', payload: { email: user.email, password } });
    const owner = freshIp();
    assert.equal((await login(user.password, owner)).statusCode, 200);
    // One address: its third failure calls for a 1 s wait; once it is over, a burst of ten.
    const guesser = freshIp();
    for (let i = 0; i < 3; i++) assert.equal((await login(`wrong-${i}`, guesser)).statusCode, 401);
    await new Promise((r) => setTimeout(r, 1100));
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => login(`burst-${i}`, guesser)));
    assert.deepEqual(burst.map((r) => r.statusCode).sort(), [401, ...Array(9).fill(429)], 'one guess checked, nine told to wait');
    // Spread over many addresses past the account-wide ceiling (4 here, 4 failures so far): the
    // same, each from an address of its own.
    const spread = await Promise.all(Array.from({ length: 10 }, (_, i) => login(`spread-${i}`, freshIp())));
    assert.deepEqual(spread.map((r) => r.statusCode).sort(), [401, ...Array(9).fill(429)], 'one guess checked account-wide');
    assert.equal((await login(user.password, owner)).statusCode, 200, 'the owner’s own address is never held up');
  });

  test('a body naming an email no address could have is refused by validation, not counted per email (no key of any length)', async () => {
    const app = await limitedApp({ RATE_LIMIT_ROUTES: 'register=100/hour,register_email=1/hour', RATE_LIMIT_BURST: '100/minute', RATE_LIMIT_BLOCK_AFTER: '0' });
    const long = `${'a'.repeat(100_000)}@example.com`;
    for (let i = 0; i < 3; i++) {
      const r = await call(app, freshIp(), '/api/users/auth/register/', { method: 'POST', payload: { email: long, username: `l${i}`, first_name: 'L', last_name: 'E', password: 'Str0ng-Pass-2026', password_confirm: 'Str0ng-Pass-2026' } });
      assert.equal(r.statusCode, 400, r.body.slice(0, 300));
    }
  });

  test('IPv6: one /64 (one subscriber, who may pick any address in it) is one address for the windows and sign-in backoff', async () => {
    const app = await limitedApp({ RATE_LIMIT_ANON: '2/hour', LOGIN_FREE_FAILURES: '1', RATE_LIMIT_ROUTES: 'login=100/hour', RATE_LIMIT_BLOCK_AFTER: '0' });
    const net = `2001:db8:${nextIp++}:7`;
    assert.equal((await call(app, `${net}::1`, '/api/products/')).statusCode, 200);
    assert.equal((await call(app, `${net}:0:0:0:2`, '/api/products/')).statusCode, 200);
    const third = await call(app, `${net}:abcd:1:2:3`, '/api/products/');
    assert.equal(third.statusCode, 429, 'a third address of the same /64');
    assert.equal((await call(app, `2001:db8:${nextIp++}:7::1`, '/api/products/')).statusCode, 200, 'another /64');
    // Sign-in backoff too: a guesser hopping addresses in its /64 still waits.
    const user = await signedIn(app, db());
    const guessNet = `2001:db8:${nextIp++}:9`;
    const login = (from: string) => call(app, from, '/api/users/auth/login/', { method: 'POST', payload: { email: user.email, password: 'wrong' } });
    assert.equal((await login(`${guessNet}::1`)).statusCode, 401);
    assert.equal((await login(`${guessNet}::2`)).statusCode, 401);
    assert.equal((await login(`${guessNet}::3`)).statusCode, 429);
  });

  test('someone else spending an email’s reset window neither blocks the owner’s address nor refuses the owner: the reset answer stays the same, with no further email', async () => {
    const app = await limitedApp({ RATE_LIMIT_ROUTES: 'password_reset=2/hour,register=2/hour', RATE_LIMIT_BURST: '100/minute', RATE_LIMIT_BLOCK_AFTER: '2' });
    const post = (from: string, url: string, payload: object) => call(app, from, url, { method: 'POST', payload });
    const victim = `spent-${freshIp()}@example.com`;
    // A stranger, from two addresses of their own, spends the victim's per-email window.
    for (let i = 0; i < 2; i++) assert.equal((await post(freshIp(), '/api/users/password/reset/', { email: victim })).statusCode, 200);
    const home = freshIp();
    for (let i = 0; i < 2; i++) {
      const r = await post(home, '/api/users/password/reset/', { email: victim });
      assert.equal(r.statusCode, 200, `the owner asks for a link (${i + 1}): ${r.body}`);
      assert.deepEqual(r.json(), { message: 'If an account exists for this email, a reset link has been sent.' });
    }
    // Sign-up with an email someone else spent: refused, but not counted against this address.
    for (let i = 0; i < 2; i++) await post(freshIp(), '/api/users/auth/register/', { email: victim, username: `x${i}`, first_name: 'X', last_name: 'Y', password: 'short', password_confirm: 'short' });
    for (let i = 0; i < 2; i++) {
      const r = await post(home, '/api/users/auth/register/', { email: victim, username: `spent${i}`, first_name: 'S', last_name: 'P', password: 'Str0ng-Pass-2026', password_confirm: 'Str0ng-Pass-2026' });
      assert.equal(r.statusCode, 429, r.body);
      assert.equal(r.json().limit, 'register_email');
    }
    assert.equal((await call(app, home, '/api/products/')).statusCode, 200, 'the owner’s address is not blocked for limits others spent');
  });

  if (backend !== 'postgres') return;

  test('500 concurrent requests from one address over two instances sharing Redis: exactly 100 pass', async () => {
    const shared = uniquePrefix();
    const env = { RATE_LIMIT_ANON: '100/hour', RATE_LIMIT_BURST: '10000/minute', RATE_LIMIT_SUSTAINED: '10000/day', RATE_LIMIT_BLOCK_AFTER: '0' };
    const [a, b] = [await limitedApp(env, shared), await limitedApp(env, shared)];
    const ip = freshIp();
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => call(i % 2 ? a : b, ip, '/api/products/categories/')));
    const counts = new Map<number, number>();
    for (const r of results) counts.set(r.statusCode, (counts.get(r.statusCode) ?? 0) + 1);
    assert.deepEqual([...counts].sort(), [
      [200, 100],
      [429, 400],
    ]);
  });

  test('a block made on one instance is enforced by the other at once', async () => {
    const shared = uniquePrefix();
    const env = { RATE_LIMIT_ANON: '1/hour', RATE_LIMIT_BLOCK_AFTER: '2' };
    const [a, b] = [await limitedApp(env, shared), await limitedApp(env, shared)];
    const ip = freshIp();
    assert.equal((await call(a, ip, '/api/products/')).statusCode, 200);
    assert.equal((await call(a, ip, '/api/products/')).statusCode, 429);
    assert.equal((await call(b, ip, '/api/products/')).statusCode, 429);
    await new Promise((r) => setTimeout(r, 50)); // the pub/sub message
    assert.equal((await call(a, ip, '/api/products/')).statusCode, 403);
    assert.equal((await call(b, ip, '/api/products/')).statusCode, 403);
  });

  test('with Redis gone, the insurance limiter keeps limiting and nothing fails; shared counting resumes when it returns', async () => {
    const proxy = await tcpProxy(6379);
    let app: FastifyInstance | undefined;
    try {
      app = await limitedApp({ RATE_LIMIT_REDIS_URL: `redis://127.0.0.1:${proxy.port}/2`, RATE_LIMIT_ANON: '3/hour', RATE_LIMIT_BLOCK_AFTER: '0' });
      const ip = freshIp();
      assert.equal((await call(app, ip, '/api/products/')).statusCode, 200);
      await proxy.cut();
      const during: number[] = [];
      for (let i = 0; i < 5; i++) during.push((await call(app, ip, '/api/products/')).statusCode);
      assert.deepEqual(during, [200, 200, 200, 429, 429], 'the in-memory insurance counts on its own');
      await proxy.restore();
      for (let i = 0; i < 100 && (await waitReady(app)) === false; i++) await new Promise((r) => setTimeout(r, 50));
      // Redis still holds the one request counted before the cut: this is the second of three.
      const back = await call(app, ip, '/api/products/');
      assert.equal(back.statusCode, 200);
      assert.equal(back.headers['ratelimit-limit'], '3');
      assert.equal(back.headers['ratelimit-remaining'], '1');
    } finally {
      // The app's Redis clients go through the proxy: close them before it, so nothing of this
      // test is still reconnecting after it ended.
      if (app) {
        apps.splice(apps.indexOf(app), 1);
        await app.close();
      }
      await proxy.close();
    }
  });
});

async function waitReady(app: FastifyInstance): Promise<boolean> {
  return app.limits?.redisReady === true;
}
