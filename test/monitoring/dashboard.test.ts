// The staff dashboard in a real browser (Debian's chromium driven by playwright-core) against the
// app listening on a real port: after some shop traffic, staff sign in through the page's form and
// see every chart drawn with real numbers, then clear the `api` cache store with its button; a
// customer is told the page is for staff; an expired token brings the form back; the page's CSP
// lets its own files run and nothing inline.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { dashboardHeaders } from '../../src/modules/monitoring/dashboard.routes.ts';
import { testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { openTestDatabase } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

const CHROMIUM = '/usr/bin/chromium';
const BLOCKED_IP = '203.0.113.7';

type TestDatabase = Awaited<ReturnType<typeof openTestDatabase>>;

/** Signs in through the page's form. */
async function signIn(page: Page, user: TestUser): Promise<void> {
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#login input[name="email"]', user.email);
  await page.fill('#login input[name="password"]', user.password);
  await page.click('#login button[type="submit"]');
}

/** Waits until `selector`'s data attribute `name` holds a number that passes `ok`; returns it. */
async function dataNumber(page: Page, selector: string, name: string, ok: (n: number) => boolean = () => true): Promise<number> {
  const read = () => page.$eval(selector, (el, key) => (el as HTMLElement).dataset[key], name).catch(() => undefined);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = await read();
    const n = v === undefined || v === '' ? NaN : Number(v);
    if (Number.isFinite(n) && ok(n)) return n;
    if (Date.now() > deadline) assert.fail(`${selector} data-${name} is ${v === undefined ? 'missing' : JSON.stringify(v)}`);
    await page.waitForTimeout(100);
  }
}

