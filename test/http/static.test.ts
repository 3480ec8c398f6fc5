import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { buildStatic, readSources } from '../../scripts/build-static.mjs';
import { openTestDatabase } from '../helpers/db.ts';
import { testApp } from '../helpers/app.ts';
import type { Database } from '../../src/db/database.ts';

const require = createRequire(import.meta.url);
const BUNDLE = require.resolve('swagger-ui-dist/swagger-ui-bundle.js');
const NOT_FOUND = { error: true, message: 'Not found.', status_code: 404, code: 'not_found' };

let database: Database & { drop(): Promise<void> };
let app: FastifyInstance;
let cdn: FastifyInstance;
before(async () => {
  database = await openTestDatabase('pglite');
  app = await testApp(database);
  cdn = await testApp(database, { USE_CDN: 'true', CDN_URL: 'https://cdn.example.test' });
});
after(async () => {
  await Promise.all([app.close(), cdn.close()]);
  await database.drop();
});

/** The URLs a page's <script src> and <link href> attributes point at. */
function assetUrls(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
}

test('the docs page loads: hashed asset URLs under /static/, each served', async () => {
  const page = await app.inject('/api/docs/');
  assert.equal(page.statusCode, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(page.headers['cache-control'], 'no-cache');
  assert.match(page.body, /<script src="\/static\/swagger-ui\/swagger-ui-bundle\.[0-9a-f]{12}\.js">/);
  assert.match(page.body, /<script src="\/static\/docs\/init\.[0-9a-f]{12}\.js">/);
  assert.match(page.body, /<link rel="stylesheet" href="\/static\/swagger-ui\/swagger-ui\.[0-9a-f]{12}\.css">/);
  assert.doesNotMatch(page.body, /\{\{/, 'every placeholder resolved');
  const urls = assetUrls(page.body);
  assert.equal(urls.length, 6);
  const types: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', png: 'image/png' };
  for (const url of urls) {
    const r = await app.inject(url);
    assert.equal(r.statusCode, 200, url);
    assert.equal(r.headers['content-type'], types[url.split('.').pop()!], url);
  }
  // The page's script reads the OpenAPI document it names.
  assert.match(page.body, /data-spec-url="\/api\/docs\/json"/);
  assert.equal((await app.inject('/api/docs/json')).json().openapi, '3.1.0');
  assert.equal(app.staticUrl('docs/init.js'), urls.find((u) => u.includes('/docs/init.')));
  assert.throws(() => app.staticUrl('docs/nothing.js'), /No static file "docs\/nothing.js"/);
});

test('brotli for br, gzip for gzip, identity otherwise: all the original bytes', async () => {
  const url = app.staticUrl('swagger-ui/swagger-ui-bundle.js');
  const original = await readFile(BUNDLE);
  const get = (acceptEncoding?: string) => app.inject({ url, headers: acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding } });

  const br = await get('gzip, deflate, br, zstd');
  assert.equal(br.headers['content-encoding'], 'br');
  assert.ok(br.rawPayload.length < original.length / 3);
  assert.ok(brotliDecompressSync(br.rawPayload).equals(original));

  for (const accept of ['gzip', 'gzip, br;q=0', 'br;q=0.0, gzip;q=0.5']) {
    const gz = await get(accept);
    assert.equal(gz.headers['content-encoding'], 'gzip', accept);
    assert.ok(gunzipSync(gz.rawPayload).equals(original), accept);
  }
  assert.equal((await get('br;q=0.5')).headers['content-encoding'], 'br');

  for (const accept of [undefined, 'identity', 'deflate', 'br;q=0, gzip;q=0']) {
    const plain = await get(accept);
    assert.equal(plain.headers['content-encoding'], undefined, String(accept));
    assert.ok(plain.rawPayload.equals(original), String(accept));
  }

  // Our own file, and a page: the same negotiation.
  const init = await app.inject({ url: app.staticUrl('docs/init.js'), headers: { 'accept-encoding': 'br' } });
  assert.ok(brotliDecompressSync(init.rawPayload).equals(await readFile(new URL('../../public/docs/init.js', import.meta.url))));
  const identity = (await app.inject('/api/docs/')).rawPayload;
  const page = await app.inject({ url: '/api/docs/', headers: { 'accept-encoding': 'gzip' } });
  assert.equal(page.headers['content-encoding'], 'gzip');
  assert.ok(gunzipSync(page.rawPayload).equals(identity));
});

test('hashed names are immutable, with a strong ETag per encoding; headers for other origins', async () => {
  const url = app.staticUrl('swagger-ui/swagger-ui.css');
  assert.match(url, /^\/static\/swagger-ui\/swagger-ui\.[0-9a-f]{12}\.css$/);
  const r = await app.inject({ url, headers: { 'accept-encoding': 'br', origin: 'https://shop.example.test' } });
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal(r.headers.vary, 'Accept-Encoding');
  assert.match(String(r.headers.etag), /^"[\w-]+-br"$/, 'strong (no W/), and not the identity bytes’ tag');
  assert.equal(r.headers['cross-origin-resource-policy'], 'cross-origin');
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.equal(r.headers['access-control-allow-credentials'], undefined);
  const plain = await app.inject(url);
  assert.notEqual(plain.headers.etag, r.headers.etag);

  // A file that does not compress has no variants and no Vary.
  const png = await app.inject({ url: app.staticUrl('swagger-ui/favicon-32x32.png'), headers: { 'accept-encoding': 'br, gzip' } });
  assert.equal(png.headers['content-encoding'], undefined);
  assert.equal(png.headers.vary, undefined);

  // The logical name is served too, briefly cached: it changes with any deploy.
  const logical = await app.inject('/static/swagger-ui/swagger-ui.css');
  assert.equal(logical.statusCode, 200);
  assert.equal(logical.headers['cache-control'], 'public, max-age=60');
  assert.equal(logical.headers.etag, plain.headers.etag);

  const head = await app.inject({ method: 'HEAD', url, headers: { 'accept-encoding': 'gzip' } });
  assert.equal(head.statusCode, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-encoding'], 'gzip');
});

test('If-None-Match: 304 for static files and the docs page', async () => {
  for (const [url, accept] of [[app.staticUrl('docs/init.js'), 'br'], [app.staticUrl('swagger-ui/favicon-16x16.png'), ''], ['/api/docs/', 'gzip'], ['/api/docs/', '']] as const) {
    const first = await app.inject({ url, headers: { 'accept-encoding': accept } });
    const etag = String(first.headers.etag);
    const again = await app.inject({ url, headers: { 'accept-encoding': accept, 'if-none-match': etag } });
    assert.equal(again.statusCode, 304, `${url} ${accept}`);
    assert.equal(again.body, '');
    assert.equal(again.headers.etag, etag);
    assert.equal(again.headers['cache-control'], first.headers['cache-control']);
    const listed = await app.inject({ url, headers: { 'accept-encoding': accept, 'if-none-match': `"other", W/${etag}` } });
    assert.equal(listed.statusCode, 304, 'a list, compared weakly');
    const changed = await app.inject({ url, headers: { 'accept-encoding': accept, 'if-none-match': '"other"' } });
    assert.equal(changed.statusCode, 200);
  }
});

test('with USE_CDN every static URL points at CDN_URL; the page may load from it', async () => {
  const page = await cdn.inject('/api/docs/');
  const urls = assetUrls(page.body);
  assert.equal(urls.length, 6);
  for (const url of urls) assert.match(url, /^https:\/\/cdn\.example\.test\/static\/(swagger-ui|docs)\/[\w.-]+\.[0-9a-f]{12}\.(js|css|png)$/);
  assert.equal(cdn.staticUrl('docs/init.js'), `https://cdn.example.test${app.staticUrl('docs/init.js')}`);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self' https:\/\/cdn\.example\.test;/);
  // Without it, the page's CSP names no other origin.
  assert.doesNotMatch(String((await app.inject('/api/docs/')).headers['content-security-policy']), /https:/);
  // The CDN fetches from this server by the same path.
  const origin = await cdn.inject(new URL(urls[0]!).pathname);
  assert.equal(origin.statusCode, 200);
});

test('unknown files and path traversal: 404 in the JSON error shape, never a file outside the build', async () => {
  const urls = [
    '/static/',
    '/static/nothing.js',
    '/static/docs/index.html',
    '/static/manifest.json',
    '/static/../package.json',
    '/static/%2e%2e/package.json',
    '/static/..%2fpackage.json',
    '/static/%2e%2e%2f%2e%2e%2fpackage.json',
    '/static/docs/..%2f..%2f..%2fpackage.json',
    '/static//etc/passwd',
    '/static/%2fetc%2fpasswd',
    '/static/..%5c..%5cpackage.json',
    '/static/swagger-ui/swagger-ui-bundle.js%00.png',
  ];
  for (const url of urls) {
    const r = await app.inject(url);
    assert.equal(r.statusCode, 404, url);
    assert.deepEqual(r.json(), NOT_FOUND, url);
  }
});

test('static files are never rate limited', async () => {
  const limited = await testApp(database, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_ANON: '3/hour', RATE_LIMIT_BURST: '3/minute' });
  try {
    const url = limited.staticUrl('docs/init.js');
    for (let i = 0; i < 10; i++) assert.equal((await limited.inject(url)).statusCode, 200);
    for (let i = 0; i < 5; i++) assert.equal((await limited.inject('/api/docs/')).statusCode, 200);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await limited.inject('/api/')).statusCode);
    assert.ok(statuses.includes(429), 'the API itself is limited');
  } finally {
    await limited.close();
  }
});

