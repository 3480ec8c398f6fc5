// CORS on every answer (issue 20). The storefront calls from another origin with credentials: an
// answer without Access-Control-Allow-Origin is, to the browser, a network error, whatever its
// status. So every class of answer is checked with a real Origin header — the hooks that refuse
// (expired token, IP block, rate limits), the handlers that fail, Fastify's own errors, the
// trailing-slash redirect, a cache hit — and once over real HTTP. Origins not allowed, and requests
// without an Origin, get no Access-Control-* header on any of them.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { SignJWT } from 'jose';
import { openTestDatabase } from '../helpers/db.ts';
import { testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { within } from '../helpers/net.ts';
import type { Database } from '../../src/db/database.ts';

/** Bounded: a server that accepts and never answers fails the test, not hangs it. */
const fetch = (input: string, init: RequestInit = {}) => globalThis.fetch(input, { signal: AbortSignal.timeout(10_000), ...init });

const STOREFRONT = 'http://localhost:3000';
const EVIL = 'https://evil.test';

let database: Database & { drop(): Promise<void> };
let app: FastifyInstance;
let limited: FastifyInstance;
let customer: TestUser;
let expired = '';

before(async () => {
  database = await openTestDatabase('pglite');
  app = await testApp(database);
  // A route that fails the way a bug does (added before the app is ready).
  app.get('/api/test-boom/', async () => {
    throw new Error('boom');
  });
  // Limits on, tight, so a 429 and then a block come quickly.
  limited = await testApp(database, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_BURST: '2/minute', RATE_LIMIT_BLOCK_AFTER: '2' });
  customer = await signedIn(app, database);
  const now = Math.floor(Date.now() / 1000);
  expired = await new SignJWT({ token_type: 'access', exp: now - 10, iat: now - 3610, jti: 'c'.repeat(32), user_id: customer.id })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(app.config.secretKey));
});
after(async () => {
  await Promise.all([app.close(), limited.close()]);
  await database.drop();
});

type Case = { name: string; status: number; call: (origin: string | undefined) => Promise<{ statusCode: number; headers: Record<string, unknown> }> };

const inject = (target: () => FastifyInstance, o: InjectOptions) => (origin: string | undefined) =>
  target().inject({ ...o, headers: { host: 'shop.test', ...(o.headers as object), ...(origin ? { origin } : {}) } });

const CASES: Case[] = [
  { name: '200', status: 200, call: inject(() => app, { url: '/api/' }) },
  { name: '401 expired token on a public route', status: 401, call: inject(() => app, { url: '/api/products/', headers: { authorization: `Bearer ${expired}` } }) },
  { name: '401 expired token on the cart', status: 401, call: inject(() => app, { url: '/api/cart/', headers: { authorization: `Bearer ${expired}` } }) },
  { name: '401 no credentials', status: 401, call: inject(() => app, { url: '/api/users/profile/' }) },
  { name: '403 customer on a staff route', status: 403, call: (o) => inject(() => app, { url: '/api/orders/statistics/', headers: customer.headers })(o) },
  { name: '404 unknown path', status: 404, call: inject(() => app, { url: '/api/nothing/' }) },
  { name: '404 unknown product', status: 404, call: inject(() => app, { url: '/api/products/987654/' }) },
  { name: '405', status: 405, call: inject(() => app, { method: 'DELETE', url: '/api/products/categories/' }) },
  { name: '413', status: 413, call: inject(() => app, { method: 'POST', url: '/api/cart/add/', headers: { 'content-type': 'application/json' }, payload: `{"x":"${'a'.repeat(1_100_000)}"}` }) },
  { name: '415', status: 415, call: inject(() => app, { method: 'POST', url: '/api/cart/add/', headers: { 'content-type': 'application/x-weird' }, payload: 'x' }) },
  { name: '400 bad JSON', status: 400, call: inject(() => app, { method: 'POST', url: '/api/cart/add/', headers: { 'content-type': 'application/json' }, payload: '{"a":' }) },
  { name: '404 bad URL (frameworkErrors)', status: 404, call: inject(() => app, { url: '/api/%E0%A4%A/' }) },
  { name: '500', status: 500, call: inject(() => app, { url: '/api/test-boom/' }) },
  { name: '301 trailing slash', status: 301, call: inject(() => app, { url: '/api/products?page=2' }) },
];

