// Staff image uploads end to end: variants with their sizes in the API, files served with
// immutable caching, AVIF from the job, bad files refused with nothing left behind, removal
// through the job, category images, CDN URLs, caches dropped on every change, and S3.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { taskHandlers } from '../../src/infra/jobs/handlers.ts';
import type { Handlers, Job } from '../../src/infra/jobs/queue.ts';
import type { TaskName, TaskPayloads } from '../../src/infra/jobs/tasks.ts';
import { forEachBackend, openTestDatabase } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import * as f from '../helpers/factories.ts';
import { bomb, photo } from '../helpers/images.ts';
import { startS3 } from '../helpers/s3.ts';
import type { Database } from '../../src/db/database.ts';

/** A multipart body as a browser would send it (FormData through the fetch Request). */
async function multipart(fields: Record<string, string>, file?: { bytes: Buffer; name?: string; type?: string; field?: string }) {
  const form = new FormData();
  if (file) form.append(file.field ?? 'image', new Blob([new Uint8Array(file.bytes)], { type: file.type ?? 'image/jpeg' }), file.name ?? 'print.jpg');
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const req = new Request('http://x/', { method: 'POST', body: form });
  return { payload: Buffer.from(await req.arrayBuffer()), contentType: req.headers.get('content-type')! };
}

function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
      .sort();
  } catch {
    return [];
  }
}

interface Harness {
  app: FastifyInstance;
  staff: TestUser;
  handlers: Handlers;
  upload(url: string, fields: Record<string, string>, file?: Parameters<typeof multipart>[1], who?: TestUser | null, method?: 'POST' | 'PUT'): Promise<{ status: number; body: any }>;
  /** Runs the jobs of this name enqueued since the last call, as a worker would. */
  runJobs(name: TaskName): Promise<number>;
}

async function harness(db: Database, env: Record<string, string>, deps = {}): Promise<Harness> {
  const app = await testApp(db, env, deps);
  const staff = await signedIn(app, db, { staff: true });
  const handlers = taskHandlers({ app, mailer: { send: async () => {} } as never, queue: app.jobs, emailTurn: async () => {} });
  const ran = new Set<string>();
  return {
    app,
    staff,
    handlers,
    async upload(url, fields, file, who = staff, method = 'POST') {
      const { payload, contentType } = await multipart(fields, file);
      return getJson(app, url, { method, payload, headers: { 'content-type': contentType, ...(who ? who.headers : {}) } });
    },
    async runJobs(name) {
      const rows = await db.db.selectFrom('jobs').select(['id', 'payload']).where('name', '=', name).orderBy('id').execute();
      let n = 0;
      for (const row of rows) {
        if (ran.has(String(row.id))) continue;
        ran.add(String(row.id));
        const job = { id: String(row.id), name, queue: 'products', payload: row.payload as TaskPayloads[typeof name], attempt: 1 } as Job;
        await (handlers[name] as (j: Job) => Promise<void>)(job);
        n++;
      }
      return n;
    },
  };
}

