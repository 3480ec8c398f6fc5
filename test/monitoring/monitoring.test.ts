// Monitoring: the middleware's headers and slow-request log, the staff endpoints' fields and
// access rules (at the seed's paths and the original's), readiness and detailed health, and the
// Prometheus scrape with its access rules.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/database.ts';
import { forEachBackend, TEST_SECRET } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import * as f from '../helpers/factories.ts';
import { responseTime } from '../../src/infra/monitoring/plugin.ts';

const ENDPOINTS = ['system/', 'cache/', 'database/', 'requests/'];

/** Lets onResponse hooks (which run as the response ends) finish. */
const settle = () => new Promise((r) => setTimeout(r, 20));

/** Log lines the app writes, parsed. */
function logSink() {
  const lines: Record<string, any>[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(JSON.parse(line)) } };
}

forEachBackend('monitoring', ({ db }) => {
  let app: FastifyInstance;
  let staff: TestUser;
  let customer: TestUser;
  let productId: number;
  const logs = logSink();

  before(async () => {
    productId = (await f.product(db().db, { name: 'Monitored Dragon' })).id;
    app = await testApp(db(), { LOG_LEVEL: 'info', SLOW_REQUEST_MS: '0', SLOW_QUERY_MS: '0', METRICS_TOKEN: 'scrape-token-0123456789' }, { logStream: logs.stream });
    staff = await signedIn(app, db(), { staff: true });
    customer = await signedIn(app, db());
  });
  after(() => app.close());

  test('every response carries X-Request-ID (a well-formed one from the caller is kept) and X-Response-Time', async () => {
    const given = await app.inject({ url: '/api/products/', headers: { 'x-request-id': 'trace-abc.123' } });
    assert.equal(given.headers['x-request-id'], 'trace-abc.123');
    assert.match(String(given.headers['x-response-time']), /^\d+\.\dms$/);
    const bad = await app.inject({ url: '/api/nowhere/', headers: { 'x-request-id': 'no spaces or <tags>' } });
    assert.equal(bad.statusCode, 404);
    assert.match(String(bad.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.match(String(bad.headers['x-response-time']), /ms$/);
    // A URL Fastify cannot even route (bad percent-encoding) runs no hook: the headers are still there.
    const broken = await app.inject({ url: '/api/%E0%A4%A/' });
    assert.equal(broken.statusCode, 404);
    assert.equal(broken.json().code, 'not_found');
    assert.ok(broken.headers['x-request-id'] && broken.headers['x-response-time'] && broken.headers['x-content-type-options']);
  });

  test('a request over SLOW_REQUEST_MS is a warning with route, status, duration, SQL statements and cache hits and misses; every line carries the request id', async () => {
    const res = await app.inject({ url: `/api/products/${productId}/`, headers: { 'x-request-id': 'slow-one' } });
    assert.equal(res.statusCode, 200);
    await settle();
    const slow = logs.lines.find((l) => l.msg === 'slow request' && l.request_id === 'slow-one')!;
    assert.ok(slow, 'logged');
    assert.equal(slow.level, 40);
    assert.equal(slow.route, 'GET /api/products/:id/');
    assert.equal(slow.status, 200);
    assert.equal(typeof slow.duration_ms, 'number');
    assert.ok(slow.sql_statements >= 1, 'a first read runs SQL');
    assert.ok(slow.cache_misses >= 1);
    const again = await app.inject({ url: `/api/products/${productId}/`, headers: { 'x-request-id': 'slow-two' } });
    assert.equal(again.headers['x-cache'], 'HIT');
    await settle();
    const hit = logs.lines.find((l) => l.msg === 'slow request' && l.request_id === 'slow-two')!;
    assert.equal(hit.sql_statements, 0);
    assert.ok(hit.cache_hits >= 1);
    // A POST's body is read in a stream callback: its statements still count.
    await app.inject({ method: 'POST', url: '/api/cart/add/', payload: { product_id: productId, quantity: 1 }, headers: { 'x-request-id': 'slow-post' } });
    await settle();
    assert.ok(logs.lines.find((l) => l.msg === 'slow request' && l.request_id === 'slow-post')!.sql_statements >= 2);
  });

  test("a signed-in request's statement count includes loading its user", async () => {
    // The request patterns run no SQL: the user row behind the token is the one statement.
    await app.inject({ url: '/api/utils/monitoring/requests/', headers: { ...staff.headers, 'x-request-id': 'slow-staff' } });
    await settle();
    assert.equal(logs.lines.find((l) => l.msg === 'slow request' && l.request_id === 'slow-staff')!.sql_statements, 1);
  });

  test('the staff endpoints answer staff only: 401 anonymous, 403 customers, at the seed\'s paths and the original\'s', async () => {
    for (const path of ENDPOINTS) {
      for (const base of ['/api/utils/monitoring/', '/monitoring/']) {
        assert.equal((await getJson(app, base + path)).status, 401, base + path);
        assert.equal((await getJson(app, base + path, { headers: customer.headers })).status, 403, base + path);
        const ok = await getJson(app, base + path, { headers: staff.headers });
        assert.equal(ok.status, 200, `${base}${path}: ${JSON.stringify(ok.body).slice(0, 200)}`);
        assert.match(String(ok.headers['cache-control']), /private/);
      }
    }
    assert.equal((await getJson(app, '/api/utils/monitoring/cache/clear/', { method: 'POST', payload: {} })).status, 401);
    assert.equal((await getJson(app, '/api/utils/monitoring/cache/clear/', { method: 'POST', payload: {}, headers: customer.headers })).status, 403);
  });

  test('system: each part with its status, process and host figures', async () => {
    const { body } = await getJson(app, '/api/utils/monitoring/system/', { headers: staff.headers });
    assert.ok(['healthy', 'degraded'].includes(body.status));
    assert.equal(body.checks.database.status, 'healthy');
    assert.equal(typeof body.checks.database.response_ms, 'number');
    for (const part of ['cache_default', 'cache_api', 'queues', 'disk', 'event_loop']) assert.ok(body.checks[part]?.status, part);
    assert.ok(Array.isArray(body.checks.queues.queues) && body.checks.queues.queues.some((q: any) => q.queue === 'orders'));
    assert.ok(body.checks.disk.total_bytes > 0 && body.checks.disk.free_percent >= 0);
    assert.ok(body.process.memory.rss_bytes > 0);
    assert.equal(typeof body.process.cpu_percent, 'number');
    assert.equal(typeof body.process.event_loop_delay_ms.p99, 'number');
    assert.ok(body.host.cpus >= 1 && body.host.memory_total_bytes > 0);
  });

  test('cache: per-store hits, misses, hit rate, keys, memory, evictions; clearing a store is logged with the staff user', async () => {
    await app.inject('/api/products/');
    await app.inject('/api/products/');
    const { body } = await getJson(app, '/api/utils/monitoring/cache/', { headers: staff.headers });
    for (const store of ['default', 'api']) {
      const s = body.stores[store];
      for (const field of ['backend', 'available', 'hits', 'misses', 'hit_rate', 'keys', 'memory_bytes', 'evictions']) assert.ok(field in s, `${store}.${field}`);
    }
    assert.ok(body.stores.api.hits >= 1 && body.stores.api.keys >= 1);
    assert.ok(body.stores.api.hit_rate > 0 && body.stores.api.hit_rate <= 1);

    const cleared = await getJson(app, '/api/utils/monitoring/cache/clear/', { method: 'POST', payload: { store: 'api' }, headers: staff.headers });
    assert.equal(cleared.status, 200);
    assert.deepEqual(cleared.body, { cleared: ['api'], pattern: null });
    assert.equal((await app.inject('/api/products/')).headers['x-cache'], 'MISS', 'the store was emptied');
    const line = logs.lines.find((l) => l.msg === 'cache cleared by staff')!;
    assert.equal(line.staff_user, staff.id);
    assert.ok(line.request_id, 'a line logged while serving a request carries its id');
    assert.deepEqual(line.stores, ['api']);
    const bad = await getJson(app, '/api/utils/monitoring/cache/clear/', { method: 'POST', payload: { store: 'session' }, headers: staff.headers });
    assert.equal(bad.status, 400, 'the session store holds revoked tokens: not offered');
  });

  test('database: pools, statement counts and times, slow statements (normalised), table sizes, pg_stat_statements status', async () => {
    await app.inject(`/api/products/?search=dragon&page_size=7`);
    const { body } = await getJson(app, '/api/utils/monitoring/database/', { headers: staff.headers });
    assert.equal(body.kind, db().kind);
    assert.ok(Array.isArray(body.pools));
    if (db().kind === 'postgres') assert.equal(body.pools[0].target, 'primary');
    assert.ok(body.statements.count > 0 && body.statements.total_ms > 0);
    assert.ok(body.statements.by_target.primary.statements > 0);
    assert.equal(body.slow_query_ms, 0);
    assert.ok(body.slow_statements.length > 0);
    const s = body.slow_statements[0];
    for (const field of ['statement', 'count', 'total_ms', 'max_ms', 'mean_ms', 'last_seen']) assert.ok(field in s, field);
    assert.ok(body.slow_statements.every((x: any) => !/'[^']*dragon/i.test(x.statement)), 'values are not in the normalised text');
    assert.ok(body.tables.some((t: any) => t.name === 'products' && t.total_bytes > 0));
    assert.equal(typeof body.pg_stat_statements.available, 'boolean');
  });

  test('two apps on one database each keep their own statement timing: counts, slow statements, the SQL histogram', async () => {
    // Built after `app`, with another SLOW_QUERY_MS: each app keeps its own setting and records.
    const other = await testApp(db(), { SLOW_QUERY_MS: '60000' });
    try {
      const seen = async (a: FastifyInstance) =>
        (await a.metrics.statements.get()).values.find((v) => v.metricName === 'pasargad_sql_statement_duration_seconds_count' && v.labels.target === 'primary')?.value ?? 0;
      const counts = async () => ({ mine: app.database.statements.statements, mineSeen: await seen(app), theirs: other.database.statements.statements, theirsSeen: await seen(other) });
      const before = await counts();
      assert.equal((await app.inject('/api/products/?search=first-app')).statusCode, 200);
      const between = await counts();
      const mine = between.mine - before.mine;
      assert.ok(mine >= 1, 'the first app timed its statements');
      assert.equal(between.mineSeen - before.mineSeen, mine, 'and observed them in its own histogram');
      assert.deepEqual([between.theirs, between.theirsSeen], [before.theirs, before.theirsSeen], 'the second app recorded none of them');
      assert.equal((await other.inject('/api/products/?search=second-app')).statusCode, 200);
      const last = await counts();
      assert.ok(last.theirs > between.theirs && last.theirsSeen - between.theirsSeen === last.theirs - between.theirs, 'the second app timed and observed its own');
      assert.deepEqual([last.mine, last.mineSeen], [between.mine, between.mineSeen], 'the first app recorded none of them');
      assert.deepEqual([app.database.statements.slowMs, other.database.statements.slowMs], [0, 60_000]);
      assert.ok(app.database.statements.slowest().length > 0, 'SLOW_QUERY_MS=0 keeps every statement');
      assert.equal(other.database.statements.slowest().length, 0, 'SLOW_QUERY_MS=60000 keeps none');
    } finally {
      await other.close();
    }
  });

  test('requests: per route and status, percentiles, slow routes and top IPs over 1, 5 and 60 minutes, and a series', async () => {
    for (let i = 0; i < 5; i++) await app.inject({ url: '/api/products/', remoteAddress: '10.9.8.7' });
    const { body } = await getJson(app, '/api/utils/monitoring/requests/', { headers: staff.headers });
    for (const w of ['1m', '5m', '60m']) {
      const win = body.windows[w];
      assert.ok(win.requests >= 5, w);
      assert.ok(win.latency_ms.p99 >= win.latency_ms.p50);
    }
    const list = body.windows['1m'].routes.find((r: any) => r.route === 'GET /api/products/');
    assert.ok(list.requests >= 5 && list.statuses['200'] >= 5);
    assert.ok(body.windows['1m'].routes.some((r: any) => r.route === 'unmatched' && r.statuses['404'] >= 1), 'unknown paths under one label');
    assert.ok(body.windows['1m'].top_ips.some((x: any) => x.ip === '10.9.8.7' && x.requests >= 5));
    assert.ok(body.windows['1m'].slow_routes.length > 0);
    assert.equal(body.series.length, 60);
    assert.ok(body.series.some((p: any) => p.requests > 0));
  });

  test('health: /health/ready/ when the database answers and migrations are applied; /health/detailed/ in the contract shape', async () => {
    const ready = await getJson(app, '/health/ready/');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready', database: 'healthy', pending_migrations: [] });
    const detailed = await getJson(app, '/health/detailed/');
    assert.equal(detailed.status, 200);
    assert.deepEqual(Object.keys(detailed.body).sort(), ['checks', 'service', 'status', 'version']);
    assert.deepEqual(Object.keys(detailed.body.checks).sort(), ['cache', 'database', 'disk_space', 'email', 'memory', 'stripe']);
    assert.equal(detailed.body.checks.database.status, 'healthy');
  });

  test('/metrics: Prometheus text to allowed addresses or the token; refused otherwise', async () => {
    await app.inject('/api/products/');
    const res = await app.inject('/metrics');
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/plain/);
    const text = res.body;
    assert.match(text, /pasargad_http_request_duration_seconds_bucket\{[^}]*route="\/api\/products\/"[^}]*status="200"/);
    assert.match(text, /pasargad_cache_hits_total\{store="api"\} [1-9]/);
    assert.match(text, /pasargad_cache_misses_total\{store="default"\}/);
    assert.match(text, /pasargad_sql_statement_duration_seconds_count\{target="primary"\} [1-9]/);
    assert.match(text, /pasargad_queue_jobs\{queue="orders",state="waiting"\}/);
    assert.match(text, /pasargad_rate_limit_rejections_total/);
    assert.match(text, /pasargad_process_cpu_seconds_total/);
    const proxied = await app.inject({ url: '/metrics', headers: { 'x-forwarded-for': '203.0.113.5' } });
    assert.equal(proxied.statusCode, 403, 'forwarded by an untrusted proxy on this host: not loopback');
    // Every way a proxy names the client it forwards for, not only X-Forwarded-For (issue 20).
    for (const headers of [{ 'x-real-ip': '203.0.113.5' }, { forwarded: 'for=203.0.113.5;proto=https' }, { forwarded: 'for="[2001:db8::1]"' }]) {
      assert.equal((await app.inject({ url: '/metrics', headers })).statusCode, 403, `forwarded (${JSON.stringify(headers)}) by an untrusted proxy on this host`);
    }
    // With a trusted proxy configured, another peer on this host still does not vouch for a client.
    const behindProxy = await testApp(db(), { TRUSTED_PROXIES: '10.0.0.0/8', METRICS_ALLOW: '127.0.0.1/32,192.0.2.7/32' });
    try {
      assert.equal((await behindProxy.inject({ url: '/metrics', headers: { 'x-forwarded-for': '203.0.113.5' } })).statusCode, 403, 'forwarded by an untrusted peer');
      assert.equal((await behindProxy.inject({ url: '/metrics', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '192.0.2.7' } })).statusCode, 200, 'an allowed client through the trusted proxy');
      assert.equal((await behindProxy.inject({ url: '/metrics', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '203.0.113.5' } })).statusCode, 403, 'another client through the trusted proxy');
      // A trusted proxy that names its client only in X-Real-IP or Forwarded: the client is not known, so not let in by address.
      for (const headers of [{ 'x-real-ip': '192.0.2.7' }, { forwarded: 'for=192.0.2.7' }]) {
        assert.equal((await behindProxy.inject({ url: '/metrics', remoteAddress: '192.0.2.7', headers })).statusCode, 403, `an allowed peer forwarding for someone (${JSON.stringify(headers)})`);
      }
    } finally {
      await behindProxy.close();
    }
    const outside = await app.inject({ url: '/metrics', remoteAddress: '203.0.113.5' });
    assert.equal(outside.statusCode, 403);
    assert.equal(outside.json().code, 'permission_denied');
    const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
    assert.equal((await app.inject({ url: '/metrics', remoteAddress: '203.0.113.5', headers: basic('metrics', 'scrape-token-0123456789') })).statusCode, 200);
    assert.equal((await app.inject({ url: '/metrics', remoteAddress: '203.0.113.5', headers: basic('metrics', 'scrape-token-wrong-00000') })).statusCode, 403);
  });
});

