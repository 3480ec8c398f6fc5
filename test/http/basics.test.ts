import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { openTestDatabase } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { ERRORS } from '../../src/infra/http/errors.ts';
import type { Database } from '../../src/db/database.ts';

let database: Database & { drop(): Promise<void> };
let app: FastifyInstance;
before(async () => {
  database = await openTestDatabase('pglite');
  app = await testApp(database);
});
after(async () => {
  await app.close();
  await database.drop();
});

test('GET /api/ lists the endpoints; /health/ answers; robots.txt', async () => {
  const api = await getJson(app, '/api/');
  assert.equal(api.status, 200);
  assert.equal(api.body.message, 'Welcome to Pasargad Prints API');
  assert.equal(api.body.version, '1.0');
  assert.deepEqual(Object.keys(api.body.endpoints), ['users', 'products', 'cart', 'orders', 'payments', 'wishlist', 'recommendations', 'promotions', 'analytics', 'admin', 'health']);
  const health = await getJson(app, '/health/');
  assert.deepEqual(health.body, { status: 'healthy', service: 'Pasargad Prints API', version: '1.0.0' });
  const robots = await app.inject('/robots.txt');
  assert.match(robots.headers['content-type'] as string, /^text\/plain/);
  assert.equal(robots.body, 'User-agent: *\nDisallow: /api/\nDisallow: /admin/\nDisallow: /media/\nAllow: /\n');
});

test('unknown paths are 404 in the wrapped JSON shape', async () => {
  for (const url of ['/nope', '/api/nothing/', '/api/products/1/nothing/']) {
    const r = await getJson(app, url);
    assert.equal(r.status, 404, url);
    assert.deepEqual(r.body, { error: true, message: 'Not found.', status_code: 404, code: 'not_found' });
  }
});

test('a GET without the trailing slash is redirected 301, keeping the query', async () => {
  const r = await app.inject('/api/products?page=2');
  assert.equal(r.statusCode, 301);
  assert.equal(r.headers.location, '/api/products/?page=2');
  assert.equal((await app.inject('/health')).headers.location, '/health/');
});

test('a known path with another method is 405 with Allow; other methods without the slash are served', async () => {
  const r = await app.inject({ method: 'DELETE', url: '/api/products/categories/' });
  assert.equal(r.statusCode, 405);
  assert.deepEqual(r.json(), { error: true, message: 'Method "DELETE" not allowed.', status_code: 405, code: 'method_not_allowed' });
  assert.match(r.headers.allow as string, /GET/);
  const noSlash = await app.inject({ method: 'PUT', url: '/api/products/categories' });
  assert.equal(noSlash.statusCode, 405, 'served as if slashed, not redirected');
});

test('bad JSON is 400, an unknown content type 415, never 500', async () => {
  const bad = await app.inject({ method: 'POST', url: '/api/cart/add/', headers: { 'content-type': 'application/json' }, payload: '{"a":' });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().code, 'parse_error');
  assert.match(bad.json().message, /^JSON parse error - /);
  const odd = await app.inject({ method: 'POST', url: '/api/cart/add/', headers: { 'content-type': 'application/x-weird' }, payload: 'x' });
  assert.equal(odd.statusCode, 415);
  assert.equal(odd.json().status_code, 415);
});

test('request ids: a well-formed X-Request-ID is kept, anything else replaced', async () => {
  const kept = await app.inject({ url: '/health/', headers: { 'x-request-id': 'abc-123' } });
  assert.equal(kept.headers['x-request-id'], 'abc-123');
  const replaced = await app.inject({ url: '/health/', headers: { 'x-request-id': 'bad id <script>' } });
  assert.match(replaced.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/);
});