forEachBackend('media uploads', ({ db }) => {
  let h: Harness;
  let dir: string;
  let productId: number;
  let customer: TestUser;
  let jpeg: Buffer;
  const d = () => db().db;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pasargad-media-'));
    h = await harness(db(), { MEDIA_DIR: dir });
    customer = await signedIn(h.app, db());
    productId = (await f.product(d(), { name: 'Dragon Bust' })).id;
    jpeg = await photo(1600, 1000, 'jpeg');
  });
  after(async () => {
    await h.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an upload keeps the original, makes WebP and JPEG at each width with sizes, and shows in the product at once', async () => {
    // The product page is cached before the upload: the upload must drop it.
    assert.deepEqual((await getJson(h.app, `/api/products/${productId}/`)).body.images, []);
    const r = await h.upload(`/api/products/${productId}/images/`, { alt_text: 'Dragon bust, front' }, { bytes: jpeg, name: 'whatever.png' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const img = r.body;
    assert.equal(img.is_main, true, 'the first image is the main one');
    assert.equal(img.alt_text, 'Dragon bust, front');
    assert.match(img.image, new RegExp(`^http://shop\\.test/media/products/${productId}/[0-9a-f]{12}/[0-9a-f]{16}\\.jpg$`), 'a folder per upload, named by content, typed from the bytes');
    assert.equal(img.image_display, img.image);
    assert.deepEqual(
      img.variants.map((v: any) => [v.width, v.height, v.format]),
      [[200, 125, 'webp'], [200, 125, 'jpeg'], [600, 375, 'webp'], [600, 375, 'jpeg'], [1200, 750, 'webp'], [1200, 750, 'jpeg']],
    );
    for (const v of img.variants) {
      const file = await h.app.inject({ url: new URL(v.url).pathname });
      assert.equal(file.statusCode, 200);
      assert.equal(file.headers['content-type'], v.format === 'webp' ? 'image/webp' : 'image/jpeg');
      assert.equal(file.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal(file.headers['cross-origin-resource-policy'], 'cross-origin');
      const meta = await sharp(file.rawPayload).metadata();
      assert.deepEqual([meta.width, meta.height, meta.format], [v.width, v.height, v.format]);
      assert.equal((await h.app.inject({ url: new URL(v.url).pathname, headers: { 'if-none-match': file.headers.etag as string } })).statusCode, 304);
    }
    // The original, byte for byte.
    const original = await h.app.inject({ url: new URL(img.image).pathname });
    assert.deepEqual(original.rawPayload, jpeg);
    assert.equal(filesIn(dir).length, 7);

    const detail = (await getJson(h.app, `/api/products/${productId}/`)).body;
    assert.equal(detail.images.length, 1);
    assert.deepEqual(detail.images[0].variants, img.variants);
    assert.equal(detail.main_image, img.image);
    const card = (await getJson(h.app, '/api/products/?page_size=100')).body.results.find((p: any) => p.id === productId);
    assert.equal(card.main_image, img.image);
  });

  test('AVIF variants come from the job, and the cached product page shows them', async () => {
    const before = (await getJson(h.app, `/api/products/${productId}/`)).body.images[0];
    assert.equal(before.variants.filter((v: any) => v.format === 'avif').length, 0);
    assert.equal(await h.runJobs('make_image_variants'), 1);
    const after = (await getJson(h.app, `/api/products/${productId}/`)).body.images[0];
    const avif = after.variants.filter((v: any) => v.format === 'avif');
    assert.deepEqual(avif.map((v: any) => [v.width, v.height]), [[200, 125], [600, 375], [1200, 750]]);
    assert.deepEqual(after.variants.map((v: any) => v.format).slice(0, 3), ['avif', 'webp', 'jpeg'], 'per width, the smallest format first');
    const file = await h.app.inject({ url: new URL(avif[2].url).pathname });
    assert.equal(file.headers['content-type'], 'image/avif');
    assert.equal((await sharp(file.rawPayload).metadata()).width, 1200);
    // Run again (a retry): nothing changes, no file is added.
    const files = filesIn(dir);
    await h.handlers.make_image_variants!({ id: 'again', name: 'make_image_variants', queue: 'products', payload: { kind: 'product', id: before.id }, attempt: 2 });
    assert.deepEqual(filesIn(dir), files);
    assert.equal((await getJson(h.app, `/api/products/${productId}/`)).body.images[0].variants.length, 9);
  });

  test('a small image gets variants at its own width only; never enlarged', async () => {
    const png = await photo(150, 90, 'png');
    const r = await h.upload(`/api/products/${productId}/images/`, {}, { bytes: png, name: 'small.png', type: 'image/png' });
    assert.equal(r.status, 201);
    assert.equal(r.body.is_main, false, 'the product has its main image already');
    assert.match(r.body.image, /\.png$/);
    assert.deepEqual(r.body.variants.map((v: any) => [v.width, v.height, v.format]), [[150, 90, 'webp'], [150, 90, 'jpeg']]);
  });

  test('bad files are refused with a 4xx and leave nothing behind', async () => {
    const snapshot = async () => ({ rows: await d().selectFrom('product_images').selectAll().orderBy('id').execute(), files: filesIn(dir), jobs: (await d().selectFrom('jobs').select('id').execute()).length });
    const before = await snapshot();
    const url = `/api/products/${productId}/images/`;
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length / 2));
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>');
    const cases: [string, Awaited<ReturnType<Harness['upload']>>, number, RegExp][] = [
      ['text named .jpg', await h.upload(url, {}, { bytes: Buffer.from('not an image at all'), name: 'x.jpg' }), 400, /Upload a valid image/],
      ['truncated JPEG', await h.upload(url, {}, { bytes: truncated }), 400, /Upload a valid image/],
      ['SVG', await h.upload(url, {}, { bytes: svg, name: 'x.svg', type: 'image/svg+xml' }), 400, /Unsupported image type/],
      ['image bomb', await h.upload(url, {}, { bytes: await bomb(), name: 'x.png' }), 400, /50000×50000 pixels/],
      ['empty file', await h.upload(url, {}, { bytes: Buffer.alloc(0) }), 400, /Upload a valid image/],
      ['no file', await h.upload(url, { alt_text: 'x' }), 400, /No file was submitted/],
      ['file in another field', await h.upload(url, {}, { bytes: jpeg, field: 'file' }), 400, /Unexpected file/],
      ['alt text too long', await h.upload(url, { alt_text: 'x'.repeat(201) }, { bytes: jpeg }), 400, /no more than 200 characters/],
      ['bad is_main', await h.upload(url, { is_main: 'maybe' }, { bytes: jpeg }), 400, /valid boolean/],
      ['unknown product', await h.upload('/api/products/999999/images/', {}, { bytes: jpeg }), 404, /Not found/],
      ['anonymous', await h.upload(url, {}, { bytes: jpeg }, null), 401, /credentials/],
      ['customer', await h.upload(url, {}, { bytes: jpeg }, customer), 403, /permission/],
    ];
    for (const [name, r, status, message] of cases) {
      assert.equal(r.status, status, `${name}: ${JSON.stringify(r.body)}`);
      assert.match(JSON.stringify(r.body), message, name);
    }
    assert.deepEqual(await snapshot(), before);
  });

  test('an upload over MEDIA_MAX_UPLOAD_MB is a 413 and stores nothing', async () => {
    const small = await harness(db(), { MEDIA_DIR: dir, MEDIA_MAX_UPLOAD_MB: '0.1' });
    try {
      const files = filesIn(dir);
      const big = await photo(1200, 900, 'png');
      assert.ok(big.length > 0.1 * 1048576);
      const r = await small.upload(`/api/products/${productId}/images/`, {}, { bytes: big, type: 'image/png' });
      assert.equal(r.status, 413);
      assert.equal(r.body.code, 'payload_too_large');
      assert.match(r.body.message, /larger than/);
      assert.deepEqual(filesIn(dir), files);
    } finally {
      await small.app.close();
    }
  });

  test('an external image URL can be added as JSON; staff change the main image and alt text', async () => {
    const r = await getJson(h.app, `/api/products/${productId}/images/`, { method: 'POST', payload: { image_url: 'https://img.example.test/dragon.jpg', alt_text: 'Side', is_main: true }, headers: h.staff.headers });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.image, null);
    assert.equal(r.body.image_display, 'https://img.example.test/dragon.jpg');
    assert.deepEqual(r.body.variants, []);
    assert.equal(r.body.is_main, true);
    const images = (await getJson(h.app, `/api/products/${productId}/`)).body.images;
    assert.equal(images.filter((i: any) => i.is_main).length, 1);
    assert.equal(images[0].id, r.body.id, 'the main image first');
    assert.equal((await getJson(h.app, `/api/products/${productId}/images/`, { method: 'POST', payload: { image_url: 'javascript:alert(1)' }, headers: h.staff.headers })).status, 400);

    const first = images.find((i: any) => i.id !== r.body.id && i.image);
    const patched = await getJson(h.app, `/api/products/${productId}/images/${first.id}/`, { method: 'PATCH', payload: { is_main: true, alt_text: ' Front ' }, headers: h.staff.headers });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.is_main, true);
    assert.equal(patched.body.alt_text, 'Front');
    const refused = await getJson(h.app, `/api/products/${productId}/images/${first.id}/`, { method: 'PATCH', payload: { is_main: false }, headers: h.staff.headers });
    assert.equal(refused.status, 400);
    assert.ok(refused.body.errors.is_main);
    assert.equal((await getJson(h.app, `/api/products/${productId}/`)).body.main_image, first.image);
    assert.equal((await getJson(h.app, `/api/products/${productId}/images/${first.id}/`, { method: 'PATCH', payload: { alt_text: 'x' }, headers: customer.headers })).status, 403);
  });

  test('deleting an image removes its files through the job; the same bytes uploaded twice never share files', async () => {
    const twin = await photo(800, 600, 'jpeg', 7);
    const [a, b] = (await Promise.all([h.upload(`/api/products/${productId}/images/`, {}, { bytes: twin }), h.upload(`/api/products/${productId}/images/`, {}, { bytes: twin })])).map((r) => r.body);
    const keyOf = (url: string) => new URL(url).pathname.slice('/media/'.length);
    const filesOf = (img: any) => [img.image, ...img.variants.map((v: any) => v.url)].map(keyOf);
    assert.notEqual(a.image, b.image, 'each upload has its own folder');
    assert.equal(a.image.split('/').pop(), b.image.split('/').pop(), 'the same content gives the same name');
    assert.equal((await getJson(h.app, `/api/products/${productId}/images/${a.id}/`, { method: 'DELETE', headers: h.staff.headers })).status, 204);
    // The twin is uploaded again while the removal job is pending: it keeps its own files.
    const c = (await h.upload(`/api/products/${productId}/images/`, {}, { bytes: twin })).body;
    assert.equal(await h.runJobs('delete_media_files'), 1);
    for (const key of filesOf(a)) assert.ok(!filesIn(dir).includes(key), `${key} removed`);
    for (const key of [...filesOf(b), ...filesOf(c)]) assert.ok(filesIn(dir).includes(key), `${key} kept`);
    assert.equal((await h.app.inject({ url: new URL(a.image).pathname })).statusCode, 404);
    assert.equal((await h.app.inject({ url: new URL(b.image).pathname })).statusCode, 200);
    for (const img of [b, c]) assert.equal((await getJson(h.app, `/api/products/${productId}/images/${img.id}/`, { method: 'DELETE', headers: h.staff.headers })).status, 204);
    assert.equal((await getJson(h.app, `/api/products/${productId}/images/${b.id}/`, { method: 'DELETE', headers: h.staff.headers })).status, 404);
    await h.runJobs('delete_media_files');
    for (const key of [...filesOf(b), ...filesOf(c)]) assert.ok(!filesIn(dir).includes(key), `${key} removed`);
    const ids = (await getJson(h.app, `/api/products/${productId}/`)).body.images.map((i: any) => i.id);
    assert.ok(![a.id, b.id, c.id].some((id) => ids.includes(id)), 'the cached page dropped them');
  });

  test('a photo with EXIF is shown without it; the upload as it came is kept but never served', async () => {
    const p = (await f.product(d(), { name: 'Vase' })).id;
    const tagged = await sharp(await photo(640, 480)).withExif({ IFD0: { Artist: 'Staff at home', Copyright: 'GPS 35.6892 N' } }).jpeg().toBuffer();
    assert.ok((await sharp(tagged).metadata()).exif);
    const r = await h.upload(`/api/products/${p}/images/`, {}, { bytes: tagged });
    assert.equal(r.status, 201);
    const shown = await h.app.inject({ url: new URL(r.body.image).pathname });
    assert.equal(shown.statusCode, 200);
    const meta = await sharp(shown.rawPayload).metadata();
    assert.equal(meta.exif, undefined, 'no EXIF in what is served');
    assert.deepEqual([meta.width, meta.height], [640, 480]);
    const kept = filesIn(dir).filter((k) => k.startsWith(`private/products/${p}/`));
    assert.equal(kept.length, 1, 'the upload as it came is kept');
    assert.equal((await h.app.inject({ url: `/media/${kept[0]}` })).statusCode, 404, 'and never served');
    assert.equal((await getJson(h.app, `/api/products/${p}/images/${r.body.id}/`, { method: 'DELETE', headers: h.staff.headers })).status, 204);
    await h.runJobs('delete_media_files');
    assert.deepEqual(filesIn(dir).filter((k) => k.includes(`products/${p}/`)), [], 'both go with the image');
  });

  test('GIF and AVIF uploads are accepted; a broken multipart body is a 400', async () => {
    const p = (await f.product(d(), { name: 'Gear' })).id;
    const gif = await sharp(await photo(120, 80, 'png')).gif().toBuffer();
    const avif = await sharp(await photo(320, 200, 'png')).avif().toBuffer();
    const g = await h.upload(`/api/products/${p}/images/`, {}, { bytes: gif, type: 'image/gif' });
    assert.equal(g.status, 201);
    assert.match(g.body.image, /\.gif$/);
    const a = await h.upload(`/api/products/${p}/images/`, {}, { bytes: avif, type: 'image/avif' });
    assert.equal(a.status, 201);
    assert.match(a.body.image, /\.avif$/);
    const rows = await d().selectFrom('product_images').select('id').execute();
    const { payload, contentType } = await multipart({ alt_text: 'x' }, { bytes: jpeg });
    const broken = [
      { 'content-type': 'multipart/form-data' },
      { 'content-type': contentType, body: payload.subarray(0, payload.length - 200) },
      { 'content-type': contentType.replace(/boundary=.*/, 'boundary=nope') },
    ];
    for (const b of broken) {
      const r = await getJson(h.app, `/api/products/${p}/images/`, { method: 'POST', payload: b.body ?? payload, headers: { 'content-type': b['content-type'], ...h.staff.headers } });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, 'bad_request');
    }
    assert.equal((await d().selectFrom('product_images').select('id').execute()).length, rows.length);
  });

  test('a storage that fails partway leaves no file and no row', async () => {
    const p = (await f.product(d(), { name: 'Bracket' })).id;
    const real = h.app.media.put.bind(h.app.media);
    let calls = 0;
    h.app.media.put = async (key, body, type) => {
      if (++calls === 3) throw new Error('disk full');
      return real(key, body, type);
    };
    try {
      const r = await h.upload(`/api/products/${p}/images/`, {}, { bytes: jpeg });
      assert.ok(r.status >= 500, 'the server failed, not the client');
    } finally {
      h.app.media.put = real;
    }
    assert.deepEqual(filesIn(dir).filter((k) => k.includes(`products/${p}/`)), []);
    assert.equal((await d().selectFrom('product_images').select('id').where('product_id', '=', p).execute()).length, 0);
  });

  test('deleting the main image makes the oldest remaining one main', async () => {
    const p = (await f.product(d(), { name: 'Lamp' })).id;
    const first = (await h.upload(`/api/products/${p}/images/`, {}, { bytes: jpeg })).body;
    const second = (await h.upload(`/api/products/${p}/images/`, {}, { bytes: await photo(300, 300, 'png', 3), type: 'image/png' })).body;
    assert.equal((await getJson(h.app, `/api/products/${p}/images/${first.id}/`, { method: 'DELETE', headers: h.staff.headers })).status, 204);
    const detail = (await getJson(h.app, `/api/products/${p}/`)).body;
    assert.equal(detail.images[0].id, second.id);
    assert.equal(detail.images[0].is_main, true);
    assert.equal(detail.main_image, second.image);
  });

  test('category images: upload, replace (old files go), remove; variants listed', async () => {
    const c = (await f.category(d(), { name: 'Media Minis' })).id;
    const bad = await h.upload(`/api/products/categories/${c}/image/`, {}, { bytes: Buffer.from('GIF89a but not really') }, h.staff, 'PUT');
    assert.equal(bad.status, 400);
    assert.ok(bad.body.errors.image);
    assert.equal((await getJson(h.app, `/api/products/categories/${c}/`)).body.image, null, 'a refused file changes nothing');
    const put = await h.upload(`/api/products/categories/${c}/image/`, {}, { bytes: jpeg }, h.staff, 'PUT');
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.match(put.body.image, new RegExp(`/media/categories/${c}/[0-9a-f]{12}/[0-9a-f]{16}\\.jpg$`));
    assert.deepEqual(put.body.image_variants.map((v: any) => v.width), [200, 200, 600, 600, 1200, 1200]);
    const listed = (await getJson(h.app, '/api/products/categories/?page_size=100')).body.results.find((x: any) => x.id === c);
    assert.equal(listed.image, put.body.image, 'the cached category list was dropped');
    await h.runJobs('make_image_variants');
    assert.equal((await getJson(h.app, `/api/products/categories/${c}/`)).body.image_variants.length, 9);

    const oldFiles = filesIn(dir).filter((k) => k.startsWith(`categories/${c}/`));
    assert.equal(oldFiles.length, 10);
    const replaced = await h.upload(`/api/products/categories/${c}/image/`, {}, { bytes: await photo(640, 480, 'webp', 5), type: 'image/webp' }, h.staff, 'PUT');
    assert.equal(replaced.status, 200);
    assert.match(replaced.body.image, /\.webp$/);
    await h.runJobs('delete_media_files');
    const now = filesIn(dir).filter((k) => k.startsWith(`categories/${c}/`));
    assert.ok(oldFiles.every((k) => !now.includes(k)), 'the old files are gone');
    assert.equal(now.length, 7, 'the new original and its variants: 200, 600 and 640 (its own width) in WebP and JPEG');

    assert.equal((await getJson(h.app, `/api/products/categories/${c}/image/`, { method: 'DELETE', headers: customer.headers })).status, 403);
    assert.equal((await getJson(h.app, `/api/products/categories/${c}/image/`, { method: 'DELETE', headers: h.staff.headers })).status, 204);
    const gone = (await getJson(h.app, `/api/products/categories/${c}/`)).body;
    assert.equal(gone.image, null);
    assert.deepEqual(gone.image_variants, []);
    await h.runJobs('make_image_variants');
    await h.runJobs('delete_media_files');
    assert.deepEqual(filesIn(dir).filter((k) => k.startsWith(`categories/${c}/`)), [], 'nothing is left, the late AVIF job included');
  });

  test('media paths that name nothing are 404s, never files outside the folder', async () => {
    for (const url of ['/media/products/1/none.jpg', '/media/../package.json', '/media/%2e%2e/package.json', '/media/products/..%2f..%2fpackage.json', '/media/']) {
      const r = await h.app.inject({ url });
      assert.equal(r.statusCode, 404, url);
      assert.equal(r.json().code, 'not_found');
    }
  });
});

