// The HTTP response cache through the API: hits and misses, ready compressed bytes, ETag/304,
// headers, that it never skips authentication or serves one user's data to another, and that
// every kind of write shows on the very next read — also on a second instance sharing Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { forEachBackend, openTestDatabase } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { dropPrefix, uniquePrefix } from '../helpers/redis.ts';
import { assertWriteShowsOnOther, heardFromOther } from '../helpers/two-instances.ts';
import { CacheWarmer } from '../../src/infra/cache/warming.ts';

forEachBackend('HTTP response cache', ({ backend, db }) => {
  let app: FastifyInstance;
  let staff: TestUser;
  const prefix = uniquePrefix();
  const env: Record<string, string> = backend === 'postgres' ? { REDIS_URL: 'redis://127.0.0.1:6379' } : {};
  before(async () => {
    app = await testApp(db(), env, { cacheKeyPrefix: prefix });
    staff = await signedIn(app, db(), { staff: true });
  });
  after(async () => {
    await app.close();
    if (backend === 'postgres') await Promise.all([dropPrefix(prefix, 'redis://127.0.0.1:6379/1'), dropPrefix(prefix, 'redis://127.0.0.1:6379/3')]);
  });
  const staffCall = (method: string, url: string, payload?: unknown) => getJson(app, url, { method: method as 'GET', headers: staff.headers, ...(payload === undefined ? {} : { payload: payload as object }) });

  test('MISS then HIT with the same bytes, an ETag, a public Cache-Control; 304 for a matching If-None-Match', async () => {
    const cat = await f.category(db().db);
    for (let i = 0; i < 30; i++) await f.product(db().db, { category_id: cat.id, description: 'A finely printed piece '.repeat(5) });
    const url = `/api/products/?category=${cat.id}`;
    const first = await app.inject({ url, headers: { host: 'shop.test' } });
    assert.equal(first.statusCode, 200);
    assert.equal(first.headers['x-cache'], 'MISS');
    const second = await app.inject({ url, headers: { host: 'shop.test' } });
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.body, first.body);
    assert.equal(second.headers.etag, first.headers.etag);
    assert.match(String(second.headers.etag), /^"[\w-]+"$/);
    assert.equal(second.headers['cache-control'], 'public, max-age=30, stale-while-revalidate=60');
    assert.match(String(second.headers['content-type']), /^application\/json/);
    assert.match(String(second.headers.vary), /Accept-Encoding/);
    assert.equal(second.headers['x-frame-options'], 'DENY', 'a hit keeps the security headers');
    assert.ok(second.headers['x-request-id']);
    const notModified = await app.inject({ url, headers: { host: 'shop.test', 'if-none-match': String(first.headers.etag) } });
    assert.equal(notModified.statusCode, 304);
    assert.equal(notModified.body, '');
    for (const header of [`"other", W/${first.headers.etag}`, '*']) {
      assert.equal((await app.inject({ url, headers: { host: 'shop.test', 'if-none-match': header } })).statusCode, 304, header);
    }
    assert.equal((await app.inject({ url, headers: { host: 'shop.test', 'if-none-match': '"other"' } })).statusCode, 200);
    const head = await app.inject({ method: 'HEAD', url, headers: { host: 'shop.test' } });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['x-cache'], 'HIT');
    assert.equal(head.body, '');
  });

  test('compressed variants are made once and decode to the same body', async () => {
    const url = '/api/products/?page_size=50';
    const plain = await app.inject({ url, headers: { host: 'shop.test' } });
    const br = await app.inject({ url, headers: { host: 'shop.test', 'accept-encoding': 'gzip, deflate, br' } });
    const gz = await app.inject({ url, headers: { host: 'shop.test', 'accept-encoding': 'gzip' } });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(brotliDecompressSync(br.rawPayload).toString(), plain.body);
    assert.equal(gunzipSync(gz.rawPayload).toString(), plain.body);
    assert.ok(br.rawPayload.length < plain.rawPayload.length / 3);
    const none = await app.inject({ url, headers: { host: 'shop.test', 'accept-encoding': 'br;q=0, gzip;q=0' } });
    assert.equal(none.headers['content-encoding'], undefined);
  });

  test('the query is normalised: the same parameters in another order are the same entry', async () => {
    await getJson(app, '/api/products/?ordering=price&page_size=5');
    const swapped = await getJson(app, '/api/products/?page_size=5&ordering=price');
    assert.equal(swapped.headers['x-cache'], 'HIT');
    const other = await getJson(app, '/api/products/?page_size=6&ordering=price');
    assert.equal(other.headers['x-cache'], 'MISS');
    const otherHost = await getJson(app, '/api/products/?page_size=5&ordering=price', { headers: { host: 'other.test' } });
    assert.equal(otherHost.headers['x-cache'], 'MISS', 'absolute links differ per host');
    assert.match(otherHost.body.next ?? 'http://other.test', /^http:\/\/other\.test/);
  });

  test('different bytes in a query are different entries, even where decoding would make them alike', async () => {
    const a = await getJson(app, '/api/products/search/?q=%C3%A9t%C3%A9');
    const b = await getJson(app, '/api/products/search/?q=%FF%FE');
    assert.equal(a.headers['x-cache'], 'MISS');
    assert.equal(b.headers['x-cache'], 'MISS');
    const [c1, c2] = [await f.category(db().db), await f.category(db().db)];
    const one = await getJson(app, `/api/products/?category=${c1.id}&category=${c2.id}&page_size=3`);
    assert.equal(one.status, 200);
    const swapped = await getJson(app, `/api/products/?page_size=3&category=${c2.id}&category=${c1.id}`);
    assert.equal(swapped.headers['x-cache'], 'MISS', 'repeated parameters keep their order');
    const same = await getJson(app, `/api/products/?page_size=3&category=${c1.id}&category=${c2.id}`);
    assert.equal(same.headers['x-cache'], 'HIT');
  });

  test('a cached answer never skips the token check, and personal routes are never cached', async () => {
    const url = '/api/products/featured/';
    await getJson(app, url);
    assert.equal((await getJson(app, url)).headers['x-cache'], 'HIT');
    const bad = await getJson(app, url, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(bad.status, 401);
    const a = await signedIn(app, db());
    const b = await signedIn(app, db());
    const p = await f.product(db().db, { stock_quantity: 10 });
    await getJson(app, '/api/cart/add/', { method: 'POST', headers: a.headers, payload: { product_id: p.id, quantity: 2 } });
    const cartA = await getJson(app, '/api/cart/', { headers: a.headers });
    const cartB = await getJson(app, '/api/cart/', { headers: b.headers });
    assert.equal(cartA.headers['x-cache'], undefined);
    assert.equal(cartA.body.total_items, 2);
    assert.equal(cartB.body.total_items, 0);
    const low = await getJson(app, '/api/products/low-stock/', { headers: staff.headers });
    assert.equal(low.headers['x-cache'], undefined);
    assert.equal((await getJson(app, '/api/products/low-stock/', { headers: a.headers })).status, 403, 'staff-only stays staff-only');
    const profile = await getJson(app, '/api/users/profile/', { headers: b.headers });
    assert.equal(profile.body.id, b.id);
  });

  test('product writes show on the next read: detail, lists, filtered lists, featured, search, categories', async () => {
    const cat = await f.category(db().db, { name: `Lamps ${backend}` });
    const made = await staffCall('POST', '/api/products/', { name: 'Moon lamp', price: '40.00', category: cat.id, sku: `MOON-${backend}`, stock_quantity: 5, is_featured: false });
    const id = made.body.id;
    const reads = {
      detail: `/api/products/${id}/`,
      cheap: `/api/products/?max_price=30&category=${cat.id}`,
      list: `/api/products/?category=${cat.id}`,
      featured: '/api/products/featured/?page_size=100',
      search: '/api/products/search/?q=moon',
      categories: '/api/products/categories/?page_size=100',
    };
    const warm = async () => {
      for (const url of Object.values(reads)) await getJson(app, url);
      for (const url of Object.values(reads)) assert.equal((await getJson(app, url)).headers['x-cache'], 'HIT', url);
    };
    await warm();
    assert.equal((await getJson(app, reads.cheap)).body.count, 0);

    await staffCall('PATCH', `/api/products/${id}/`, { price: '25.50', stock_quantity: 0, is_featured: true });
    assert.equal((await getJson(app, reads.detail)).body.price, '25.50');
    assert.equal((await getJson(app, reads.detail)).body.stock_quantity, 0);
    assert.deepEqual((await getJson(app, reads.cheap)).body.results.map((p: { id: number }) => p.id), [id], 'moved into a filtered list');
    assert.equal((await getJson(app, reads.list)).body.results[0].is_in_stock, false);
    assert.ok((await getJson(app, reads.featured)).body.results.some((p: { id: number }) => p.id === id));
    assert.equal((await getJson(app, reads.search)).body.results.find((p: { id: number }) => p.id === id)?.price, '25.50');

    await warm();
    await staffCall('PATCH', `/api/products/${id}/`, { price: '35.00' });
    assert.equal((await getJson(app, reads.cheap)).body.count, 0, 'moved out of a filtered list');

    await warm();
    const countBefore = (await getJson(app, reads.categories)).body.results.find((c: { id: number }) => c.id === cat.id).products_count;
    await app.inject({ method: 'DELETE', url: reads.detail, headers: staff.headers });
    assert.equal((await getJson(app, reads.detail)).status, 404);
    assert.equal((await getJson(app, reads.list)).body.count, 0);
    assert.equal((await getJson(app, reads.search)).body.results.some((p: { id: number }) => p.id === id), false);
    assert.equal((await getJson(app, reads.categories)).body.results.find((c: { id: number }) => c.id === cat.id).products_count, countBefore - 1);
  });

  test("a user's cart is kept in the default store: repeated reads run no SQL; cart and product changes show at once", async () => {
    const user = await signedIn(app, db());
    const p = await f.product(db().db, { price: '10.00', stock_quantity: 10 });
    await getJson(app, '/api/cart/add/', { method: 'POST', headers: user.headers, payload: { product_id: p.id, quantity: 2 } });
    assert.equal((await getJson(app, '/api/cart/', { headers: user.headers })).body.total_price, '20.00');
    const before = db().stats.statements;
    assert.equal((await getJson(app, '/api/cart/', { headers: user.headers })).body.total_price, '20.00');
    assert.equal(db().stats.statements - before, 1, 'only the user row behind the token');
    await staffCall('PATCH', `/api/products/${p.id}/`, { price: '11.50' });
    assert.equal((await getJson(app, '/api/cart/', { headers: user.headers })).body.total_price, '23.00');
    const item = (await getJson(app, '/api/cart/', { headers: user.headers })).body.items[0].id;
    await getJson(app, `/api/cart/items/${item}/`, { method: 'PUT', headers: user.headers, payload: { quantity: 3 } });
    assert.equal((await getJson(app, '/api/cart/', { headers: user.headers })).body.total_price, '34.50');
  });

  test('category, review and reviewer-name writes show on the next read', async () => {
    const cat = await f.category(db().db, { name: `Busts ${backend}` });
    const p = await f.product(db().db, { category_id: cat.id, name: 'Bust' });
    const detail = `/api/products/${p.id}/`;
    const list = `/api/products/?category=${cat.id}`;
    const reviews = `/api/products/${p.id}/reviews/`;
    for (const url of [detail, list, reviews, `/api/products/categories/${cat.id}/`]) {
      await getJson(app, url);
      assert.equal((await getJson(app, url)).headers['x-cache'], 'HIT');
    }
    await staffCall('PATCH', `/api/products/categories/${cat.id}/`, { name: `Heads ${backend}` });
    assert.equal((await getJson(app, detail)).body.category.name, `Heads ${backend}`);
    assert.equal((await getJson(app, list)).body.results[0].category_name, `Heads ${backend}`);
    assert.equal((await getJson(app, `/api/products/categories/${cat.id}/`)).body.name, `Heads ${backend}`);

    const reviewer = await signedIn(app, db(), { first_name: 'Rosa', last_name: 'Parks' });
    await getJson(app, detail);
    const made = await getJson(app, reviews, { method: 'POST', headers: reviewer.headers, payload: { rating: 4, review_text: 'Lovely' } });
    assert.equal(made.status, 201);
    assert.equal((await getJson(app, detail)).body.review_count, 1);
    assert.equal((await getJson(app, detail)).body.average_rating, 4);
    assert.equal((await getJson(app, list)).body.results[0].average_rating, 4);
    assert.equal((await getJson(app, reviews)).body.results[0].user_name, 'Rosa P.');
    await getJson(app, `/api/products/reviews/${made.body.id}/`, { method: 'PATCH', headers: reviewer.headers, payload: { rating: 2 } });
    assert.equal((await getJson(app, detail)).body.average_rating, 2);
    await getJson(app, '/api/users/profile/', { method: 'PATCH', headers: reviewer.headers, payload: { last_name: 'Luxemburg' } });
    assert.equal((await getJson(app, reviews)).body.results[0].user_name, 'Rosa L.');
    assert.equal((await getJson(app, detail)).body.reviews[0].user_name, 'Rosa L.');
    await app.inject({ method: 'DELETE', url: `/api/products/reviews/${made.body.id}/`, headers: reviewer.headers });
    assert.equal((await getJson(app, detail)).body.review_count, 0);
    assert.equal((await getJson(app, reviews)).body.count, 0);
  });

  test('an image change shows on the next read of the detail and the lists', async () => {
    const cat = await f.category(db().db);
    const p = await f.product(db().db, { category_id: cat.id, name: 'Framed Relief' });
    const detail = `/api/products/${p.id}/`;
    const list = `/api/products/?category=${cat.id}`;
    for (const url of [detail, list]) {
      await getJson(app, url);
      assert.equal((await getJson(app, url)).headers['x-cache'], 'HIT');
    }
    // The write itself arrives with the media issue's upload routes; this is their event.
    const img = await f.image(db().db, p.id, { image_url: 'https://img.test/relief.jpg', is_main: true });
    await app.events.emit('image.created', { id: img.id, productId: p.id });
    const shown = await getJson(app, detail);
    assert.equal(shown.headers['x-cache'], 'MISS');
    assert.equal(shown.body.images.length, 1);
    assert.equal(shown.body.main_image, 'https://img.test/relief.jpg');
    assert.equal((await getJson(app, list)).body.results[0].main_image, 'https://img.test/relief.jpg');
  });
});

