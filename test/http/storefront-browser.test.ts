// The storefront's sign-in life in a real browser (Debian's chromium driven by playwright-core):
// a page on another origin calls the API as the storefront's axios client does, with credentials,
// and on any 401 refreshes with the refresh token it stored at sign-in — several calls at once,
// each refreshing on its own — then retries. Twice, as after two access-token expiries. The
// browser, not a test's own HTTP client, decides whether a cross-origin answer is readable: an
// answer without CORS headers reaches the page as a network error (issue 20: "Network Error" until
// the customer logged out by hand).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Database } from '../../src/db/database.ts';
import { testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { openTestDatabase } from '../helpers/db.ts';
import { freePort, within } from '../helpers/net.ts';

const CHROMIUM = '/usr/bin/chromium';

let database: Database & { drop(): Promise<void> };
let app: FastifyInstance;
let storefront: Server;
let browser: Browser;
let page: Page;
let api = '';
let customer: TestUser;

/** An access token for `userId` that expired a moment ago (signed with the app's key). */
async function expiredAccess(userId: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ token_type: 'access', exp: now - 5, iat: now - 3605, jti: 'e'.repeat(32), user_id: userId })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(app.config.secretKey));
}

before(async () => {
  // Not skipped when missing: CI installs it (.ci/run), and a skipped browser test proves nothing.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\` (.ci/run does this before the tests)`);
  // The storefront's origin: a blank page on its own port, named by host as a developer's is.
  const port = await freePort();
  storefront = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>storefront</title>'));
  await new Promise<void>((resolve) => storefront.listen(port, '127.0.0.1', resolve));
  database = await openTestDatabase('pglite');
  app = await testApp(database, { CORS_ORIGINS: `http://localhost:${port}` });
  await app.listen({ port: 0, host: '127.0.0.1' });
  api = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  customer = await signedIn(app, database);
  browser = await within(
    'chromium to start',
    chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] }),
    60_000,
  );
  page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  // tsx (esbuild) names the functions declared inside the callbacks below with a helper, __name,
  // that exists in Node but not in the page the callbacks are sent to.
  await page.addInitScript('globalThis.__name = (f) => f;');
  await page.goto(`http://localhost:${port}/`);
});

after(async () => {
  await browser?.close();
  await app?.close();
  await database?.drop();
  await new Promise((resolve) => storefront?.close(resolve));
});

interface Outcome {
  /** Per call: the statuses the page saw, in order (0: the browser reported a network error). */
  calls: number[][];
  refreshes: number[];
}

/**
 * Runs in the page: three calls at once with an expired access token; each one's 401 makes it
 * refresh with the stored refresh token (the storefront keeps the first one) and retry.
 */
function storefrontRound(page: Page, access: string, refresh: string): Promise<Outcome> {
  return page.evaluate(
    async ({ api, access, refresh }) => {
      const refreshes: number[] = [];
      const send = async (path: string, token: string): Promise<Response | null> => {
        try {
          return await fetch(api + path, { credentials: 'include', headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
        } catch {
          return null; // what axios reports as "Network Error"
        }
      };
      const call = async (path: string): Promise<number[]> => {
        const seen: number[] = [];
        const first = await send(path, access);
        seen.push(first?.status ?? 0);
        if (first?.status !== 401) return seen;
        let r: Response | null = null;
        try {
          r = await fetch(`${api}/api/users/auth/refresh/`, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh }) });
        } catch {
          /* a network error */
        }
        refreshes.push(r?.status ?? 0);
        if (!r?.ok) return seen;
        const fresh = (await r.json()) as { access: string };
        const again = await send(path, fresh.access);
        seen.push(again?.status ?? 0);
        return seen;
      };
      const calls = await Promise.all(['/api/cart/', '/api/users/profile/', '/api/wishlist/'].map(call));
      return { calls, refreshes };
    },
    { api, access, refresh },
  );
}

test('an expired access token: the page reads each 401, refreshes with its first refresh token in parallel and goes on; after the next expiry, again', async () => {
  for (const round of ['first expiry', 'second expiry']) {
    const outcome = await storefrontRound(page, await expiredAccess(customer.id), customer.refresh);
    assert.deepEqual(outcome, { calls: [[401, 200], [401, 200], [401, 200]], refreshes: [200, 200, 200] }, `${round}: 0 is a CORS failure the browser reported as a network error`);
  }
});

test('an answer the API refuses still reaches the page: 404, 405 and a staff-only 403 are readable, not network errors', async () => {
  const statuses = await page.evaluate(async ({ api, access }) => {
    const status = (path: string, init: RequestInit = {}) =>
      fetch(api + path, { credentials: 'include', ...init, headers: { authorization: `Bearer ${access}`, ...(init.headers ?? {}) } }).then(
        (r) => r.status,
        () => 0,
      );
    return Promise.all([status('/api/no-such-thing/'), status('/api/products/featured/', { method: 'DELETE' }), status('/api/orders/statistics/')]);
  }, { api, access: customer.access });
  assert.deepEqual(statuses, [404, 405, 403]);
});