describe('media with a CDN, and on S3', () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  before(async () => {
    db = await openTestDatabase('pglite');
  });
  after(() => db.drop());

  test('with USE_CDN every media URL points at CDN_URL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pasargad-media-'));
    const h = await harness(db, { MEDIA_DIR: dir, USE_CDN: 'true', CDN_URL: 'https://cdn.example.test/' });
    try {
      const p = (await f.product(db.db)).id;
      const r = await h.upload(`/api/products/${p}/images/`, {}, { bytes: await photo(400, 300) });
      assert.match(r.body.image, /^https:\/\/cdn\.example\.test\/media\/products\//);
      assert.ok(r.body.variants.every((v: any) => v.url.startsWith('https://cdn.example.test/media/')));
      assert.match((await getJson(h.app, `/api/products/${p}/`)).body.main_image, /^https:\/\/cdn\.example\.test\/media\//);
    } finally {
      await h.app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('with USE_S3 the files live in the bucket and /media/ serves them from it', async () => {
    const s3 = await startS3();
    const h = await harness(db, s3.env);
    try {
      const p = (await f.product(db.db)).id;
      const bytes = await photo(700, 500);
      const r = await h.upload(`/api/products/${p}/images/`, {}, { bytes });
      assert.equal(r.status, 201);
      const keys = await h.app.media.list(`products/${p}/`);
      assert.equal(keys.length, 7, 'the original and 3 widths (200, 600, its own 700) × 2 formats');
      assert.equal((await h.app.inject({ url: `/media/products/${p}/nothing/here.jpg` })).statusCode, 404, 'a missing object is a 404, not a 500');
      const original = await h.app.inject({ url: new URL(r.body.image).pathname });
      assert.equal(original.statusCode, 200);
      assert.deepEqual(original.rawPayload, bytes);
      assert.equal(original.headers['cache-control'], 'public, max-age=31536000, immutable');
      await h.runJobs('make_image_variants');
      assert.equal((await h.app.media.list(`products/${p}/`)).length, 10);
      assert.equal((await getJson(h.app, `/api/products/${p}/images/${r.body.id}/`, { method: 'DELETE', headers: h.staff.headers })).status, 204);
      await h.runJobs('delete_media_files');
      assert.deepEqual(await h.app.media.list(`products/${p}/`), []);
    } finally {
      await h.app.close();
      await s3.close();
    }
  });
});