function problemsFor(c: Case, origin: string | undefined, r: { statusCode: number; headers: Record<string, unknown> }): string[] {
  const out: string[] = [];
  const label = `${c.name} from ${origin ?? 'no origin'}`;
  if (r.statusCode !== c.status) out.push(`${label}: status ${r.statusCode}, expected ${c.status}`);
  const acao = r.headers['access-control-allow-origin'];
  const acac = r.headers['access-control-allow-credentials'];
  if (!/\bOrigin\b/.test(String(r.headers.vary ?? ''))) out.push(`${label}: Vary "${r.headers.vary}" lacks Origin`);
  if (!r.headers['x-request-id']) out.push(`${label}: no X-Request-ID`);
  if (r.headers['x-frame-options'] !== 'DENY' || r.headers['x-content-type-options'] !== 'nosniff') out.push(`${label}: no security headers`);
  if (!r.headers['x-response-time']) out.push(`${label}: no X-Response-Time`);
  if (origin === STOREFRONT) {
    if (acao !== STOREFRONT) out.push(`${label}: Access-Control-Allow-Origin ${acao}`);
    if (acac !== 'true') out.push(`${label}: Access-Control-Allow-Credentials ${acac}`);
  } else {
    for (const [name, value] of Object.entries(r.headers)) if (name.startsWith('access-control-')) out.push(`${label}: ${name}: ${value}`);
  }
  return out;
}

test('every class of answer to the storefront carries the CORS headers, Vary: Origin, the request id and the security headers', async () => {
  const problems: string[] = [];
  for (const c of CASES) for (const origin of [STOREFRONT, EVIL, undefined]) problems.push(...problemsFor(c, origin, await c.call(origin)));
  assert.deepEqual(problems, []);
});

test('a cache hit, and a 304 from it, carry the CORS headers', async () => {
  const url = '/api/products/categories/';
  const miss = await app.inject({ url, headers: { host: 'shop.test', origin: STOREFRONT } });
  const hit = await app.inject({ url, headers: { host: 'shop.test', origin: STOREFRONT } });
  assert.equal(hit.headers['x-cache'], 'HIT');
  const notModified = await app.inject({ url, headers: { host: 'shop.test', origin: STOREFRONT, 'if-none-match': String(miss.headers.etag) } });
  assert.equal(notModified.statusCode, 304);
  const problems: string[] = [];
  const c = { name: 'cache', status: 200 } as Case;
  problems.push(...problemsFor(c, STOREFRONT, miss), ...problemsFor(c, STOREFRONT, hit), ...problemsFor({ ...c, status: 304 }, STOREFRONT, notModified));
  assert.match(String(hit.headers.vary), /Accept-Encoding/);
  const evil = await app.inject({ url, headers: { host: 'shop.test', origin: EVIL } });
  assert.equal(evil.headers['x-cache'], 'HIT');
  problems.push(...problemsFor(c, EVIL, evil));
  assert.deepEqual(problems, []);
});

test('429 from the rate limits and 403 from the IP block carry the CORS headers', async () => {
  const from = '198.51.100.20';
  const call = (origin: string | undefined) => limited.inject({ url: '/api/', remoteAddress: from, headers: { host: 'shop.test', ...(origin ? { origin } : {}) } });
  const problems: string[] = [];
  const seen: number[] = [];
  for (let i = 0; i < 8; i++) {
    const r = await call(STOREFRONT);
    seen.push(r.statusCode);
    problems.push(...problemsFor({ name: `limited #${i}`, status: r.statusCode, call }, STOREFRONT, r));
  }
  assert.ok(seen.includes(429), `a 429 among ${seen}`);
  assert.equal(seen.at(-1), 403, `blocked at the end: ${seen}`);
  const blocked = await call(STOREFRONT);
  assert.equal(blocked.json().code, 'ip_blocked');
  problems.push(...problemsFor({ name: 'blocked', status: 403, call }, STOREFRONT, blocked));
  problems.push(...problemsFor({ name: 'blocked', status: 403, call }, EVIL, await call(EVIL)));
  problems.push(...problemsFor({ name: 'blocked', status: 403, call }, undefined, await call(undefined)));
  // A preflight from a blocked address is still answered: the browser then shows the 403 itself.
  const pre = await limited.inject({ method: 'OPTIONS', url: '/api/cart/', remoteAddress: from, headers: { origin: STOREFRONT, 'access-control-request-method': 'GET' } });
  assert.equal(pre.statusCode, 200);
  assert.equal(pre.headers['access-control-allow-origin'], STOREFRONT);
  assert.deepEqual(problems, []);
});

