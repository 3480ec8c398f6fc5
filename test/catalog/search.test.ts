import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { forEachBackend } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import * as f from '../helpers/factories.ts';

forEachBackend('search', ({ db }) => {
  let app: FastifyInstance;
  const ids: Record<string, number> = {};

  before(async () => {
    const d = db().db;
    const minis = (await f.category(d, { name: 'Miniatures' })).id;
    const decor = (await f.category(d, { name: 'Home Decor' })).id;
    ids.dragon = (await f.product(d, { name: 'Articulated Dragon', description: 'A flexible 3D printed toy', category_id: minis, material: 'PLA', price: '25.00', weight: '80.00', stock_quantity: 2, print_time: 300 })).id;
    ids.wizard = (await f.product(d, { name: 'Wizard Bust', description: 'Painted resin miniature of a wizard', category_id: minis, material: 'Resin', price: '40.00', weight: '120.00', stock_quantity: 0, print_time: 600 })).id;
    ids.vase = (await f.product(d, { name: 'Spiral Vase', description: 'Decor piece with a dragon motif', category_id: decor, material: 'Silk PLA', price: '30.00', weight: '300.00', stock_quantity: 50, print_time: 900, is_featured: true })).id;
    ids.lamp = (await f.product(d, { name: 'Moon Lamp', description: 'Lithophane lamp', category_id: decor, material: 'PETG', price: '60.00', weight: '400.00', stock_quantity: 9 })).id;
    ids.hidden = (await f.product(d, { name: 'Dragon Retired', is_active: false, category_id: minis })).id;
    const u = await f.user(d);
    await f.review(d, ids.vase, u.id, 5);
    await f.review(d, ids.dragon, u.id, 3);
    app = await testApp(db());
  });
  after(() => app.close());

  const quick = async (q: string) => (await getJson(app, `/api/products/search/?q=${encodeURIComponent(q)}`)).body;

  test('prefixes find what a shopper means: 3d, drag, minia', async () => {
    assert.deepEqual((await quick('3d')).results.map((p: any) => p.id), [ids.dragon]);
    assert.deepEqual((await quick('minia')).results.map((p: any) => p.id).sort(), [ids.dragon, ids.wizard].sort()); // name/description or category
    const drag = await quick('drag');
    assert.equal(drag.count, 2);
    assert.deepEqual(drag.results.map((p: any) => p.id), [ids.dragon, ids.vase], 'name match (A) ranks above description match (B)');
  });

  test('typos fall back to trigram similarity', async () => {
    assert.deepEqual((await quick('dragn')).results.map((p: any) => p.id), [ids.dragon]);
    assert.deepEqual((await quick('wizzard')).results.map((p: any) => p.id), [ids.wizard]);
  });

  test('material and category words match; inactive never shows; short or empty queries give nothing', async () => {
    assert.deepEqual((await quick('petg')).results.map((p: any) => p.id), [ids.lamp]);
    assert.deepEqual((await quick('decor')).results.map((p: any) => p.id).sort(), [ids.vase, ids.lamp].sort());
    assert.ok(!(await quick('retired')).results.some((p: any) => p.id === ids.hidden));
    assert.deepEqual(await quick('d'), { results: [], count: 0 });
    assert.deepEqual(await quick(''), { results: [], count: 0 });
    assert.deepEqual(await quick("'\":*&|!()"), { results: [], count: 0 });
  });

  test('websearch syntax: phrases and exclusions', async () => {
    assert.deepEqual((await quick('dragon -vase')).results.map((p: any) => p.id), [ids.dragon]);
    assert.deepEqual((await quick('"moon lamp"')).results.map((p: any) => p.id), [ids.lamp]);
  });

  test('hostile input never errors', async () => {
    for (const q of ["'; drop table products; --", "it's", '::*', '""', '-', '\u0000x', 'a'.repeat(200), '🐉 dragon']) {
      const r = await getJson(app, `/api/products/search/?q=${encodeURIComponent(q)}`);
      assert.equal(r.status, 200, q);
    }
    assert.equal((await getJson(app, `/api/products/search/?q=${'a'.repeat(201)}`)).status, 400);
  });

  test('product list ?search= uses the same search, ranked unless ordered', async () => {
    const r = await getJson(app, '/api/products/?search=drag');
    assert.deepEqual(r.body.results.map((p: any) => p.id), [ids.dragon, ids.vase]);
    assert.equal(r.body.count, 2);
    const ordered = await getJson(app, '/api/products/?search=drag&ordering=-price');
    assert.deepEqual(ordered.body.results.map((p: any) => p.id), [ids.vase, ids.dragon]);
    assert.deepEqual((await getJson(app, '/api/products/?search=dragn')).body.results.map((p: any) => p.id), [ids.dragon]);
  });

  test('advanced search: filters, sorts, pagination and facet counts', async () => {
    const all = await getJson(app, '/api/products/advanced-search/');
    assert.equal(all.status, 200);
    assert.equal(all.body.count, 4);
    assert.equal(all.body.page, 1);
    assert.equal(all.body.per_page, 20);
    assert.equal(all.body.total_pages, 1);
    assert.deepEqual(all.body.filters.categories.map((c: any) => [c.name, c.count]), [['Home Decor', 2], ['Miniatures', 2]]);
    assert.deepEqual(all.body.filters.materials, ['PETG', 'PLA', 'Resin', 'Silk PLA']);
    assert.deepEqual(all.body.filters.price_range, { min: 25, max: 60 });
    assert.deepEqual(all.body.filters.weight_range, { min: 80, max: 400 });

    const q = async (qs: string) => (await getJson(app, `/api/products/advanced-search/?${qs}`)).body;
    const decorId = all.body.filters.categories[0].id;
    const byCat = await q(`category[]=${decorId}`);
    assert.deepEqual(byCat.results.map((p: any) => p.id).sort(), [ids.vase, ids.lamp].sort());
    assert.equal(byCat.filters.categories.length, 2, 'category facet ignores its own selection');
    assert.deepEqual((await q('material[]=PLA&material[]=Resin')).results.map((p: any) => p.id).sort(), [ids.dragon, ids.wizard].sort());
    const both = await q(`category[]=${decorId}&material=PETG`);
    assert.deepEqual(both.results.map((p: any) => p.id), [ids.lamp]);
    assert.deepEqual(both.filters.categories.map((c: any) => [c.name, c.count]), [['Home Decor', 1]], 'category counts honour the material choice');
    assert.deepEqual(both.filters.material_counts, [{ name: 'PETG', count: 1 }, { name: 'Silk PLA', count: 1 }], 'material counts honour the category choice');
    assert.deepEqual((await q('stock=out_of_stock')).results.map((p: any) => p.id), [ids.wizard]);
    assert.deepEqual((await q('stock=low_stock')).results.map((p: any) => p.id), [ids.dragon]);
    assert.deepEqual((await q('min_weight=100&max_weight=300&sort=price_desc')).results.map((p: any) => p.id), [ids.wizard, ids.vase]);
    assert.deepEqual((await q('max_print_time=300')).results.map((p: any) => p.id).sort(), [ids.dragon, ids.lamp].sort());
    assert.deepEqual((await q('featured=true')).results.map((p: any) => p.id), [ids.vase]);
    assert.deepEqual((await q('min_rating=4')).results.map((p: any) => p.id), [ids.vase]);
    assert.deepEqual((await q('sort=rating')).results.map((p: any) => p.id).slice(0, 2), [ids.vase, ids.dragon]);
    assert.deepEqual((await q('sort=price_asc&min_price=26&max_price=60')).results.map((p: any) => p.id), [ids.vase, ids.wizard, ids.lamp]);
    const page2 = await q('per_page=3&page=2&sort=price_asc');
    assert.deepEqual(page2.results.map((p: any) => p.id), [ids.lamp]);
    assert.equal(page2.total_pages, 2);
    const text = await q('q=dragon');
    assert.deepEqual(text.results.map((p: any) => p.id), [ids.dragon, ids.vase]);
    assert.deepEqual(text.filters.categories.map((c: any) => c.count), [1, 1]);
    assert.deepEqual((await q('q=dragn')).results.map((p: any) => p.id), [ids.dragon]);
  });

  test('advanced search: bad values are 400 with field errors', async () => {
    const bad = await getJson(app, '/api/products/advanced-search/?sort=cheapest&min_price=abc&per_page=500&stock=some');
    assert.equal(bad.status, 400);
    assert.deepEqual(Object.keys(bad.body.errors).sort(), ['min_price', 'per_page', 'sort', 'stock']);
    assert.deepEqual(bad.body.errors.per_page, ['Ensure this value is less than or equal to 100.']);
    for (const v of ['Infinity', '-Infinity', 'NaN', '0x10', ' 5']) {
      const r = await getJson(app, `/api/products/advanced-search/?min_rating=${encodeURIComponent(v)}&page=${encodeURIComponent(v)}`);
      assert.equal(r.status, 400, v);
      assert.deepEqual(Object.keys(r.body.errors).sort(), ['min_rating', 'page'], v);
    }
    const range = await getJson(app, '/api/products/advanced-search/?min_price=50&max_price=10');
    assert.equal(range.status, 400);
    assert.ok(range.body.errors.max_price);
  });
});