test('X-Response-Time is milliseconds with one decimal, rounded', () => {
  assert.equal(responseTime(0), '0.0ms');
  assert.equal(responseTime(0.04), '0.0ms');
  assert.equal(responseTime(1.25), '1.3ms');
  assert.equal(responseTime(12.96), '13.0ms');
  assert.equal(responseTime(3456.78), '3456.8ms');
});

describe('monitoring with the database out of reach', () => {
  let app: FastifyInstance;
  let staff: { headers: { authorization: string } };
  before(async () => {
    const database = await openDatabase(loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:9/test', SECRET_KEY: TEST_SECRET, DATABASE_CONNECT_TIMEOUT: '1s' }));
    app = await testApp(database);
    const pair = await app.tokens.issue({ id: 1, email: 'staff@shop.test', is_staff: true } as never);
    staff = { headers: { authorization: `Bearer ${pair.access}` } };
  });
  after(async () => {
    await app.close();
    await app.database.close();
  });

  test('/health/ready/ and the staff endpoints say so with 503, without hanging; liveness stays up', async () => {
    const ready = await getJson(app, '/health/ready/');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.status, 'not_ready');
    assert.equal(ready.body.database, 'unhealthy');
    assert.ok(!JSON.stringify(ready.body).includes('127.0.0.1'), 'no driver message in a public answer');
    // Staff cannot even be checked without the database: the contract's 503, not a hang.
    const system = await getJson(app, '/api/utils/monitoring/system/', { headers: staff.headers });
    assert.equal(system.status, 503);
    assert.equal(system.body.code, 'service_unavailable');
    assert.equal((await getJson(app, '/health/')).status, 200, 'liveness stays up');
  });

  test('checkout routes, whose own 503 is the provider\'s {"error": …}, answer the wrapped 503 whole', async () => {
    const checkout = await getJson(app, '/api/payments/create-checkout-session/', { method: 'POST', payload: { email: 'a@example.com' } });
    const verify = await getJson(app, '/api/payments/verify-checkout-session/?session_id=cs_test_1');
    for (const r of [checkout, verify]) {
      assert.equal(r.status, 503);
      assert.equal(r.body.code, 'service_unavailable', JSON.stringify(r.body));
      assert.equal(r.body.error, true);
    }
  });
});
