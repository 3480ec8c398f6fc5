// Staff catalog management: who may write, what a write returns and stores, what bad input
// leaves behind (nothing), the events after commit, and the low-stock report.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { DomainEvents, EventName } from '../../src/infra/events.ts';
import { forEachBackend } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import * as f from '../helpers/factories.ts';

const DETAIL_KEYS = [
  'average_rating', 'category', 'category_name', 'created_at', 'description', 'dimensions', 'id', 'images', 'is_active', 'is_featured', 'is_in_stock',
  'low_stock_threshold', 'main_image', 'material', 'name', 'price', 'print_time', 'review_count', 'reviews', 'search_vector', 'sku', 'stock_quantity', 'updated_at', 'weight',
];
const CATEGORY_KEYS = ['created_at', 'description', 'id', 'image', 'image_variants', 'is_active', 'name', 'products_count', 'updated_at'];
const BAD_REQUEST = 'Bad request. Please check your input.';
const NOT_FOUND = { error: true, message: 'Not found.', status_code: 404, code: 'not_found' };

forEachBackend('staff catalog management', ({ db }) => {
  let app: FastifyInstance;
  let staff: TestUser;
  let customer: TestUser;
  let minis: number;
  let lamps: number;
  let skuN = 0;

  const d = () => db().db;
  const call = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, who?: TestUser | null, payload?: unknown) =>
    getJson(app, url, { method, ...(payload === undefined ? {} : { payload: payload as object }), headers: who ? who.headers : {} });
  const snapshot = async () => ({
    products: await d().selectFrom('products').selectAll().orderBy('id').execute(),
    categories: await d().selectFrom('categories').selectAll().orderBy('id').execute(),
  });
  const productRow = (id: number) => d().selectFrom('products').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const newProduct = (o: Record<string, unknown> = {}) => ({ name: 'Dragon Bust', price: '19.99', category: minis, sku: `ADM-${++skuN}`, ...o });

  /** Records an event's payloads, and whether the written row was visible (committed) when it fired. */
  function watch<K extends EventName>(name: K, visible: (p: DomainEvents[K]) => Promise<boolean>) {
    const seen: { payload: DomainEvents[K]; committed: Promise<boolean> }[] = [];
    const off = app.events.on(name, (payload) => {
      seen.push({ payload, committed: visible(payload) });
    });
    return {
      async payloads() {
        assert.ok((await Promise.all(seen.map((s) => s.committed))).every(Boolean), `${name} fired before its write was visible`);
        off();
        return seen.map((s) => s.payload);
      },
    };
  }

  before(async () => {
    minis = (await f.category(d(), { name: 'Admin Minis' })).id;
    lamps = (await f.category(d(), { name: 'Admin Lamps' })).id;
    app = await testApp(db());
    staff = await signedIn(app, db(), { staff: true });
    customer = await signedIn(app, db());
  });
  after(() => app.close());

  test('every write refuses anonymous callers (401) and customers (403) and changes nothing', async () => {
    const p = await f.product(d(), { category_id: minis });
    const writes: [Parameters<typeof call>[0], string, unknown][] = [
      ['POST', '/api/products/', newProduct()],
      ['PUT', `/api/products/${p.id}/`, newProduct()],
      ['PATCH', `/api/products/${p.id}/`, { price: '1.00' }],
      ['DELETE', `/api/products/${p.id}/`, undefined],
      ['POST', '/api/products/categories/', { name: 'Never' }],
      ['PUT', `/api/products/categories/${minis}/`, { name: 'Never' }],
      ['PATCH', `/api/products/categories/${minis}/`, { name: 'Never' }],
      ['DELETE', `/api/products/categories/${minis}/`, undefined],
    ];
    const before_ = await snapshot();
    for (const [method, url, payload] of writes) {
      const anon = await call(method, url, null, payload);
      assert.equal(anon.status, 401, `${method} ${url}`);
      assert.deepEqual(anon.body, { error: true, message: 'Authentication credentials were not provided.', status_code: 401, code: 'not_authenticated' });
      assert.equal(anon.headers['www-authenticate'], 'Bearer realm="api"');
      const invalid = await call(method, url, { headers: { authorization: 'Bearer not-a-token' } } as TestUser, payload);
      assert.equal(invalid.status, 401);
      assert.equal(invalid.body.code, 'token_not_valid');
      const denied = await call(method, url, customer, payload);
      assert.equal(denied.status, 403, `${method} ${url}`);
      assert.deepEqual(denied.body, { error: true, message: 'You do not have permission to perform this action.', status_code: 403, code: 'permission_denied' });
    }
    // the permission check comes before the body is looked at
    assert.equal((await call('POST', '/api/products/', null, { price: -1 })).status, 401);
    assert.equal((await call('POST', '/api/products/', customer, { price: -1 })).status, 403);
    assert.deepEqual(await snapshot(), before_);
  });

  test('staff create a product: 201 with the detail shape; category_id is an alias; event after commit', async () => {
    const events = watch('product.created', async ({ id }) => (await d().selectFrom('products').select('id').where('id', '=', id).executeTakeFirst()) !== undefined);
    const r = await call('POST', '/api/products/', staff, {
      name: '  Moon Lamp ', description: 'Glows', price: 12.5, category: lamps, sku: 'ADM-LAMP', stock_quantity: 4, weight: '150', dimensions: '10x10x10',
      material: 'PLA', print_time: 240, is_featured: true, low_stock_threshold: 2, search_vector: 'ignored', review_count: 99,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), DETAIL_KEYS);
    assert.equal(r.body.name, 'Moon Lamp');
    assert.equal(r.body.price, '12.50');
    assert.equal(r.body.weight, '150.00');
    assert.equal(r.body.sku, 'ADM-LAMP');
    assert.equal(r.body.stock_quantity, 4);
    assert.equal(r.body.print_time, 240);
    assert.equal(r.body.low_stock_threshold, 2);
    assert.equal(r.body.is_active, true);
    assert.equal(r.body.is_featured, true);
    assert.equal(r.body.is_in_stock, true);
    assert.equal(r.body.review_count, 0);
    assert.equal(r.body.average_rating, 0);
    assert.equal(r.body.category.id, lamps);
    assert.equal(r.body.category_name, 'Admin Lamps');
    assert.deepEqual(r.body.reviews, []);
    const row = await productRow(r.body.id);
    assert.equal(row.price, '12.50');
    assert.equal(row.review_count, 0);
    assert.equal((await getJson(app, `/api/products/${r.body.id}/`)).status, 200);

    const alias = await call('POST', '/api/products/', staff, { name: 'Knight', price: '0', category_id: minis, sku: 'ADM-KNIGHT' });
    assert.equal(alias.status, 201, JSON.stringify(alias.body));
    assert.equal(alias.body.category.id, minis);
    assert.equal(alias.body.price, '0.00');
    assert.equal(alias.body.stock_quantity, 0);
    assert.equal(alias.body.weight, '0.00');
    const created = await events.payloads();
    assert.deepEqual(created.map((e) => e.id), [r.body.id, alias.body.id]);
    // The row as written, for subscribers to tell what it changed (cache invalidation).
    assert.deepEqual(created.map((e) => [e.after.id, e.after.is_active, e.after.stock_quantity]), [[r.body.id, true, 4], [alias.body.id, true, alias.body.stock_quantity]]);
    assert.equal(created[0]!.after.category_id, lamps);
  });

  test('bad product input is 400 with field errors and writes nothing', async () => {
    const taken = await f.product(d(), { category_id: minis });
    const cases: [unknown, Record<string, string[]>][] = [
      [{}, { name: ['This field is required.'], price: ['This field is required.'], category: ['This field is required.'], sku: ['This field is required.'] }],
      [newProduct({ stock_quantity: -1 }), { stock_quantity: ['Ensure this value is greater than or equal to 0.'] }],
      [newProduct({ stock_quantity: 1.5 }), { stock_quantity: ['A valid integer is required.'] }],
      [newProduct({ print_time: -5, low_stock_threshold: -1 }), { print_time: ['Ensure this value is greater than or equal to 0.'], low_stock_threshold: ['Ensure this value is greater than or equal to 0.'] }],
      [newProduct({ price: 'abc' }), { price: ['A valid number is required.'] }],
      [newProduct({ price: '' }), { price: ['A valid number is required.'] }],
      [newProduct({ price: '1e3' }), { price: ['A valid number is required.'] }],
      [newProduct({ price: '-0.01' }), { price: ['Ensure this value is greater than or equal to 0.'] }],
      [newProduct({ price: -3 }), { price: ['Ensure this value is greater than or equal to 0.'] }],
      [newProduct({ price: '1.999' }), { price: ['Ensure that there are no more than 2 decimal places.'] }],
      [newProduct({ price: '123456789' }), { price: ['Ensure that there are no more than 8 digits before the decimal point.'] }],
      [newProduct({ price: '100000000.00' }), { price: ['Ensure that there are no more than 10 digits in total.'] }],
      [newProduct({ weight: '-1' }), { weight: ['Ensure this value is greater than or equal to 0.'] }],
      [newProduct({ category: 999999 }), { category: ['Invalid pk "999999" - object does not exist.'] }],
      [newProduct({ category: 'lamps' }), { category: ['A valid integer is required.'] }],
      [newProduct({ sku: taken.sku }), { sku: ['product with this sku already exists.'] }],
      [newProduct({ name: '   ' }), { name: ['This field may not be blank.'] }],
      [newProduct({ name: 'x'.repeat(201) }), { name: ['Ensure this field has no more than 200 characters.'] }],
      [[newProduct()], { non_field_errors: ['Invalid data. Expected a dictionary.'] }],
      [newProduct({ price: '1.234', category: 999999, sku: taken.sku }), { price: ['Ensure that there are no more than 2 decimal places.'], category: ['Invalid pk "999999" - object does not exist.'], sku: ['product with this sku already exists.'] }],
    ];
    const before_ = await snapshot();
    for (const [payload, errors] of cases) {
      const r = await call('POST', '/api/products/', staff, payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.deepEqual(r.body, { error: true, message: BAD_REQUEST, status_code: 400, code: 'bad_request', errors }, JSON.stringify(payload));
    }
    const empty = await call('POST', '/api/products/', staff);
    assert.equal(empty.status, 400);
    assert.deepEqual(await snapshot(), before_);
  });

  test('two creates racing for one sku: one 201, one 400 sku error', async () => {
    const body = newProduct();
    const results = await Promise.all([call('POST', '/api/products/', staff, body), call('POST', '/api/products/', staff, body)]);
    assert.deepEqual(results.map((r) => r.status).sort(), [201, 400]);
    assert.deepEqual(results.find((r) => r.status === 400)!.body.errors, { sku: ['product with this sku already exists.'] });
    assert.equal((await d().selectFrom('products').select('id').where('sku', '=', body.sku).execute()).length, 1);
  });

  test('PATCH changes any subset (stock and price included); PUT needs the required fields', async () => {
    const p = await f.product(d(), { category_id: minis, price: '10.00', stock_quantity: 10 });
    const other = await f.product(d(), { category_id: minis });
    const events = watch('product.updated', async ({ id }) => (await productRow(id)).updated_at !== p.updated_at);

    const patched = await call('PATCH', `/api/products/${p.id}/`, staff, { price: '15', stock_quantity: 3, is_verified_purchase: true, average_rating: 5 });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.price, '15.00');
    assert.equal(patched.body.stock_quantity, 3);
    assert.equal(patched.body.name, p.name);
    assert.equal(patched.body.average_rating, 0);
    let row = await productRow(p.id);
    assert.equal(row.price, '15.00');
    assert.equal(row.stock_quantity, 3);
    assert.notEqual(row.updated_at, p.updated_at);
    assert.equal(row.created_at, p.created_at);

    const moved = await call('PATCH', `/api/products/${p.id}/`, staff, { category_id: lamps, sku: p.sku });
    assert.equal(moved.status, 200, 'its own sku is not a duplicate');
    assert.equal(moved.body.category.id, lamps);

    const before_ = await snapshot();
    for (const [payload, errors] of [
      [{ sku: other.sku }, { sku: ['product with this sku already exists.'] }],
      [{ category: 999999 }, { category: ['Invalid pk "999999" - object does not exist.'] }],
      [{ stock_quantity: -1 }, { stock_quantity: ['Ensure this value is greater than or equal to 0.'] }],
      [{ price: 'ten' }, { price: ['A valid number is required.'] }],
    ] as const) {
      const r = await call('PATCH', `/api/products/${p.id}/`, staff, payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.deepEqual(r.body.errors, errors);
    }
    const incomplete = await call('PUT', `/api/products/${p.id}/`, staff, { name: 'Only a name' });
    assert.equal(incomplete.status, 400);
    assert.deepEqual(incomplete.body.errors, { price: ['This field is required.'], category: ['This field is required.'], sku: ['This field is required.'] });
    assert.deepEqual(await snapshot(), before_);

    const put = await call('PUT', `/api/products/${p.id}/`, staff, { name: 'Replaced', price: '7.25', category: minis, sku: 'ADM-PUT' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    row = await productRow(p.id);
    assert.deepEqual([row.name, row.price, row.category_id, row.sku, row.stock_quantity], ['Replaced', '7.25', minis, 'ADM-PUT', 3]);

    const payloads = await events.payloads();
    assert.deepEqual(payloads.map((e) => e.id), [p.id, p.id, p.id]);
    assert.deepEqual(payloads[0]!.fields.sort(), ['price', 'stock_quantity']);
    assert.deepEqual(payloads[2]!.fields.sort(), ['category_id', 'name', 'price', 'sku']);
    // Each carries the row before and after the write.
    assert.notEqual(payloads[2]!.before.name, payloads[2]!.after.name);
    assert.deepEqual([payloads[2]!.after.name, payloads[2]!.after.price, payloads[2]!.after.category_id], ['Replaced', '7.25', minis]);
  });

  test('DELETE deactivates: 204, public reads stop showing it, the row stays; staff can edit and reactivate it', async () => {
    const p = await f.product(d(), { category_id: lamps, name: 'Retiring' });
    const events = watch('product.deleted', async ({ id }) => !(await productRow(id)).is_active);
    const r = await app.inject({ method: 'DELETE', url: `/api/products/${p.id}/`, headers: staff.headers });
    assert.equal(r.statusCode, 204);
    assert.equal(r.body, '');
    assert.equal((await productRow(p.id)).is_active, false);
    assert.deepEqual((await getJson(app, `/api/products/${p.id}/`)).body, NOT_FOUND);
    const list = await getJson(app, `/api/products/?category=${lamps}&page_size=100`);
    assert.ok(!list.body.results.some((c: any) => c.id === p.id));
    const deleted = await events.payloads();
    assert.deepEqual(deleted.map((e) => [e.id, e.before.id, e.before.is_active, e.before.category_id]), [[p.id, p.id, true, lamps]]);

    const edited = await call('PATCH', `/api/products/${p.id}/`, staff, { name: 'Still retired' });
    assert.equal(edited.status, 200);
    assert.equal(edited.body.is_active, false);
    assert.equal(edited.body.name, 'Still retired');
    const back = await call('PATCH', `/api/products/${p.id}/`, staff, { is_active: true });
    assert.equal(back.body.is_active, true);
    assert.equal((await getJson(app, `/api/products/${p.id}/`)).status, 200);

    for (const method of ['PUT', 'PATCH', 'DELETE'] as const) {
      const missing = await call(method, '/api/products/999999/', staff, method === 'DELETE' ? undefined : newProduct());
      assert.equal(missing.status, 404, method);
      assert.deepEqual(missing.body, NOT_FOUND);
    }
  });

  test('categories: create, read, change, deactivate; names are unique', async () => {
    const created = watch('category.created', async ({ id }) => (await d().selectFrom('categories').select('id').where('id', '=', id).executeTakeFirst()) !== undefined);
    const r = await call('POST', '/api/products/categories/', staff, { name: ' Vases ', description: 'For flowers' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), CATEGORY_KEYS);
    assert.deepEqual([r.body.name, r.body.description, r.body.is_active, r.body.products_count, r.body.image], ['Vases', 'For flowers', true, 0, null]);
    const id = r.body.id;
    assert.deepEqual(await created.payloads(), [{ id }]);
    assert.deepEqual((await getJson(app, `/api/products/categories/${id}/`)).body, r.body);
    assert.equal((await getJson(app, `/api/products/categories/${minis}/`)).body.products_count > 0, true);

    const before_ = await snapshot();
    for (const [payload, errors] of [
      [{ name: 'Admin Minis' }, { name: ['category with this name already exists.'] }],
      [{ name: '  ' }, { name: ['This field may not be blank.'] }],
      [{ description: 'no name' }, { name: ['This field is required.'] }],
      [{ name: 'x'.repeat(101) }, { name: ['Ensure this field has no more than 100 characters.'] }],
    ] as const) {
      const bad = await call('POST', '/api/products/categories/', staff, payload);
      assert.equal(bad.status, 400, JSON.stringify(payload));
      assert.deepEqual(bad.body, { error: true, message: BAD_REQUEST, status_code: 400, code: 'bad_request', errors });
    }
    const dup = await call('PATCH', `/api/products/categories/${id}/`, staff, { name: 'Admin Lamps' });
    assert.deepEqual(dup.body.errors, { name: ['category with this name already exists.'] });
    assert.equal((await call('PUT', `/api/products/categories/${id}/`, staff, { description: 'x' })).status, 400);
    assert.deepEqual(await snapshot(), before_);

    const updated = watch('category.updated', async () => true);
    const patched = await call('PATCH', `/api/products/categories/${id}/`, staff, { description: 'Tall ones' });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.name, 'Vases');
    assert.equal(patched.body.description, 'Tall ones');
    assert.notEqual(patched.body.updated_at, r.body.updated_at);
    const put = await call('PUT', `/api/products/categories/${id}/`, staff, { name: 'Tall Vases' });
    assert.equal(put.status, 200);
    assert.deepEqual([put.body.name, put.body.description], ['Tall Vases', 'Tall ones']);
    assert.deepEqual(await updated.payloads(), [{ id, fields: ['description'] }, { id, fields: ['name'] }]);

    const deleted = watch('category.deleted', async () => true);
    const gone = await app.inject({ method: 'DELETE', url: `/api/products/categories/${id}/`, headers: staff.headers });
    assert.equal(gone.statusCode, 204);
    assert.equal(gone.body, '');
    assert.deepEqual(await deleted.payloads(), [{ id }]);
    assert.deepEqual((await getJson(app, `/api/products/categories/${id}/`)).body, NOT_FOUND);
    const list = await getJson(app, '/api/products/categories/?page_size=100');
    assert.ok(!list.body.results.some((c: any) => c.id === id));
    assert.equal((await d().selectFrom('categories').select('is_active').where('id', '=', id).executeTakeFirstOrThrow()).is_active, false);
    const revived = await call('PATCH', `/api/products/categories/${id}/`, staff, { is_active: true });
    assert.equal(revived.body.is_active, true);
    for (const method of ['PUT', 'PATCH', 'DELETE'] as const) {
      const missing = await call(method, '/api/products/categories/999999/', staff, method === 'DELETE' ? undefined : { name: 'Nope' });
      assert.deepEqual([missing.status, missing.body], [404, NOT_FOUND], method);
    }
    assert.deepEqual((await getJson(app, '/api/products/categories/abc/')).body, NOT_FOUND);
  });

  test('low stock: staff only (403 {"error":"Permission denied"} otherwise), lowest stock first', async () => {
    const cat = (await f.category(d(), { name: 'Low Stock Shelf' })).id;
    const mk = (stock_quantity: number, o: f.ProductOverrides = {}) => f.product(d(), { category_id: cat, stock_quantity, low_stock_threshold: 5, ...o }).then((p) => p.id);
    const three = await mk(3);
    const oneA = await mk(1);
    const five = await mk(5);
    const oneB = await mk(1);
    await mk(0);
    await mk(6);
    await mk(2, { low_stock_threshold: 1 });
    await mk(1, { is_active: false });

    for (const who of [null, customer]) {
      const r = await call('GET', '/api/products/low-stock/', who);
      assert.equal(r.status, 403);
      assert.deepEqual(r.body, { error: 'Permission denied' });
    }
    assert.equal((await call('GET', '/api/products/low-stock/', { headers: { authorization: 'Bearer nope' } } as TestUser)).status, 401);

    const r = await call('GET', '/api/products/low-stock/', staff);
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['count', 'results']);
    assert.equal(r.body.count, r.body.results.length);
    const mine = r.body.results.filter((c: any) => c.category_name === 'Low Stock Shelf').map((c: any) => c.id);
    assert.deepEqual(mine, [Math.min(oneA, oneB), Math.max(oneA, oneB), three, five]);
    const rows = await d().selectFrom('products').select(['id', 'stock_quantity', 'low_stock_threshold', 'is_active']).execute();
    const byId = new Map(rows.map((p) => [p.id, p]));
    const expected = rows
      .filter((p) => p.is_active && p.stock_quantity > 0 && p.stock_quantity <= p.low_stock_threshold)
      .sort((a, b) => a.stock_quantity - b.stock_quantity || a.id - b.id)
      .map((p) => p.id);
    assert.deepEqual(r.body.results.map((c: any) => c.id), expected);
    assert.ok(r.body.results.every((c: any) => c.is_in_stock && byId.get(c.id)!.is_active));
  });

  test('the OpenAPI document lists the staff routes with bearer security', async () => {
    const spec = (await getJson(app, '/api/docs/json')).body;
    const routes: [string, string][] = [
      ['/api/products/', 'post'],
      ['/api/products/{id}/', 'put'],
      ['/api/products/{id}/', 'patch'],
      ['/api/products/{id}/', 'delete'],
      ['/api/products/categories/', 'post'],
      ['/api/products/categories/{id}/', 'put'],
      ['/api/products/categories/{id}/', 'patch'],
      ['/api/products/categories/{id}/', 'delete'],
      ['/api/products/low-stock/', 'get'],
    ];
    for (const [path, method] of routes) {
      const op = spec.paths[path]?.[method];
      assert.ok(op, `${method} ${path}`);
      assert.deepEqual(op.security, [{ bearerAuth: [] }], `${method} ${path}`);
      assert.ok(op.summary && op.tags?.length, `${method} ${path}`);
    }
    assert.ok(spec.paths['/api/products/categories/{id}/'].get);
    assert.ok(spec.paths['/api/products/'].post.requestBody);
  });
});
