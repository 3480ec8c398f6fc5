// The demo shop works with no network (issue 21): a fresh `pasargad serve` seeds images made on
// this machine and stored like uploads, so every image its pages name is a /media/ file of this
// server that answers 200, in every variant and format (AVIF from the background job); and the
// same seed works through S3 storage.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { seedCatalog } from '../src/db/seed.ts';
import { migrate } from '../src/db/migrate.ts';
import { openStorage } from '../src/infra/media/storage.ts';
import { openTestDatabase } from './helpers/db.ts';
import { getJson, testApp } from './helpers/app.ts';
import { freePort } from './helpers/net.ts';
import { startS3 } from './helpers/s3.ts';

/** Every request of this test gives up after 30 s (a server that accepts and never answers would hang it). */
const fetchT = (input: string, init: RequestInit = {}) => globalThis.fetch(input, { signal: AbortSignal.timeout(30_000), ...init });

type Json = any;

/** Every image URL a catalog answer names: main images, images, their variants (srcset), category images. */
function imageUrls(body: Json, out = new Set<string>()): Set<string> {
  if (Array.isArray(body)) {
    for (const x of body) imageUrls(x, out);
    return out;
  }
  if (!body || typeof body !== 'object') return out;
  for (const [k, v] of Object.entries(body)) {
    if (typeof v === 'string' && ['main_image', 'image', 'image_display', 'image_url', 'url'].includes(k)) out.add(v);
    else if (v && typeof v === 'object') imageUrls(v, out);
  }
  return out;
}

/** The pages a storefront shows: the list (two pages), every listed product's detail, featured, categories. */
async function pages(get: (path: string) => Promise<{ status: number; body: Json }>): Promise<{ urls: Set<string>; details: Json[] }> {
  const urls = new Set<string>();
  const details: Json[] = [];
  for (const path of ['/api/products/', '/api/products/?page=2', '/api/products/featured/', '/api/products/categories/']) {
    const r = await get(path);
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body).slice(0, 300)}`);
    imageUrls(r.body, urls);
    if (path.startsWith('/api/products/?') || path === '/api/products/') {
      for (const p of r.body.results as { id: number }[]) {
        const d = await get(`/api/products/${p.id}/`);
        assert.equal(d.status, 200, `product ${p.id}`);
        details.push(d.body);
        imageUrls(d.body, urls);
      }
    }
  }
  return { urls, details };
}

function checkShapes(details: Json[], categories: Json[]): void {
  assert.ok(details.length >= 20, `details: ${details.length}`);
  for (const d of details) {
    assert.ok(d.images.length >= 1, `product ${d.id} has images`);
    for (const i of d.images) {
      assert.equal(i.image_url, null, `product ${d.id}: an external URL`);
      const formats = new Set(i.variants.map((v: Json) => v.format));
      assert.ok(formats.has('webp') && formats.has('jpeg'), `product ${d.id}: variants ${[...formats]}`);
      assert.ok(new Set(i.variants.map((v: Json) => v.width)).size >= 2, `product ${d.id}: srcset widths`);
    }
  }
  assert.ok(categories.length >= 10 && categories.every((c) => c.image && c.image_variants.length > 0), 'every category has an image and variants');
}

test('a fresh demo shop names only its own /media/ images, and every one of them (all variants, AVIF too) answers 200', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pasargad-demo-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    // No proxy settings and nothing else from this environment: the demo must not need the network.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, DEMO_PRODUCTS: '60', LOG_LEVEL: 'info', RATE_LIMIT_ENABLED: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b) => (output += b));
  child.stderr.on('data', (b) => (output += b));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) assert.fail(`server exited:\n${output}`);
      if (Date.now() > deadline) assert.fail(`no 200 on /api/products/ within 120 s:\n${output}`);
      const ok = await fetchT(`${base}/api/products/`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.diagnostic(`first 200 on /api/products/ after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const get = async (path: string) => {
      const r = await fetchT(base + path);
      return { status: r.status, body: (await r.json()) as Json };
    };

    /** Every image the pages name is this server's and answers, at any moment (images arrive after the first answer). */
    const check = async () => {
      const { urls, details } = await pages(get);
      for (const url of urls) assert.ok(url.startsWith(`${base}/media/`), `not this server's media: ${url}`);
      for (const url of urls) {
        const r = await fetchT(url);
        assert.equal(r.status, 200, url);
        assert.match(r.headers.get('content-type') ?? '', /^image\//, url);
        assert.ok((await r.arrayBuffer()).byteLength > 0, url);
      }
      return { urls, details };
    };
    const until = async (what: string, ms: number, done: (c: Awaited<ReturnType<typeof check>>) => boolean) => {
      const by = Date.now() + ms;
      for (;;) {
        const c = await check();
        if (done(c)) return c;
        if (Date.now() > by) assert.fail(`${what}: not within ${ms / 1000} s:\n${output.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    // Made in the background after the first answer: every product gets its images, WebP and JPEG at once.
    const withImages = await until('every product shows images', 180_000, ({ details }) => details.every((d: Json) => d.images.length > 0));
    t.diagnostic(`every listed product had images after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    checkShapes(withImages.details, (await get('/api/products/categories/')).body.results);
    // Then the background job adds AVIF to every image, and those answer too.
    const { urls } = await until('AVIF for every image', 240_000, ({ details }) => details.every((d: Json) => d.images.every((i: Json) => i.variants.some((v: Json) => v.format === 'avif'))));
    t.diagnostic(`AVIF for every image after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.ok([...urls].some((u) => u.endsWith('.avif')), 'AVIF variants are listed');
  } finally {
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('seeding on PostgreSQL through S3 storage: the pages name /media/ files the bucket holds', async () => {
  const s3 = await startS3('demo-media');
  const database = await openTestDatabase('postgres');
  try {
    await migrate(database);
    const config = loadConfig({ ...s3.env, LOG_LEVEL: 'silent' });
    const storage = openStorage(config.media);
    try {
      const result = await seedCatalog(database, { products: 40, seed: 5, media: { storage, widths: config.media.widths, maxPixels: config.media.maxPixels } });
      assert.equal(result.products, 40);
      assert.ok(result.images >= 40);
      const keys = await storage.list('');
      assert.ok(keys.length > 0 && keys.length < 1000, `a bounded pool of files in the bucket: ${keys.length}`);
    } finally {
      storage.close();
    }
    const app = await testApp(database, s3.env);
    try {
      const { urls, details } = await pages((path) => getJson(app, path));
      checkShapes(details, (await getJson(app, '/api/products/categories/')).body.results);
      for (const url of urls) {
        assert.ok(url.startsWith('http://shop.test/media/'), `not this server's media: ${url}`);
        const r = await app.inject({ method: 'GET', url: url.slice('http://shop.test'.length), headers: { host: 'shop.test' } });
        assert.equal(r.statusCode, 200, url);
        assert.match(String(r.headers['content-type']), /^image\//, url);
      }
    } finally {
      await app.close();
    }
  } finally {
    await database.drop();
    await s3.close();
  }
});
