// Starts the real server as `npm start` does (embedded mode, first start migrates and seeds the
// demo catalog) and fetches the product list over a socket; then stops it with SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { photo } from './helpers/images.ts';
import { freePort, within } from './helpers/net.ts';

/** Every request of this test gives up after 30 s (a server that accepts and never answers would hang it). */
const fetch = (input: string, init: RequestInit = {}) => globalThis.fetch(input, { signal: AbortSignal.timeout(30_000), ...init });

test('npm start serves the demo shop over HTTP, takes an order and mails it, takes a photo and makes its AVIF, and stops cleanly on SIGTERM', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pasargad-smoke-'));
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, DEMO_PRODUCTS: '40', LOG_LEVEL: 'info', STAFF_EMAIL: 'owner@shop.test', STAFF_PASSWORD: 'Owner-Pass-2026' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b) => (output += b));
  child.stderr.on('data', (b) => (output += b));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 90_000;
    while (!output.includes('Server listening')) {
      if (Date.now() > deadline || child.exitCode !== null) assert.fail(`server did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const res = await fetch(`http://127.0.0.1:${port}/api/products/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    const body = (await res.json()) as { count: number; results: { id: number; name: string; price: string }[]; next: string };
    assert.ok(body.count >= 35 && body.count <= 40, `count ${body.count}`);
    assert.equal(body.results.length, 20);
    assert.match(body.results[0]!.price, /^\d+\.\d\d$/);
    assert.equal(body.next, `http://127.0.0.1:${port}/api/products/?page=2`);
    assert.match(output, /"request_id"|demo catalog seeded/);
    assert.match(output, /staff account created from STAFF_EMAIL/);

    // A shopper, over real HTTP: a guest cart kept by its cookie, then an account that takes it over.
    const base = `http://127.0.0.1:${port}`;
    const json = { 'content-type': 'application/json' };
    const add = await fetch(`${base}/api/cart/add/`, { method: 'POST', headers: json, body: JSON.stringify({ product_id: body.results[0]!.id, quantity: 1 }) });
    assert.equal(add.status, 200);
    const cookie = add.headers.get('set-cookie')!.split(';')[0]!;
    const signUp = await fetch(`${base}/api/users/auth/register/`, {
      method: 'POST',
      headers: { ...json, cookie },
      body: JSON.stringify({ email: 'shopper@shop.test', username: 'shopper', first_name: 'Sam', last_name: 'Shopper', password: 'Shopper-Pass-9', password_confirm: 'Shopper-Pass-9' }),
    });
    assert.equal(signUp.status, 201);
    const { tokens } = (await signUp.json()) as { tokens: { access: string } };
    const cart = (await (await fetch(`${base}/api/cart/`, { headers: { authorization: `Bearer ${tokens.access}` } })).json()) as { total_items: number };
    assert.equal(cart.total_items, 1);
    const staffLogin = await fetch(`${base}/api/users/auth/login/`, { method: 'POST', headers: json, body: JSON.stringify({ email: 'owner@shop.test', password: 'Owner-Pass-2026' }) });
    const { access } = (await staffLogin.json()) as { access: string };
    const profile = (await (await fetch(`${base}/api/users/profile/`, { headers: { authorization: `Bearer ${access}` } })).json()) as { is_staff: boolean };
    assert.equal(profile.is_staff, true);

    // The shopper pays on the built-in test provider; the server's own workers mail the
    // confirmation to the outbox.
    const auth = { ...json, authorization: `Bearer ${tokens.access}` };
    const session = (await (await fetch(`${base}/api/payments/create-checkout-session/`, { method: 'POST', headers: auth, body: '{}' })).json()) as { checkout_session_id: string; checkout_url: string };
    assert.match(session.checkout_url, new RegExp(`^${base}/api/payments/test-checkout/`));
    const paid = await fetch(session.checkout_url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=paid', redirect: 'manual' });
    assert.equal(paid.status, 303);
    const outbox = join(dataDir, 'outbox');
    const mailDeadline = Date.now() + 30_000;
    const confirmations = () => (existsSync(outbox) ? readdirSync(outbox).filter((f) => /is confirmed/.test(readFileSync(join(outbox, f), 'utf8'))) : []);
    while (confirmations().length === 0) {
      if (Date.now() > mailDeadline) assert.fail(`no confirmation in the outbox:\n${output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(readFileSync(join(outbox, confirmations()[0]!), 'utf8'), /To: shopper@shop\.test/);

    // Staff upload a product photo over real HTTP; the in-process worker adds AVIF variants.
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(await photo(900, 600))], { type: 'image/jpeg' }), 'dragon.jpg');
    form.append('alt_text', 'Dragon');
    const productId = body.results[1]!.id;
    const uploaded = await fetch(`${base}/api/products/${productId}/images/`, { method: 'POST', headers: { authorization: `Bearer ${access}` }, body: form });
    assert.equal(uploaded.status, 201);
    const image = (await uploaded.json()) as { id: number; image: string };
    const file = await fetch(image.image);
    assert.equal(file.status, 200);
    assert.equal(file.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    // AVIF takes seconds of CPU, more on a busy CI machine; the demo server limits anonymous
    // callers (20 a minute in a burst), so polling waits out a 429 as a client should.
    const avifDeadline = Date.now() + 120_000;
    for (;;) {
      const r = await fetch(`${base}/api/products/${productId}/`);
      if (Date.now() > avifDeadline) assert.fail(`no AVIF variants (last answer ${r.status}):\n${output.slice(-2000)}`);
      if (r.status === 429) {
        await new Promise((done) => setTimeout(done, Number(r.headers.get('retry-after') ?? 1) * 1000));
        continue;
      }
      assert.equal(r.status, 200);
      const detail = (await r.json()) as { images: { id: number; variants: { format: string }[] }[] };
      if (detail.images.find((i) => i.id === image.id)?.variants.some((v) => v.format === 'avif')) break;
      await new Promise((done) => setTimeout(done, 500));
    }
  } finally {
    child.kill('SIGTERM');
    // A graceful stop that never ends fails the test (and the process is killed), not hangs it.
    const code = await within('the server to exit after SIGTERM', exited, 30_000).catch((err: Error) => {
      child.kill('SIGKILL');
      return `${err.message}`;
    });
    rmSync(dataDir, { recursive: true, force: true });
    assert.equal(code, 0, output.slice(-2000));
  }
});