test('the build: hashed names, brotli and gzip siblings when they save, a manifest; templates left out', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pasargad-static-test-'));
  try {
    const pub = join(dir, 'public');
    await mkdir(join(pub, 'app'), { recursive: true });
    const js = Buffer.from(`console.log(${JSON.stringify('hello '.repeat(200))});\n//# sourceMappingURL=app.js.map\n`);
    await writeFile(join(pub, 'app', 'app.js'), js);
    await writeFile(join(pub, 'tiny.txt'), 'a');
    await writeFile(join(pub, 'logo.png'), Buffer.alloc(500, 7));
    await writeFile(join(pub, 'app', 'index.html'), '<script src="{{static "app/app.js"}}"></script>');
    const sources = await readSources(pub);
    const paths = sources.map((s) => s.path);
    const vendor = (path: string) => path.startsWith('swagger-ui/') || path.startsWith('uplot/');
    assert.deepEqual(paths.filter((p) => !vendor(p)), ['app/app.js', 'logo.png', 'tiny.txt'], 'templates are rendered by the server, not copied');
    assert.ok(paths.includes('swagger-ui/swagger-ui-bundle.js') && paths.includes('uplot/uPlot.iife.min.js'), 'vendor files join them');
    const out = join(dir, 'out');
    // Without the vendor files: maximum-quality brotli of Swagger UI takes seconds.
    const manifest = await buildStatic({ outDir: out, sources: sources.filter((s) => !vendor(s.path)) });

    assert.match(manifest.source, /^[0-9a-f]{64}$/);
    assert.deepEqual(Object.keys(manifest.files), ['app/app.js', 'logo.png', 'tiny.txt']);
    assert.match(manifest.files['app/app.js']!, /^app\/app\.[0-9a-f]{12}\.js$/);
    assert.match(manifest.files['tiny.txt']!, /^tiny\.[0-9a-f]{12}\.txt$/);
    assert.deepEqual(JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')), manifest);

    const hashed = join(out, manifest.files['app/app.js']!);
    const built = await readFile(hashed);
    assert.equal(built.toString(), `console.log(${JSON.stringify('hello '.repeat(200))});\n`, 'the map it points to is not shipped');
    assert.ok(brotliDecompressSync(await readFile(`${hashed}.br`)).equals(built));
    assert.ok(gunzipSync(await readFile(`${hashed}.gz`)).equals(built));
    const names = await readdir(out);
    assert.ok(!names.some((n) => n.startsWith('tiny.') && (n.endsWith('.br') || n.endsWith('.gz'))), 'no variant that is not smaller');
    assert.ok(!names.some((n) => n.startsWith('logo.') && n !== manifest.files['logo.png']), 'images are not compressed');
    assert.deepEqual(await readdir(dir), ['out', 'public'], 'no temp dir left behind');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
