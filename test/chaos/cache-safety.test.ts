// Cache safety (issue 11): no personal data is ever served from a shared cache key, and every
// personal route tells caches to keep its answers private. The cached routes are found by asking
// (an answer with X-Cache), not listed by hand, so a route that opts into `cacheResponse` later is
// checked too. Then, per cached route:
//   - the key does not depend on who asks: staff with a token and cookie fill it, customer A and
//     a guest get the same bytes and ETag (HIT), and no cached answer sets a cookie;
//   - the handler emits nothing personal: with the cache off, staff and guest get the same answer,
//     and no answer holds a user's fields or strings;
//   - a hot entry never answers a request that must be refused (a bad or expired token: 401; a
//     blocked address: 403), not even as a 304.
// And every personal route (access.ts) answers Cache-Control private/no-store with Vary covering
// Authorization and Cookie, never with X-Cache.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { testApp } from '../helpers/app.ts';
import { openTestDatabase } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { ACCESS, isPersonal, makeCall, setUp, type Caller, type Ctx, type Reply, type Who } from './access.ts';
import { reportRow } from './report.ts';

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let app: FastifyInstance;
let ctx: Ctx;
/** The cached GET routes found by asking: table key → URL. */
const cached = new Map<string, string>();
/** Keys no cached answer may hold, at any depth: a user's or the back office's. */
const PERSONAL_KEYS = ['password', 'email', 'phone', 'date_of_birth', 'session_key', 'is_staff', 'street_address', 'shipping_email', 'owner_key', 'stripe_customer_id'];

before(async () => {
  database = await openTestDatabase('pglite');
  app = await testApp(database);
  ctx = await setUp(app, database);
  // Something for the catalog routes to show: reviews (with the reviewer's name) and an inactive product.
  await f.review(database.db, ctx.fx.product.id, ctx.callers.b.user!.id, 4);
  await f.product(database.db, { category_id: ctx.fx.category.id, is_active: false, name: 'Hidden draft' });
});

after(async () => {
  await app?.close();
  await database?.drop();
});

/** Adds a token and a guest cookie to a caller, so a leak through either would show. */
function withCookie(who: Who): Record<string, string> {
  return { ...ctx.callers[who].headers, cookie: ctx.callers.anonymous.headers.cookie! };
}