test('warming makes the hot answers before anyone asks, and re-makes them after an invalidation', async () => {
  const database = await openTestDatabase('pglite');
  const app = await testApp(database, { PORT: '8123' });
  const warmer = new CacheWarmer(app, app.config);
  try {
    const cat = await f.category(database.db);
    const p = await f.product(database.db, { category_id: cat.id, is_featured: true });
    const local = { headers: { host: 'localhost:8123' } };
    const r = await warmer.warm();
    assert.ok(r.requests >= 4, JSON.stringify(r));
    // The server's own lookups are not shoppers': warming again (every answer there) counts nothing.
    const counted = await app.caches.api.stats();
    await warmer.warm();
    const recount = await app.caches.api.stats();
    assert.deepEqual([recount.hits, recount.misses], [counted.hits, counted.misses], 'warming counts no hit or miss');
    for (const url of ['/api/products/categories/', '/api/products/featured/', '/api/products/', `/api/products/?category=${cat.id}`]) {
      assert.equal((await getJson(app, url, local)).headers['x-cache'], 'HIT', url);
    }
    // A page shoppers used recently is warmed again right after a write drops it.
    const detail = `/api/products/${p.id}/`;
    await getJson(app, detail, local);
    warmer.start();
    const staff = await signedIn(app, database, { staff: true });
    await getJson(app, detail, { method: 'PATCH', headers: staff.headers, payload: { price: '99.00' } });
    await new Promise((resolve) => setTimeout(resolve, 600));
    const after = await getJson(app, detail, local);
    assert.equal(after.headers['x-cache'], 'HIT');
    assert.equal(after.body.price, '99.00');
  } finally {
    await warmer.stop();
    await app.close();
    await database.drop();
  }
});

