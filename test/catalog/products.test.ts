import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { forEachBackend } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import * as f from '../helpers/factories.ts';

const CARD_KEYS = ['id', 'name', 'price', 'category_name', 'main_image', 'is_in_stock', 'is_featured', 'average_rating', 'review_count'];

forEachBackend('product list, detail, featured, categories', ({ db }) => {
  let app: FastifyInstance;
  const ids: Record<string, number> = {};
  let minis: number, lamps: number;

  before(async () => {
    const d = db().db;
    minis = (await f.category(d, { name: 'Miniatures' })).id;
    lamps = (await f.category(d, { name: 'Lamps' })).id;
    await f.category(d, { name: 'Hidden', is_active: false });
    const day = (n: number) => `2026-01-${String(n).padStart(2, '0')}T10:00:00.123456Z`;
    ids.dragon = (await f.product(d, { name: 'Red Dragon', price: '19.99', category_id: minis, stock_quantity: 3, is_featured: true, created_at: day(1) })).id;
    ids.knight = (await f.product(d, { name: 'Knight', price: '5.50', category_id: minis, stock_quantity: 0, created_at: day(2) })).id;
    ids.lamp = (await f.product(d, { name: 'Moon Lamp', price: '49.00', category_id: lamps, stock_quantity: 8, is_featured: true, created_at: day(3) })).id;
    ids.shade = (await f.product(d, { name: 'Aurora Shade', price: '100.00', category_id: lamps, stock_quantity: 1, created_at: day(4) })).id;
    ids.gone = (await f.product(d, { name: 'Retired', category_id: lamps, is_active: false, created_at: day(5) })).id;
    await f.image(d, ids.dragon, { image_url: 'https://img.test/side.jpg' });
    await f.image(d, ids.dragon, { image_url: null, image: 'products/dragon.jpg', is_main: true });
    const ann = await f.user(d, { first_name: 'Ann', last_name: 'lee' });
    const bob = await f.user(d, { first_name: 'Bob', last_name: '' });
    await f.review(d, ids.dragon, ann.id, 4, day(10));
    await f.review(d, ids.dragon, bob.id, 5, day(11));
    await f.review(d, ids.lamp, ann.id, 2, day(12));
    app = await testApp(db());
  });
  after(() => app.close());

  test('list: active products, newest first, contract card shape', async () => {
    const { status, headers, body } = await getJson(app, '/api/products/');
    assert.equal(status, 200);
    assert.equal(headers['x-frame-options'], 'DENY');
    assert.equal(body.count, 4);
    assert.equal(body.next, null);
    assert.equal(body.previous, null);
    assert.deepEqual(body.results.map((p: any) => p.id), [ids.shade, ids.lamp, ids.knight, ids.dragon]);
    const dragon = body.results[3];
    assert.deepEqual(Object.keys(dragon).sort(), [...CARD_KEYS].sort());
    assert.deepEqual(dragon, {
      id: ids.dragon, name: 'Red Dragon', price: '19.99', category_name: 'Miniatures',
      main_image: 'http://shop.test/media/products/dragon.jpg', is_in_stock: true, is_featured: true, average_rating: 4.5, review_count: 2,
    });
    assert.equal(body.results[2].is_in_stock, false);
    assert.equal(body.results[0].average_rating, 0);
  });

  test('list filters: category (one, several, invalid), featured, price, stock', async () => {
    const ids_ = async (q: string) => (await getJson(app, `/api/products/?${q}`)).body.results.map((p: any) => p.id).sort();
    assert.deepEqual(await ids_(`category=${minis}`), [ids.dragon, ids.knight].sort());
    assert.deepEqual(await ids_(`category=${minis},${lamps}`), [ids.dragon, ids.knight, ids.lamp, ids.shade].sort());
    assert.deepEqual(await ids_(`category=${minis}&category=${lamps}`), [ids.dragon, ids.knight, ids.lamp, ids.shade].sort());
    for (const bad of ['999999', 'abc', `${minis},x`]) {
      const r = await getJson(app, `/api/products/?category=${bad}`);
      assert.equal(r.status, 400, bad);
      assert.deepEqual(r.body.errors, { category: ['Select a valid choice. That choice is not one of the available choices.'] });
      assert.equal(r.body.message, 'Bad request. Please check your input.');
    }
    assert.deepEqual(await ids_('is_featured=true'), [ids.dragon, ids.lamp].sort());
    assert.deepEqual(await ids_('is_featured=FALSE'), [ids.knight, ids.shade].sort());
    assert.deepEqual(await ids_('is_featured=1'), [ids.dragon, ids.lamp].sort());
    assert.equal((await ids_('is_featured=maybe')).length, 4);
    assert.equal((await ids_('min_price=&category=&search=')).length, 4, 'empty values are ignored');
    for (const v of ['Infinity', '-Infinity', '0x10']) assert.equal((await getJson(app, `/api/products/?min_price=${v}`)).status, 400, v);
    assert.deepEqual(await ids_('min_price=19.99&max_price=100'), [ids.dragon, ids.lamp, ids.shade].sort());
    assert.deepEqual(await ids_('in_stock=true'), [ids.dragon, ids.lamp, ids.shade].sort());
    assert.deepEqual(await ids_('unknown=1&min_rating=4'), [ids.dragon, ids.knight, ids.lamp, ids.shade].sort());
    const bad = await getJson(app, '/api/products/?min_price=abc');
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.errors, { min_price: ['A valid number is required.'] });
  });

  test('ordering, including -average_rating; unknown orderings are ignored', async () => {
    const order = async (o: string) => (await getJson(app, `/api/products/?ordering=${o}`)).body.results.map((p: any) => p.id);
    assert.deepEqual(await order('price'), [ids.knight, ids.dragon, ids.lamp, ids.shade]);
    assert.deepEqual(await order('-price'), [ids.shade, ids.lamp, ids.dragon, ids.knight]);
    assert.deepEqual(await order('name'), [ids.shade, ids.knight, ids.lamp, ids.dragon]);
    assert.deepEqual(await order('created_at'), [ids.dragon, ids.knight, ids.lamp, ids.shade]);
    assert.equal((await order('-average_rating'))[0], ids.dragon);
    assert.deepEqual(await order('bogus'), await order('-created_at'));
    for (const odd of ['constructor', '__proto__', 'toString']) assert.deepEqual(await order(odd), await order('-created_at'), odd);
    assert.deepEqual(await order('bogus,price'), await order('price'));
  });

  test('pagination: page_size, next/previous as absolute URLs, last, invalid pages', async () => {
    const p1 = await getJson(app, '/api/products/?page_size=3&ordering=price');
    assert.equal(p1.body.results.length, 3);
    assert.equal(p1.body.next, 'http://shop.test/api/products/?ordering=price&page=2&page_size=3');
    const p2 = await getJson(app, '/api/products/?page=2&page_size=3&ordering=price');
    assert.deepEqual(p2.body.results.map((p: any) => p.id), [ids.shade]);
    assert.equal(p2.body.previous, 'http://shop.test/api/products/?ordering=price&page_size=3');
    assert.equal(p2.body.next, null);
    const last = await getJson(app, '/api/products/?page=last&page_size=3');
    assert.equal(last.body.results.length, 1);
    for (const page of ['3', '0', 'abc', '-1']) {
      const r = await getJson(app, `/api/products/?page=${page}&page_size=3`);
      assert.equal(r.status, 404, page);
      assert.deepEqual(r.body, { error: true, message: 'Invalid page.', status_code: 404, code: 'invalid_page' });
    }
    assert.equal((await getJson(app, '/api/products/?page_size=1000')).body.results.length, 4);
    assert.equal((await getJson(app, '/api/products/?page_size=10000000')).body.results.length, 4);
    assert.equal((await getJson(app, '/api/products/?page_size=0')).body.results.length, 4);
  });

  test('absolute URLs follow X-Forwarded-* only from trusted proxies', async () => {
    const untrusted = await getJson(app, '/api/products/?page_size=1', { headers: { 'x-forwarded-host': 'evil.test', 'x-forwarded-proto': 'https' } });
    assert.match(untrusted.body.next, /^http:\/\/shop\.test\//);
    const proxied = await testApp(db(), { TRUSTED_PROXIES: '127.0.0.1' });
    try {
      const r = await getJson(proxied, '/api/products/?page_size=1', { headers: { 'x-forwarded-host': 'shop.example', 'x-forwarded-proto': 'https' } });
      assert.match(r.body.next, /^https:\/\/shop\.example\//);
    } finally {
      await proxied.close();
    }
  });

  test('media URLs go to the CDN when configured', async () => {
    const cdn = await testApp(db(), { USE_CDN: 'true', CDN_URL: 'https://cdn.example.com' });
    try {
      const r = await getJson(cdn, `/api/products/${ids.dragon}/`);
      assert.equal(r.body.main_image, 'https://cdn.example.com/media/products/dragon.jpg');
      assert.equal(r.body.images[0].image, 'https://cdn.example.com/media/products/dragon.jpg');
      assert.equal(r.body.images[1].image_display, 'https://img.test/side.jpg');
    } finally {
      await cdn.close();
    }
  });

  test('detail: contract fields plus category_name, main_image, is_in_stock', async () => {
    const { status, body } = await getJson(app, `/api/products/${ids.dragon}/`);
    assert.equal(status, 200);
    assert.equal(body.name, 'Red Dragon');
    assert.equal(body.price, '19.99');
    assert.equal(body.weight, '100.00');
    assert.equal(body.stock_quantity, 3);
    assert.equal(body.sku.startsWith('SKU-'), true);
    assert.equal(body.search_vector, null);
    assert.equal(body.low_stock_threshold, 5);
    assert.equal(body.created_at, '2026-01-01T10:00:00.123456Z');
    assert.equal(body.average_rating, 4.5);
    assert.equal(body.review_count, 2);
    assert.equal(body.category_name, 'Miniatures');
    assert.equal(body.main_image, 'http://shop.test/media/products/dragon.jpg');
    assert.equal(body.is_in_stock, true);
    assert.deepEqual(Object.keys(body.category).sort(), ['created_at', 'description', 'id', 'image', 'image_variants', 'is_active', 'name', 'products_count', 'updated_at']);
    assert.equal(body.category.products_count, 2);
    // main image first
    assert.equal(body.images.length, 2);
    assert.equal(body.images[0].is_main, true);
    assert.equal(body.images[0].image_display, 'http://shop.test/media/products/dragon.jpg');
    assert.equal(body.images[0].image_url, null);
    assert.equal(body.images[1].image, null);
    assert.equal(body.images[1].image_url, 'https://img.test/side.jpg');
    assert.equal(body.images[0].product, ids.dragon);
    assert.deepEqual(body.images[0].variants, []);
    // reviews newest first, "First L." names
    assert.deepEqual(body.reviews.map((r: any) => r.user_name), ['Bob', 'Ann L.']);
    assert.deepEqual(body.reviews.map((r: any) => r.rating), [5, 4]);
    assert.equal(body.reviews[0].created_at, '2026-01-11T10:00:00.123456Z');
  });

  test('detail: inactive, missing or malformed ids are 404 "Not found."', async () => {
    for (const id of [ids.gone, 987654, 'abc', '1.5', '99999999999999', 'Infinity', '0x1', '1e1', '%zz']) {
      const r = await getJson(app, `/api/products/${id}/`);
      assert.equal(r.status, 404, String(id));
      assert.deepEqual(r.body, { error: true, message: 'Not found.', status_code: 404, code: 'not_found' });
    }
  });

  test('featured: active featured products, newest first', async () => {
    const r = await getJson(app, '/api/products/featured/');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.results.map((p: any) => p.id), [ids.lamp, ids.dragon]);
  });

  test('categories: active ones by id with active product counts', async () => {
    const r = await getJson(app, '/api/products/categories/');
    assert.equal(r.status, 200);
    assert.equal(r.body.count, 2);
    assert.deepEqual(r.body.results.map((c: any) => [c.name, c.products_count]), [['Miniatures', 2], ['Lamps', 2]]);
    assert.equal(r.body.results[0].image, null);
    assert.equal(r.body.results[0].is_active, true);
  });

  test('reviews list: paginated, newest first; unknown product has none', async () => {
    const r = await getJson(app, `/api/products/${ids.dragon}/reviews/?page_size=1`);
    assert.equal(r.body.count, 2);
    assert.equal(r.body.results[0].user_name, 'Bob');
    assert.deepEqual(Object.keys(r.body.results[0]).sort(), ['created_at', 'id', 'is_verified_purchase', 'product', 'rating', 'review_text', 'updated_at', 'user', 'user_name']);
    assert.equal(r.body.next, `http://shop.test/api/products/${ids.dragon}/reviews/?page=2&page_size=1`);
    assert.equal((await getJson(app, '/api/products/999999/reviews/')).body.count, 0);
  });

  test('rating aggregates stay exact through review writes', async () => {
    const d = db().db;
    const p = await f.product(d, {});
    const users = await Promise.all([1, 2, 3].map(() => f.user(d)));
    await Promise.all(users.map((u, i) => f.review(d, p.id, u.id, i + 3))); // 3, 4, 5 concurrently
    let body = (await getJson(app, `/api/products/${p.id}/`)).body;
    assert.equal(body.review_count, 3);
    assert.equal(body.average_rating, 4);
    // These writes go around the services (they test the triggers), so nothing tells the cache.
    await d.updateTable('reviews').set({ rating: 1 }).where('product_id', '=', p.id).where('user_id', '=', users[2]!.id).execute();
    await app.caches.api.clear();
    body = (await getJson(app, `/api/products/${p.id}/`)).body;
    assert.equal(body.average_rating, 2.7); // (3 + 4 + 1) / 3
    await d.deleteFrom('reviews').where('product_id', '=', p.id).execute();
    await app.caches.api.clear();
    body = (await getJson(app, `/api/products/${p.id}/`)).body;
    assert.equal(body.review_count, 0);
    assert.equal(body.average_rating, 0);
  });
});