test('security headers on every response, errors included (helmet, for a JSON API)', async () => {
  for (const url of ['/api/', '/nope', '/api/products/?page=abc']) {
    const r = await app.inject(url);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['referrer-policy'], 'same-origin');
    assert.equal(r.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'");
    assert.match(String(r.headers['strict-transport-security']), /^max-age=31536000/);
    assert.equal(r.headers['cross-origin-resource-policy'], 'same-origin');
    assert.equal(r.headers['x-dns-prefetch-control'], undefined, 'document-only headers are left out');
    for (const name of ['cross-origin-opener-policy', 'x-xss-protection', 'x-permitted-cross-domain-policies']) assert.equal(r.headers[name], undefined, `${name} is for documents`);
  }
  // The docs page runs Swagger UI's own scripts and styles; static files may be embedded anywhere.
  const docs = await app.inject('/api/docs/');
  assert.equal(docs.statusCode, 200);
  assert.match(String(docs.headers['content-security-policy']), /default-src 'self'/);
  assert.equal(docs.headers['cross-origin-opener-policy'], 'same-origin', 'pages keep the opener policy');
  const script = await app.inject(app.staticUrl('docs/init.js'));
  assert.equal(script.statusCode, 200);
  assert.equal(script.headers['cross-origin-resource-policy'], 'cross-origin');
});

test('CORS: the storefront origin gets credentials; others get nothing', async () => {
  const pre = await app.inject({ method: 'OPTIONS', url: '/api/products/', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
  assert.ok(pre.statusCode === 200 || pre.statusCode === 204);
  assert.equal(pre.headers['access-control-allow-origin'], 'http://localhost:3000');
  assert.equal(pre.headers['access-control-allow-credentials'], 'true');
  assert.equal(pre.headers['access-control-max-age'], '86400');
  assert.match(pre.headers['access-control-allow-headers'] as string, /authorization/);
  const other = await app.inject({ url: '/api/', headers: { origin: 'https://evil.test' } });
  assert.equal(other.headers['access-control-allow-origin'], undefined);
});

test('OpenAPI document and docs UI cover every API route', async () => {
  const ui = await app.inject('/api/docs/');
  assert.equal(ui.statusCode, 200);
  assert.match(ui.body, /<html/i);
  const spec = (await getJson(app, '/api/docs/json')).body;
  assert.equal(spec.openapi, '3.1.0');
  for (const path of ['/api/', '/health/', '/api/products/', '/api/products/featured/', '/api/products/categories/', '/api/products/{id}/', '/api/products/search/', '/api/products/advanced-search/', '/api/products/{id}/reviews/']) {
    assert.ok(spec.paths[path]?.get, path);
  }
  const expected: [string, string][] = [
    ['post', '/api/users/auth/register/'], ['post', '/api/users/auth/login/'], ['post', '/api/users/auth/refresh/'], ['post', '/api/users/auth/logout/'],
    ['get', '/api/users/profile/'], ['patch', '/api/users/password/change/'], ['delete', '/api/users/addresses/{id}/'], ['post', '/api/users/newsletter/subscribe/'],
    ['post', '/api/cart/add/'], ['put', '/api/cart/items/{item_id}/'], ['post', '/api/cart/merge/'], ['post', '/api/wishlist/items/'], ['delete', '/api/wishlist/'],
    ['post', '/api/products/'], ['patch', '/api/products/{id}/'], ['delete', '/api/products/categories/{id}/'], ['get', '/api/products/low-stock/'], ['put', '/api/products/reviews/{id}/'],
  ];
  for (const [method, path] of expected) assert.ok(spec.paths[path]?.[method], `${method} ${path}`);
  // Every documented operation says what it does; every one that needs a user says so.
  for (const [path, ops] of Object.entries(spec.paths as Record<string, Record<string, { summary?: string; security?: unknown[] }>>)) {
    if (!path.startsWith('/api/') || path.startsWith('/api/docs')) continue;
    for (const [method, op] of Object.entries(ops)) assert.ok(op.summary, `${method} ${path} has a summary`);
  }
  assert.deepEqual(spec.paths['/api/users/profile/'].get.security, [{ bearerAuth: [] }]);
  assert.equal(spec.components.securitySchemes.bearerAuth.scheme, 'bearer');
});

test('error codes are unique and carry 4xx/5xx statuses', () => {
  const codes = Object.keys(ERRORS);
  assert.equal(new Set(codes).size, codes.length);
  for (const def of Object.values(ERRORS)) assert.ok(def.status >= 400 && def.status < 600);
});