describe('staff dashboard at /dashboard/', () => {
  let database: TestDatabase;
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let staff: TestUser;
  let customer: TestUser;

  before(async () => {
    // Not skipped when missing: CI installs it (.ci/run), and a skipped browser test hides a broken page.
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\` (.ci/run does this before the tests)`);
    database = await openTestDatabase('pglite');
    // Limits on, so the blocked-IP list is real; loopback (this test) is exempt so the traffic
    // below is not refused. SLOW_QUERY_MS=0 keeps every statement, so the slow-SQL chart has bars.
    app = await testApp(database, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_ALLOWLIST: '127.0.0.1,::1', SLOW_QUERY_MS: '0' });
    assert.ok(app.hasRoute({ method: 'GET', url: '/dashboard/' }), 'buildApp registers dashboardRoutes (src/modules/monitoring/dashboard.routes.ts)');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
    staff = await signedIn(app, database, { staff: true });
    customer = await signedIn(app, database);
    await app.limits!.blocks.block(BLOCKED_IP, 'test: 10 rate-limit violations', 3600);

    // Shop traffic: list pages (cached after the first, so the `api` store has hits), details
    // and searches — 300 requests, 10 at a time.
    const cat = await f.category(database.db, { name: 'Dragons' });
    const products = [];
    for (let i = 0; i < 8; i++) products.push(await f.product(database.db, { name: `Dragon ${i}`, category_id: cat.id }));
    const urls: string[] = [];
    for (let i = 0; i < 300; i++) {
      const p = products[i % products.length]!;
      urls.push(i % 3 === 0 ? '/api/products/' : i % 3 === 1 ? `/api/products/${p.id}/` : `/api/products/search/?q=dragon`);
    }
    for (let i = 0; i < urls.length; i += 10) {
      const statuses = await Promise.all(urls.slice(i, i + 10).map(async (u) => (await fetch(base + u)).status));
      assert.deepEqual(new Set(statuses), new Set([200]), `traffic: ${statuses}`);
    }

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    await database?.drop();
  });

  test('the page is served with a CSP for its own files only, and renders no data by itself', async () => {
    const res = await fetch(`${base}/dashboard/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const csp = res.headers.get('content-security-policy')!;
    const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values.join(' ')]));
    assert.deepEqual(directives, {
      'default-src': "'self'",
      'img-src': "'self' data:",
      'style-src': "'self'",
      'script-src': "'self'",
      'connect-src': "'self'",
      'frame-ancestors': "'none'",
    });
    const html = await res.text();
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=/, 'no inline script or style');
    assert.match(html, /src="\/static\/uplot\/uPlot\.iife\.min\.[0-9a-f]{12}\.js"/);
    // The docs page keeps its own policy; the API its JSON one.
    assert.match((await fetch(`${base}/api/products/`)).headers.get('content-security-policy')!, /default-src 'none'/);
    // Without the slash, redirected like every other page.
    const bare = await fetch(`${base}/dashboard`, { redirect: 'manual' });
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.get('location'), '/dashboard/');
    // With a CDN, the page may load its files from there.
    const cdn = dashboardHeaders('https://cdn.shop.test/assets')['content-security-policy']!;
    assert.match(cdn, /script-src 'self' https:\/\/cdn\.shop\.test;/);
    assert.match(cdn, /connect-src 'self';/);
  });

  test('staff sign in and see live charts with real numbers, then clear the api store', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('response', (r) => r.status() >= 400 && problems.push(`${r.status()} ${r.url()}`));
    try {
      const res = await page.goto(`${base}/dashboard/?every=500`);
      assert.equal(res!.status(), 200);
      assert.match(res!.headers()['content-security-policy']!, /script-src 'self'/);
      await signIn(page, staff);
      await page.locator('#panels').waitFor({ state: 'visible' });

      const rps = await dataNumber(page, '#chart-rps', 'latest', (n) => n > 0);
      assert.ok(rps > 0);
      assert.ok((await dataNumber(page, '#chart-latency', 'latest', (n) => n > 0)) > 0);
      assert.ok((await dataNumber(page, '#chart-latency', 'p95')) >= 0, 'the latency series has a p95 column');
      const apiHitRate = await dataNumber(page, '#chart-cache', 'api', (n) => n > 0);
      assert.ok(apiHitRate > 0 && apiHitRate <= 100, `api hit rate ${apiHitRate}%`);
      await dataNumber(page, '#chart-cache', 'default');
      // The list, detail and search pages at least, and the endpoints the page itself calls.
      assert.ok((await dataNumber(page, '#chart-routes', 'count', (n) => n >= 3)) >= 3);
      assert.ok((await dataNumber(page, '#chart-routes', 'latest', (n) => n > 0)) > 0, 'the slowest route has a p95');
      assert.ok((await dataNumber(page, '#chart-statements', 'count', (n) => n > 0)) > 0);
      await dataNumber(page, '#chart-queues', 'count');
      await dataNumber(page, '#chart-cpu', 'latest');
      assert.ok((await dataNumber(page, '#chart-memory', 'rss', (n) => n > 10)) > 10, 'RSS in MB');
      await dataNumber(page, '#chart-loop', 'p99');
      // Every chart is drawn (uPlot's canvas), captions carry the numbers.
      for (const id of ['rps', 'latency', 'cache', 'routes', 'statements', 'queues', 'cpu', 'memory', 'loop']) {
        assert.equal(await page.locator(`#chart-${id} canvas`).count(), 1, `#chart-${id} has its canvas`);
        const box = await page.locator(`#chart-${id} canvas`).boundingBox();
        assert.ok(box && box.width > 100 && box.height > 100, `#chart-${id} canvas is ${JSON.stringify(box)}`);
        assert.notEqual((await page.textContent(`#caption-${id}`))!.trim(), '', `#caption-${id}`);
      }
      assert.match((await page.textContent('#caption-routes'))!, /^(GET|POST) \/\S+: [\d.]+ ms \(\d+ requests\)/);
      assert.match((await page.textContent('#status'))!, /^(healthy|degraded)$/);
      assert.match((await page.textContent('#blocked'))!, new RegExp(`${BLOCKED_IP.replace(/\./g, '\\.')} test: 10 rate-limit violations`));
      // The charts keep moving: a later poll brings a later time.
      const first = await page.textContent('#updated');
      await page.waitForFunction((before) => document.querySelector('#updated')!.textContent !== before, first, { timeout: 5000 });

      // Clear the api store with the button.
      const stats = async () => (await (await fetch(`${base}/api/utils/monitoring/cache/`, { headers: staff.headers })).json()) as { stores: Record<string, { keys: number }> };
      assert.ok((await stats()).stores.api!.keys > 0, 'the list pages were cached');
      await page.selectOption('#clear-store', 'api');
      await page.click('#clear-button');
      await page.waitForFunction(() => document.querySelector<HTMLElement>('#clear-result')!.dataset.cleared === 'api');
      assert.match((await page.textContent('#clear-result'))!, /^Cleared: api/);
      assert.equal((await stats()).stores.api!.keys, 0);

      assert.deepEqual(problems, [], 'no console errors (a CSP refusal shows as one)');
    } finally {
      await page.close();
    }
  });

  test('a customer is told the dashboard is for staff only', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/dashboard/?every=500`);
      await signIn(page, customer);
      await page.locator('#denied').waitFor({ state: 'visible' });
      assert.match((await page.textContent('#denied'))!, /staff only/);
      assert.equal(await page.locator('#panels').isVisible(), false);
      // The endpoints refuse a customer whatever the page does.
      assert.equal((await fetch(`${base}/api/utils/monitoring/requests/`, { headers: customer.headers })).status, 403);
    } finally {
      await page.close();
    }
  });

  test('a token the API refuses brings the sign-in form back; a wrong password says so', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/dashboard/?every=500`);
      await page.evaluate(() => sessionStorage.setItem('pasargad.dashboard.access', 'not-a-token'));
      await page.reload();
      await page.locator('#login').waitFor({ state: 'visible' });
      assert.equal(await page.evaluate(() => sessionStorage.getItem('pasargad.dashboard.access')), null);
      await page.fill('#login input[name="email"]', staff.email);
      await page.fill('#login input[name="password"]', 'wrong-password');
      await page.click('#login button[type="submit"]');
      await page.waitForFunction(() => document.querySelector('#login-error')!.textContent !== '');
      assert.equal(await page.locator('#panels').isVisible(), false);
    } finally {
      await page.close();
    }
  });
});
