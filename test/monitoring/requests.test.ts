// The in-process request patterns: windows of 1, 5 and 60 minutes, percentiles, slow routes,
// top IPs and the per-second series, on a clock the test moves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestStats } from '../../src/infra/monitoring/requests.ts';

test('windows count what fell inside them; percentiles, routes, slow routes and top IPs', () => {
  let now = Date.UTC(2026, 10, 30, 10, 0, 0);
  const stats = new RequestStats(() => now);
  // 10 minutes ago: 100 slow searches from one IP.
  now -= 10 * 60_000;
  for (let i = 0; i < 100; i++) stats.record('GET /api/products/search/', 200, 400, '10.0.0.9');
  now += 10 * 60_000;
  // Now: 90 fast list pages (1..90 ms), 10 detail pages that failed.
  for (let i = 1; i <= 90; i++) stats.record('GET /api/products/', 200, i, i % 2 ? '10.0.0.1' : '10.0.0.2');
  for (let i = 0; i < 10; i++) stats.record('GET /api/products/:id/', 500, 5, '10.0.0.1');

  const one = stats.window(1);
  assert.equal(one.requests, 100);
  assert.equal(one.errors, 10);
  assert.deepEqual(one.routes.map((r) => r.route), ['GET /api/products/', 'GET /api/products/:id/']);
  assert.deepEqual(one.routes[1]!.statuses, { 500: 10 });
  const list = one.routes[0]!.latency_ms;
  // Histogram buckets are ≈12% wide: the percentiles are that close.
  assert.ok(Math.abs(list.p50 - 45) / 45 < 0.13, String(list.p50));
  assert.ok(Math.abs(list.p95 - 86) / 86 < 0.13, String(list.p95));
  assert.equal(list.max, 90);
  assert.equal(list.mean, 45.5);
  assert.deepEqual(one.top_ips, [{ ip: '10.0.0.1', requests: 55 }, { ip: '10.0.0.2', requests: 45 }]);
  assert.equal(one.slow_routes[0]!.route, 'GET /api/products/');

  const hour = stats.window(60);
  assert.equal(hour.requests, 200);
  assert.equal(hour.slow_routes[0]!.route, 'GET /api/products/search/');
  assert.ok(hour.slow_routes[0]!.p95_ms >= 400 && hour.slow_routes[0]!.p95_ms < 450);
  assert.equal(hour.top_ips[0]!.ip, '10.0.0.9');
  assert.equal(stats.window(5).requests, 100, 'the searches are older than 5 minutes');

  // An hour and more later, the old minutes are gone.
  now += 61 * 60_000;
  assert.equal(stats.window(60).requests, 0);
});

test('the series has one point per step, requests per second and percentiles', () => {
  let now = Date.UTC(2026, 10, 30, 10, 0, 0);
  const stats = new RequestStats(() => now);
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 20; i++) stats.record('GET /api/', 200, 2, '::1');
    now += 1000;
  }
  now -= 1000;
  const points = stats.series(10, 5);
  assert.equal(points.length, 2);
  assert.deepEqual(points.map((p) => p.requests), [20, 20]);
  assert.ok(points.every((p) => p.p50 > 1.8 && p.p50 <= 2.2 && p.errors === 0));
  assert.equal(points[1]!.t - points[0]!.t, 5000);
});