function keysIn(v: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) v.forEach((x) => keysIn(x, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.add(k), keysIn(x, out);
  return out;
}

/**
 * The cached routes the first test found. Run without it (a name pattern, --test-only), the map is
 * empty and the tests below would check nothing and pass.
 */
function cachedRoutes(): Map<string, string> {
  assert.ok(cached.size > 0, 'no cached routes known: the first test of this file finds them');
  return cached;
}

async function urlOf(key: string, caller: Caller): Promise<string> {
  const [, path] = key.split(' ') as [string, string];
  return (await ACCESS[key]!.req?.(ctx, caller))?.url ?? path;
}

test('the cached routes are all public ones, and no personal route is ever cached', async () => {
  let requests = 0;
  let checks = 0;
  const problems: string[] = [];
  for (const [key, rule] of Object.entries(ACCESS)) {
    if (!key.startsWith('GET ')) continue;
    const url = await urlOf(key, ctx.callers.a);
    // Twice as A: a cached route answers the second from the cache.
    await ctx.call('a', 'GET', url);
    const second = await ctx.call('a', 'GET', url);
    requests += 2;
    checks++;
    if (second.headers['x-cache'] === undefined) continue;
    if (isPersonal(rule.access)) problems.push(`${key} is personal (${rule.access}) but answered from the cache`);
    else cached.set(key, url);
  }
  // The catalog reads the contract caches (§1.7) at least; finding none would mean the probe is broken.
  for (const k of ['GET /api/products/', 'GET /api/products/{id}/', 'GET /api/products/categories/', 'GET /api/promotions/active/']) {
    checks++;
    if (!cached.has(k)) problems.push(`${k} was expected to be cached`);
  }
  reportRow({ suite: 'cache safety', scenario: `cached routes found by asking (${cached.size}), all public`, requests, serverErrors: 0, checks, checksPassed: checks - problems.length });
  assert.deepEqual(problems, []);
});

test('a cached answer is the same bytes for staff, customer and guest, sets no cookie, and holds nobody\'s data', async () => {
  const problems: string[] = [];
  let requests = 0;
  let checks = 0;
  const secrets = [...ctx.fx.secretsOfA, ctx.callers.b.user!.email, ctx.callers.staff.user!.email, ctx.callers.anonymous.headers.cookie!.split('=')[1]!];
  for (const [key, url] of cachedRoutes()) {
    await app.caches.api.clear();
    // Staff first, with a token and a guest cookie: if anything of theirs went into the entry, the others would see it.
    const answers: [Who, Reply][] = [];
    for (const who of ['staff', 'a', 'anonymous'] as const) {
      answers.push([who, await ctx.call(who, 'GET', url, { headers: withCookie(who) })]);
      requests++;
    }
    const [[, first]] = answers as [[Who, Reply]];
    for (const [who, r] of answers) {
      checks += 5;
      if (r.status !== 200) problems.push(`${key} as ${who}: ${r.status}`);
      if (r.raw !== first.raw || r.headers.etag !== first.headers.etag) problems.push(`${key}: ${who} got other bytes than staff did`);
      if (who !== 'staff' && r.headers['x-cache'] !== 'HIT') problems.push(`${key} as ${who}: X-Cache ${r.headers['x-cache']}`);
      if (r.headers['set-cookie'] !== undefined) problems.push(`${key} as ${who}: a cacheable answer sets a cookie`);
      if (!/\bpublic\b/.test(String(r.headers['cache-control']))) problems.push(`${key} as ${who}: Cache-Control ${r.headers['cache-control']}`);
    }
    checks += 2;
    const leaked = secrets.filter((s) => first.raw.includes(s));
    if (leaked.length) problems.push(`${key}: cached answer holds ${leaked.join(', ')}`);
    const personalKeys = [...keysIn(first.body)].filter((k) => PERSONAL_KEYS.includes(k));
    if (personalKeys.length) problems.push(`${key}: cached answer has the fields ${personalKeys.join(', ')}`);
  }
  reportRow({ suite: 'cache safety', scenario: 'cached answers identical for staff / customer / guest (token + cookie), no user data', requests, serverErrors: 0, checks, checksPassed: checks - problems.length });
  assert.deepEqual(problems, []);
});

test('with the cache off, every cached route\'s handler answers staff and guests alike (nothing to leak into a shared entry)', async () => {
  const uncached = await testApp(database, { CACHE_ENABLED: 'false' });
  const call = makeCall(uncached, () => ctx.callers);
  const problems: string[] = [];
  let requests = 0;
  // An inactive product and category too: a staff preview of either must not exist on a cached route.
  const hidden = await f.product(database.db, { category_id: ctx.fx.category.id, is_active: false });
  const hiddenCategory = await f.category(database.db, { is_active: false });
  const urls = [...cachedRoutes().values(), `/api/products/${hidden.id}/`, `/api/products/categories/${hiddenCategory.id}/`, `/api/products/${hidden.id}/reviews/`];
  try {
    for (const url of urls) {
      const staff = await call('staff', 'GET', url, { headers: withCookie('staff') });
      const guest = await call('anonymous', 'GET', url);
      requests += 2;
      if (staff.status !== guest.status || staff.raw !== guest.raw) problems.push(`${url}: staff got ${staff.status} ${staff.raw.slice(0, 120)}, guest got ${guest.status} ${guest.raw.slice(0, 120)}`);
      if (staff.headers['x-cache'] !== undefined) problems.push(`${url}: X-Cache with the cache off`);
    }
  } finally {
    await uncached.close();
  }
  reportRow({ suite: 'cache safety', scenario: 'cache off: cached routes answer staff and guest alike (incl. inactive product/category)', requests, serverErrors: 0, checks: urls.length, checksPassed: urls.length - new Set(problems.map((p) => p.split(':')[0])).size });
  assert.deepEqual(problems, []);
});

test('a hot entry never answers a refused request: bad or expired token 401 (also with If-None-Match and HEAD)', async () => {
  const secret = new TextEncoder().encode(app.config.secretKey);
  const now = Math.floor(Date.now() / 1000);
  const expired = await new SignJWT({ token_type: 'access', exp: now - 10, iat: now - 3610, jti: 'e'.repeat(32), user_id: ctx.callers.a.user!.id }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secret);
  const problems: string[] = [];
  let requests = 0;
  let checks = 0;
  for (const [key, url] of cachedRoutes()) {
    const hot = await ctx.call('anonymous', 'GET', url);
    const again = await ctx.call('anonymous', 'GET', url);
    requests += 2;
    if (again.headers['x-cache'] !== 'HIT') problems.push(`${key}: not hot (${again.headers['x-cache']})`);
    for (const [what, headers] of [
      ['garbage token', { authorization: 'Bearer garbage' }],
      ['expired token', { authorization: `Bearer ${expired}` }],
      ['expired token + If-None-Match', { authorization: `Bearer ${expired}`, 'if-none-match': String(hot.headers.etag) }],
    ] as const) {
      for (const method of ['GET', 'HEAD']) {
        const r = await ctx.call('anonymous', method, url, { headers });
        requests++;
        checks++;
        if (r.status !== 401) problems.push(`${method} ${key} with ${what}: ${r.status} (X-Cache ${r.headers['x-cache']})`);
        else if (method === 'GET' && (r.body?.status_code !== 401 || r.headers['www-authenticate'] !== 'Bearer realm="api"')) problems.push(`${key} with ${what}: not the contract's 401`);
      }
    }
  }
  reportRow({ suite: 'cache safety', scenario: 'hot cached entries × bad/expired tokens (GET, HEAD, If-None-Match): 401, never the cached 200/304', requests, serverErrors: 0, checks, checksPassed: checks - problems.length });
  assert.deepEqual(problems, []);
});

test('a hot entry never answers a blocked address: 403 ip_blocked, while other addresses keep getting it', async () => {
  // Limits on, for this app only; loopback is not on the allow-list by default.
  const limited = await testApp(database, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_ANON: '100000/hour', RATE_LIMIT_BURST: '100000/minute', RATE_LIMIT_SUSTAINED: '1000000/day' });
  const problems: string[] = [];
  let requests = 0;
  let checks = 0;
  const blocked = '203.0.113.77';
  try {
    await limited.limits!.blocks.block(blocked, 'chaos test', 120);
    for (const [key, url] of cachedRoutes()) {
      const warm = await limited.inject({ method: 'GET', url, headers: { host: 'shop.test' }, remoteAddress: '198.51.100.5' });
      const hot = await limited.inject({ method: 'GET', url, headers: { host: 'shop.test' }, remoteAddress: '198.51.100.5' });
      requests += 2;
      if (warm.statusCode !== 200 || hot.headers['x-cache'] !== 'HIT') problems.push(`${key}: not served hot to an unblocked address (${hot.statusCode}, ${hot.headers['x-cache']})`);
      for (const headers of [{}, { 'if-none-match': String(hot.headers.etag) }, ctx.callers.staff.headers]) {
        const r = await limited.inject({ method: 'GET', url, headers: { host: 'shop.test', ...headers }, remoteAddress: blocked });
        requests++;
        checks++;
        if (r.statusCode !== 403 || r.json().code !== 'ip_blocked') problems.push(`${key} from a blocked address (${Object.keys(headers).join(',') || 'plain'}): ${r.statusCode} (X-Cache ${r.headers['x-cache']})`);
      }
    }
  } finally {
    await limited.close();
  }
  reportRow({ suite: 'cache safety', scenario: 'hot cached entries × blocked address (plain, If-None-Match, staff token): 403', requests, serverErrors: 0, checks, checksPassed: checks - problems.length });
  assert.deepEqual(problems, []);
});

