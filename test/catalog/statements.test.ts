// No N+1: every catalog endpoint runs the same number of SQL statements whatever the page size
// and however many images and reviews the products have (measured with the cache off, so every
// request reaches the database); and with the cache on, a repeated read runs none.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { forEachBackend } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { seedCatalog } from '../../src/db/seed.ts';

forEachBackend('fixed statement counts', ({ db }) => {
  let app: FastifyInstance;
  let busy: number;
  let quiet: number;

  before(async () => {
    await seedCatalog(db(), { products: 150, seed: 7 });
    const d = db().db;
    // the product with the most reviews and one with none
    busy = (await d.selectFrom('products').select('id').where('is_active', '=', true).orderBy('review_count', 'desc').limit(1).executeTakeFirstOrThrow()).id;
    quiet = (await d.selectFrom('products').select('id').where('is_active', '=', true).where('review_count', '=', 0).limit(1).executeTakeFirstOrThrow()).id;
    app = await testApp(db(), { CACHE_ENABLED: 'false' });
  });
  after(() => app.close());

  async function statements(url: string): Promise<number> {
    const before = db().stats.statements;
    const r = await getJson(app, url);
    assert.equal(r.status, 200, `${url}: ${JSON.stringify(r.body)}`);
    return db().stats.statements - before;
  }

  for (const [name, base, expected] of [
    ['product list', '/api/products/?', 2],
    ['product list, filtered', '/api/products/?in_stock=true&min_price=1&ordering=-average_rating&', 2],
    ['product list, by category', '/api/products/?category=1,2&', 3],
    ['product list, search', '/api/products/?search=dragon&', 2],
    ['featured', '/api/products/featured/?', 2],
    ['categories', '/api/products/categories/?', 2],
    ['advanced search', '/api/products/advanced-search/?q=lamp&stock=in_stock&', 2],
    ['advanced search, by category and material', '/api/products/advanced-search/?category=1&material=PLA&', 3],
  ] as const) {
    test(`${name}: ${expected} statements for page sizes 1, 20 and 100`, async () => {
      const sizeParam = base.includes('advanced') ? 'per_page' : 'page_size';
      const counts = [];
      for (const size of [1, 20, 100]) counts.push(await statements(`${base}${sizeParam}=${size}`));
      assert.deepEqual(counts, [expected, expected, expected]);
    });
  }

  test('product detail: one statement with many reviews or none', async () => {
    assert.equal(await statements(`/api/products/${busy}/`), 1);
    assert.equal(await statements(`/api/products/${quiet}/`), 1);
  });

  test('reviews list: two statements for page sizes 1, 20 and 100', async () => {
    const counts = [];
    for (const size of [1, 20, 100]) counts.push(await statements(`/api/products/${busy}/reviews/?page_size=${size}`));
    assert.deepEqual(counts, [2, 2, 2]);
  });

  test('quick search: one statement when full text matches, two with the typo fallback', async () => {
    assert.equal(await statements('/api/products/search/?q=dragon'), 1);
    assert.equal(await statements('/api/products/search/?q=dragn'), 2);
  });

  test('with the cache on, a repeated read runs no SQL at all', async () => {
    const cached = await testApp(db());
    try {
      for (const url of ['/api/products/?category=1,2', `/api/products/${busy}/`, '/api/products/advanced-search/?q=lamp', '/api/products/categories/']) {
        await getJson(cached, url);
        const before = db().stats.statements;
        const again = await getJson(cached, url);
        assert.equal(again.headers['x-cache'], 'HIT');
        assert.equal(db().stats.statements - before, 0, url);
      }
    } finally {
      await cached.close();
    }
  });
});