describe('two instances sharing PostgreSQL and Redis', () => {
  const prefix = uniquePrefix();
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let a: FastifyInstance;
  let b: FastifyInstance;
  before(async () => {
    database = await openTestDatabase('postgres');
    const env = { REDIS_URL: 'redis://127.0.0.1:6379' };
    a = await testApp(database, env, { cacheKeyPrefix: prefix });
    b = await testApp(database, env, { cacheKeyPrefix: prefix });
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await database.drop();
    await Promise.all([dropPrefix(prefix, 'redis://127.0.0.1:6379/1'), dropPrefix(prefix, 'redis://127.0.0.1:6379/3')]);
  });

  test('a write on one instance shows on the other’s next read, though it held the answer in memory', async () => {
    await assertWriteShowsOnOther(a, b, database);
  });

  test('every kind of write on one instance shows on the other: filtered lists, categories, reviews, reviewer names, carts', async () => {
    const staff = await signedIn(a, database, { staff: true });
    const shopper = await signedIn(a, database, { first_name: 'Ida', last_name: 'Wells' });
    const cat = await f.category(database.db, { name: 'Shared shelf' });
    const p = await f.product(database.db, { category_id: cat.id, price: '50.00', stock_quantity: 5 });
    const reads = [`/api/products/?category=${cat.id}&max_price=30`, `/api/products/${p.id}/`, `/api/products/${p.id}/reviews/`, '/api/products/categories/?page_size=100'];
    const holdOnB = async () => {
      for (const url of reads) await getJson(b, url);
      for (const url of reads) assert.equal((await getJson(b, url)).headers['x-cache'], 'HIT', url);
    };
    /** Runs a write on a, waits until b has heard of it, and hands back b's fresh reads. */
    const writeOnA = async (write: () => Promise<unknown>) => {
      const heard = heardFromOther(b);
      await write();
      await heard;
      return Promise.all(reads.map((url) => getJson(b, url)));
    };

    await holdOnB();
    let [cheap, detail] = await writeOnA(() => getJson(a, `/api/products/${p.id}/`, { method: 'PATCH', headers: staff.headers, payload: { price: '20.00' } }));
    assert.deepEqual(cheap!.body.results.map((x: { id: number }) => x.id), [p.id], 'moved into the filtered list');
    assert.equal(detail!.body.price, '20.00');

    await holdOnB();
    let categories;
    [, detail, , categories] = await writeOnA(() => getJson(a, `/api/products/categories/${cat.id}/`, { method: 'PATCH', headers: staff.headers, payload: { name: 'Shared rack' } }));
    assert.equal(detail!.body.category.name, 'Shared rack');
    assert.ok(categories!.body.results.some((c: { name: string }) => c.name === 'Shared rack'));

    await holdOnB();
    let reviews;
    [, detail, reviews] = await writeOnA(() => getJson(a, `/api/products/${p.id}/reviews/`, { method: 'POST', headers: shopper.headers, payload: { rating: 5, review_text: 'Sturdy' } }));
    assert.equal(detail!.body.review_count, 1);
    assert.equal(reviews!.body.results[0].user_name, 'Ida W.');

    await holdOnB();
    [, , reviews] = await writeOnA(() => getJson(a, '/api/users/profile/', { method: 'PATCH', headers: shopper.headers, payload: { last_name: 'Barnett' } }));
    assert.equal(reviews!.body.results[0].user_name, 'Ida B.');

    // A signed-in user's cart, cached in the default store, follows a price change made on a.
    await getJson(b, '/api/cart/add/', { method: 'POST', headers: shopper.headers, payload: { product_id: p.id, quantity: 2 } });
    assert.equal((await getJson(b, '/api/cart/', { headers: shopper.headers })).body.total_price, '40.00');
    const heardDefault = heardFromOther(b, 'default');
    await getJson(a, `/api/products/${p.id}/`, { method: 'PATCH', headers: staff.headers, payload: { price: '21.00' } });
    await heardDefault;
    assert.equal((await getJson(b, '/api/cart/', { headers: shopper.headers })).body.total_price, '42.00');
  });
});