test('every personal route answers private to caches, varies by Authorization and Cookie, and is never cached', async () => {
  const problems: string[] = [];
  let requests = 0;
  let checks = 0;
  for (const [key, rule] of Object.entries(ACCESS)) {
    if (!isPersonal(rule.access)) continue;
    const [method, path] = key.split(' ') as [string, string];
    // As A (who gets in everywhere A's things are), with a cookie too.
    const req = (await rule.req?.(ctx, ctx.callers.a)) ?? {};
    const r = await ctx.call('a', method, req.url ?? path, { ...req, headers: { ...withCookie('a'), ...(req.headers ?? {}) } });
    requests++;
    checks += 3;
    const cc = String(r.headers['cache-control'] ?? '');
    const vary = String(r.headers.vary ?? '').toLowerCase();
    if (!/\b(private|no-store)\b/.test(cc)) problems.push(`${key} (${r.status}): Cache-Control "${cc}"`);
    if (!vary.includes('authorization') || !vary.includes('cookie')) problems.push(`${key} (${r.status}): Vary "${r.headers.vary ?? ''}"`);
    if (r.headers['x-cache'] !== undefined) problems.push(`${key}: X-Cache ${r.headers['x-cache']}`);
  }
  reportRow({ suite: 'cache safety', scenario: 'personal routes: Cache-Control private/no-store, Vary Authorization+Cookie, no X-Cache', requests, serverErrors: 0, checks, checksPassed: checks - problems.length });
  assert.deepEqual(problems, []);
});
