// The in-process request patterns: windows of 1, 5 and 60 minutes, percentiles, slow routes,
// top IPs and the per-second series, on a clock the test moves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestStats } from '../../src/infra/monitoring/requests.ts';

test('windows count what fell inside them; percentiles, routes, slow routes and top IPs', () => {
  let now = Date.UTC(2026, 10, 30, 10, 0, 0);
  const stats = new RequestStats(() => now);
  const [search, listPage, detail] = ['GET /api/products/search/', 'GET /api/products/', 'GET /api/products/:id/'].map((label) => stats.route(label));
  // 10 minutes ago: 100 slow searches from one IP.
  now -= 10 * 60_000;
  for (let i = 0; i < 100; i++) search!.record(200, 400, '10.0.0.9');
  now += 10 * 60_000;
  // Now: 90 fast list pages (1..90 ms), 10 detail pages that failed.
  for (let i = 1; i <= 90; i++) listPage!.record(200, i, i % 2 ? '10.0.0.1' : '10.0.0.2');
  for (let i = 0; i < 10; i++) detail!.record(500, 5, '10.0.0.1');
  // Prometheus reads the all-time histograms per status.
  assert.equal(listPage!.totals.get(200)!.total, 90);
  assert.equal(detail!.totals.get(500)!.total, 10);

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
  const index = stats.route('GET /api/');
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 20; i++) index.record(200, 2, '::1');
    now += 1000;
  }
  now -= 1000;
  const points = stats.series(10, 5);
  assert.equal(points.length, 2);
  assert.deepEqual(points.map((p) => p.requests), [20, 20]);
  assert.ok(points.every((p) => p.p50 > 1.8 && p.p50 <= 2.2 && p.errors === 0));
  assert.equal(points[1]!.t - points[0]!.t, 5000);
});

test('a finished minute keeps its 200 busiest addresses and counts the rest as "other"', () => {
  let now = Date.UTC(2026, 10, 30, 10, 0, 0);
  const stats = new RequestStats(() => now);
  const r = stats.route('GET /api/');
  for (let i = 0; i < 500; i++) r.record(200, 1, `10.1.${i >> 8}.${i & 255}`);
  for (let i = 0; i < 5; i++) r.record(200, 1, '10.9.9.9');
  assert.equal(stats.window(1, 1000).top_ips.length, 501, 'the current minute is whole');
  now += 60_000;
  r.record(200, 1, '10.9.9.9');
  const hour = stats.window(60, 1000);
  assert.equal(hour.requests, 506);
  assert.equal(hour.top_ips.find((x) => x.ip === '10.9.9.9')!.requests, 6, 'the busiest address was kept');
  // 200 kept from the finished minute (the busiest among them), the other 301 as one entry.
  assert.equal(hour.top_ips.length, 201);
  assert.equal(hour.top_ips.find((x) => x.ip === 'other')!.requests, 301);
});