test('preflight: 200 with the contract’s methods, headers and max-age; nothing granted to other origins', async () => {
  const pre = await app.inject({ method: 'OPTIONS', url: '/api/cart/add/', headers: { origin: STOREFRONT, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
  assert.equal(pre.statusCode, 200, 'the contract observed 200');
  assert.equal(pre.body, '');
  assert.equal(pre.headers['access-control-allow-origin'], STOREFRONT);
  assert.equal(pre.headers['access-control-allow-credentials'], 'true');
  assert.equal(pre.headers['access-control-allow-methods'], 'DELETE, GET, OPTIONS, PATCH, POST, PUT');
  assert.equal(pre.headers['access-control-max-age'], '86400');
  for (const h of ['accept', 'accept-encoding', 'authorization', 'content-type', 'dnt', 'origin', 'user-agent', 'x-csrftoken', 'x-requested-with']) {
    assert.ok(String(pre.headers['access-control-allow-headers']).split(', ').includes(h), h);
  }
  assert.match(String(pre.headers.vary), /\bOrigin\b/);
  const other = await app.inject({ method: 'OPTIONS', url: '/api/cart/add/', headers: { origin: EVIL, 'access-control-request-method': 'POST' } });
  assert.equal(Object.keys(other.headers).filter((h) => h.startsWith('access-control-')).length, 0, JSON.stringify(other.headers));
  const noOrigin = await app.inject({ method: 'OPTIONS', url: '/api/cart/add/' });
  assert.equal(noOrigin.statusCode, 400, 'not a preflight');
});

test('static files and media keep their own CORS (any origin, no credentials)', async () => {
  const script = await app.inject({ url: app.staticUrl('docs/init.js'), headers: { origin: STOREFRONT } });
  assert.equal(script.statusCode, 200);
  assert.equal(script.headers['access-control-allow-origin'], '*');
  assert.equal(script.headers['access-control-allow-credentials'], undefined);
  assert.doesNotMatch(String(script.headers.vary ?? ''), /Origin/);
});

test('over real HTTP: an expired token’s 401 reaches the storefront with CORS, so it can refresh', async () => {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  const r = await fetch(`${base}/api/cart/`, { headers: { origin: STOREFRONT, authorization: `Bearer ${expired}` } });
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('access-control-allow-origin'), STOREFRONT);
  assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
  assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="api"');
  assert.equal((await r.json()).code, 'token_not_valid');
  const pre = await fetch(`${base}/api/users/auth/refresh/`, { method: 'OPTIONS', headers: { origin: STOREFRONT, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
  assert.equal(pre.status, 200);
  assert.equal(pre.headers.get('access-control-allow-origin'), STOREFRONT);
  const refreshed = await fetch(`${base}/api/users/auth/refresh/`, { method: 'POST', headers: { origin: STOREFRONT, 'content-type': 'application/json' }, body: JSON.stringify({ refresh: customer.refresh }) });
  assert.equal(refreshed.status, 200);
  assert.equal(refreshed.headers.get('access-control-allow-origin'), STOREFRONT);
  // A bad URL never reaches a hook (frameworkErrors): raw socket, since fetch would normalise it.
  const raw = await new Promise<string>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(`GET /api/%E0%A4%A/ HTTP/1.1\r\nHost: shop.test\r\nOrigin: ${STOREFRONT}\r\nConnection: close\r\n\r\n`));
    let out = '';
    s.on('data', (b: Buffer) => (out += b));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(5_000, () => reject(new Error('timed out waiting for the bad-URL answer')));
  });
  assert.match(raw, /^HTTP\/1\.1 404/);
  assert.match(raw, new RegExp(`access-control-allow-origin: ${STOREFRONT}`, 'i'));
});

/** Writes raw bytes to the listening app and reads the whole answer (the server closes). */
function raw(bytes: string): Promise<string> {
  const { port } = app.server.address() as { port: number };
  return within(
    'a raw answer',
    new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.end(bytes));
      let out = '';
      s.on('data', (b: Buffer) => (out += b));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    }),
    10_000,
  );
}

test('requests Node’s parser refuses (no hook runs): the security headers, a request id, the contract’s body', async () => {
  const bad = await raw(`GET /api/ HTTP/1.1\r\nHost: shop.test\r\nOrigin: ${STOREFRONT}\r\nBad header line\r\n\r\n`);
  const huge = await raw(`GET /api/ HTTP/1.1\r\nHost: shop.test\r\nCookie: x=${'a'.repeat(20_000)}\r\n\r\n`);
  for (const [answer, status, code] of [[bad, 400, 'bad_request'], [huge, 431, 'headers_too_large']] as const) {
    assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), answer.slice(0, 200));
    assert.match(answer, /\r\nx-frame-options: DENY\r\n/i);
    assert.match(answer, /\r\nx-content-type-options: nosniff\r\n/i);
    assert.match(answer, /\r\nx-request-id: [0-9a-f-]{36}\r\n/i);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    assert.deepEqual(body, { error: true, message: body.message, status_code: status, code });
  }
});
