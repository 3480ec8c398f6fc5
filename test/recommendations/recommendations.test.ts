// Recommendations (API-CONTRACT.md §2.8): the order and reasons of a product's recommendations,
// the views they record, personalized and trending from real views and orders, the staff's
// links, and a fixed number of statements per request. Tests run in order on one database and
// build on what earlier ones left (a new shop first), so shop-wide rankings use clear margins.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../src/db/database.ts';
import type { OrderStatus } from '../../src/db/schema.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

const CARD_KEYS = ['average_rating', 'category_name', 'id', 'is_featured', 'is_in_stock', 'main_image', 'name', 'price', 'review_count'];
const ago = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
const ids = (body: { id: number }[]) => body.map((p) => p.id);

/** An order with one line per [product, quantity], `daysAgo` days old. */
async function order(db: Db, lines: [productId: number, quantity?: number][], o: { status?: OrderStatus; daysAgo?: number } = {}) {
  const at = ago(o.daysAgo ?? 0);
  const { id } = await db
    .insertInto('orders')
    .values({ order_number: randomBytes(6).toString('hex').toUpperCase(), status: o.status ?? 'processing', subtotal: '10.00', total_amount: '10.00', created_at: at, updated_at: at })
    .returning('id')
    .executeTakeFirstOrThrow();
  await db
    .insertInto('order_items')
    .values(lines.map(([productId, quantity = 1]) => ({ order_id: id, product_id: productId, product_name: 'Print', product_sku: 'SKU', product_weight: '1.00', unit_price: '10.00', quantity, total_price: '10.00', total_weight: '1.00' })))
    .execute();
}

/** `n` views of a product by a user, a session or nobody in particular, `daysAgo` days old. */
async function views(db: Db, productId: number, n: number, o: { userId?: number; sessionKey?: string; daysAgo?: number } = {}) {
  const row = { product_id: productId, user_id: o.userId ?? null, session_key: o.sessionKey ?? null, viewed_at: ago(o.daysAgo ?? 0) };
  await db.insertInto('product_views').values(Array.from({ length: n }, () => row)).execute();
}

/** A guest with a session (the cart starts one), keeping its cookie like a browser. */
async function guest(app: FastifyInstance) {
  const r = await getJson(app, '/api/cart/');
  const cookie = String(r.headers['set-cookie']).split(';')[0]!;
  return { headers: { cookie }, sessionKey: cookie.split('=')[1]! };
}

forEachBackend('recommendations', ({ db }) => {
  let app: FastifyInstance;
  let staff: TestUser;
  let customer: TestUser;
  before(async () => {
    app = await testApp(db());
    staff = await signedIn(app, db(), { staff: true });
    customer = await signedIn(app, db());
  });
  after(async () => {
    await app.close();
  });
  // Factories write rows directly, without the events that drop cached lists.
  const freshCaches = () => Promise.all([app.caches.default.clear(), app.caches.api.clear()]);
  const viewRows = (productId: number) => db().db.selectFrom('product_views').select(['user_id', 'session_key']).where('product_id', '=', productId).orderBy('id').execute();

  test('a new shop: trending and personalized are featured products, then the newest', async () => {
    await freshCaches();
    const d = db().db;
    const cat = await f.category(d);
    const older = await f.product(d, { category_id: cat.id, created_at: '2024-03-01T00:00:00Z' });
    const featured = await f.product(d, { category_id: cat.id, is_featured: true, created_at: '2024-01-01T00:00:00Z' });
    const newest = await f.product(d, { category_id: cat.id, created_at: '2024-06-01T00:00:00Z' });
    await f.product(d, { category_id: cat.id, is_featured: true, is_active: false, created_at: '2024-07-01T00:00:00Z' });
    const expected = [featured.id, newest.id, older.id];
    const trending = await getJson(app, '/api/recommendations/trending/');
    assert.equal(trending.status, 200);
    assert.deepEqual(ids(trending.body), expected);
    assert.deepEqual(Object.keys(trending.body[0]).sort(), CARD_KEYS);
    assert.deepEqual(ids((await getJson(app, '/api/recommendations/personalized/')).body), expected);
    assert.deepEqual(ids((await getJson(app, '/api/recommendations/personalized/', { headers: customer.headers })).body), expected);
  });

  test('product: staff links by strength, then bought together, then the same category; each once, never itself or an inactive one', async () => {
    const d = db().db;
    const [home, other] = [await f.category(d), await f.category(d)];
    const target = await f.product(d, { category_id: home.id, created_at: '2023-01-01T00:00:00Z' });
    const inCat = async (created_at: string, o: f.ProductOverrides = {}) => f.product(d, { category_id: home.id, created_at, ...o });
    const featured = await inCat('2024-01-01T00:00:00Z', { is_featured: true });
    const n4 = await inCat('2024-02-01T00:00:00Z');
    const n3 = await inCat('2024-03-01T00:00:00Z');
    const n2 = await inCat('2024-04-01T00:00:00Z');
    const n1 = await inCat('2024-05-01T00:00:00Z');
    await inCat('2024-06-01T00:00:00Z', { is_active: false });
    const elsewhere = async (o: f.ProductOverrides = {}) => f.product(d, { category_id: other.id, ...o });
    const [similar, upgrade, bundle, hidden] = [await elsewhere(), await elsewhere(), await elsewhere(), await elsewhere({ is_active: false })];
    const [b1, b2, b3, bx] = [await elsewhere(), await elsewhere(), await elsewhere(), await elsewhere()];
    const link = (related: number, relationship_type: 'similar' | 'complementary' | 'bundle' | 'upgrade', strength: string) =>
      d.insertInto('product_relationships').values({ product_id: target.id, related_product_id: related, relationship_type, strength }).execute();
    await link(similar.id, 'similar', '0.90');
    await link(similar.id, 'complementary', '0.40');
    await link(upgrade.id, 'upgrade', '0.60');
    await link(bundle.id, 'bundle', '0.50');
    await link(hidden.id, 'similar', '1.00');
    // Old orders, so they stay out of this week's trending.
    await order(d, [[target.id], [b1.id], [n1.id], [similar.id]], { daysAgo: 20, status: 'delivered' });
    await order(d, [[target.id], [b1.id]], { daysAgo: 20 });
    await order(d, [[target.id], [b3.id]], { daysAgo: 20 });
    await order(d, [[target.id], [bx.id]], { daysAgo: 20, status: 'cancelled' });
    await order(d, [[b1.id], [b2.id]], { daysAgo: 20 });

    const r = await getJson(app, `/api/recommendations/product/${target.id}/`);
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.map((p: { id: number; recommendation_reason: string }) => [p.id, p.recommendation_reason]),
      [
        [similar.id, 'Similar Product'],
        [b1.id, 'Frequently bought together'], // in two orders
        [b3.id, 'Frequently bought together'], // one order each: the newer product first
        [n1.id, 'Frequently bought together'], // bought together beats the same category
        [upgrade.id, 'Upgrade Option'],
        [bundle.id, 'Bundle Suggestion'], // 0.5: a staff link goes before the category's 0.5
        [featured.id, 'Same category'], // featured first
        [n2.id, 'Same category'], // then the newest; n3, n4 are past the 8
      ],
    );
    assert.deepEqual(Object.keys(r.body[0]).sort(), [...CARD_KEYS, 'recommendation_reason'].sort());
    assert.equal(r.body[0].price, '10.00');
    assert.ok(!ids(r.body).includes(target.id), 'never the product itself');
    assert.equal(new Set(ids(r.body)).size, r.body.length, 'no duplicates');
    for (const absent of [hidden.id, bx.id, b2.id, n3.id, n4.id]) assert.ok(!ids(r.body).includes(absent));

    // A product nobody linked or bought with anything: up to 4 of its category.
    const lone = await getJson(app, `/api/recommendations/product/${n4.id}/`);
    assert.deepEqual(
      lone.body.map((p: { id: number; recommendation_reason: string }) => [p.id, p.recommendation_reason]),
      [featured.id, n1.id, n2.id, n3.id].map((id) => [id, 'Same category']),
    );
  });

  test('unknown, inactive or malformed product: 404 wrapped, and no view recorded', async () => {
    const inactive = await f.product(db().db, { is_active: false });
    for (const id of ['987654321', String(inactive.id), 'abc', '0', '99999999999']) {
      const r = await getJson(app, `/api/recommendations/product/${id}/`, { headers: customer.headers });
      assert.equal(r.status, 404, id);
      assert.deepEqual(r.body, { error: true, message: 'Not found.', status_code: 404, code: 'not_found' });
    }
    assert.deepEqual(await viewRows(inactive.id), []);
  });

  test('the view is recorded for a user and for a guest with a session, also when the list comes from the cache; no session is started', async () => {
    const p = await f.product(db().db);
    const anon = await getJson(app, `/api/recommendations/product/${p.id}/`);
    assert.equal(anon.status, 200);
    assert.equal(anon.headers['set-cookie'], undefined, 'no session for a product page');
    assert.equal(anon.headers['cache-control'], 'private, no-store');
    assert.deepEqual(await viewRows(p.id), [], 'nobody to record it for');
    await getJson(app, `/api/recommendations/product/${p.id}/`, { headers: customer.headers });
    await getJson(app, `/api/recommendations/product/${p.id}/`, { headers: customer.headers });
    const g = await guest(app);
    await getJson(app, `/api/recommendations/product/${p.id}/`, { headers: g.headers });
    assert.deepEqual(await viewRows(p.id), [
      { user_id: customer.id, session_key: null },
      { user_id: customer.id, session_key: null },
      { user_id: null, session_key: g.sessionKey },
    ]);
    const forged = await getJson(app, `/api/recommendations/product/${p.id}/`, { headers: { cookie: 'sessionid=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } });
    assert.equal(forged.status, 200);
    assert.equal((await viewRows(p.id)).length, 3, 'an unknown session key records nothing');
  });

  test('personalized: unviewed products of the most viewed categories of the last 30 days, then the most viewed products', async () => {
    await freshCaches();
    const d = db().db;
    const [x, y, z, w] = [await f.category(d), await f.category(d), await f.category(d), await f.category(d)];
    const x1 = await f.product(d, { category_id: x.id, created_at: '2025-01-01T00:00:00Z' });
    const x2 = await f.product(d, { category_id: x.id, is_featured: true, created_at: '2024-01-01T00:00:00Z' });
    const x3 = await f.product(d, { category_id: x.id, created_at: '2025-03-01T00:00:00Z' });
    const x4 = await f.product(d, { category_id: x.id, created_at: '2024-06-01T00:00:00Z' });
    await f.product(d, { category_id: x.id, is_active: false, created_at: '2025-04-01T00:00:00Z' });
    const y1 = await f.product(d, { category_id: y.id, created_at: '2025-01-01T00:00:00Z' });
    const y2 = await f.product(d, { category_id: y.id, created_at: '2025-02-01T00:00:00Z' });
    const y3 = await f.product(d, { category_id: y.id, created_at: '2024-02-01T00:00:00Z' });
    const z1 = await f.product(d, { category_id: z.id });
    const z2 = await f.product(d, { category_id: z.id });
    const popular = await f.product(d, { category_id: w.id });
    const user = await signedIn(app, db());
    await views(d, x1.id, 2, { userId: user.id });
    await views(d, y1.id, 1, { userId: user.id, daysAgo: 3 });
    await views(d, z1.id, 5, { userId: user.id, daysAgo: 40 });
    await views(d, popular.id, 12, { daysAgo: 2 });

    const mine = await getJson(app, '/api/recommendations/personalized/', { headers: user.headers });
    assert.equal(mine.status, 200);
    assert.equal(mine.headers['cache-control'], 'private, no-store');
    assert.equal(mine.body.length, 8);
    assert.deepEqual(ids(mine.body).slice(0, 6), [x2.id, x3.id, x4.id, y2.id, y3.id, popular.id]);
    assert.ok(!ids(mine.body).includes(z2.id), 'a category viewed 40 days ago does not count');
    assert.equal(new Set(ids(mine.body)).size, 8);

    // A guest's views come through product pages, on its session.
    const g = await guest(app);
    await getJson(app, `/api/recommendations/product/${y1.id}/`, { headers: g.headers });
    const theirs = await getJson(app, '/api/recommendations/personalized/', { headers: g.headers });
    assert.deepEqual(ids(theirs.body).slice(0, 3), [y2.id, y3.id, popular.id]);

    // Nobody to personalise for: the most viewed alone.
    const anon = await getJson(app, '/api/recommendations/personalized/');
    assert.equal(anon.body[0].id, popular.id);
    assert.equal(anon.headers['set-cookie'], undefined);
  });

  test('trending: views of the last 7 days plus 5 per unit ordered (not cancelled); cached for everyone', async () => {
    await freshCaches();
    const d = db().db;
    const cat = await f.category(d);
    const [viewed, bought, steady, cancelled, inactive, old] = [
      await f.product(d, { category_id: cat.id }),
      await f.product(d, { category_id: cat.id }),
      await f.product(d, { category_id: cat.id }),
      await f.product(d, { category_id: cat.id }),
      await f.product(d, { category_id: cat.id, is_active: false }),
      await f.product(d, { category_id: cat.id }),
    ];
    // bought: 2 views + 5 × 6 units = 32; viewed: 30; steady: 15 views + 5 × 2 units = 25
    await views(d, viewed.id, 30, { daysAgo: 1 });
    await views(d, bought.id, 2, { daysAgo: 6 });
    await order(d, [[bought.id, 4], [steady.id, 2]], { daysAgo: 1 });
    await order(d, [[bought.id, 2]], { daysAgo: 3, status: 'shipped' });
    await views(d, steady.id, 15, { daysAgo: 5 });
    await views(d, steady.id, 50, { daysAgo: 8 }); // too old to count
    await order(d, [[cancelled.id, 10]], { daysAgo: 1, status: 'cancelled' });
    await views(d, inactive.id, 100);
    await order(d, [[old.id, 20]], { daysAgo: 8 });

    const first = await getJson(app, '/api/recommendations/trending/', { headers: customer.headers });
    assert.equal(first.status, 200);
    assert.equal(first.body.length, 12);
    assert.deepEqual(ids(first.body).slice(0, 3), [bought.id, viewed.id, steady.id]);
    assert.ok(!ids(first.body).includes(inactive.id));
    assert.equal(first.headers['x-cache'], 'MISS');
    const again = await getJson(app, '/api/recommendations/trending/');
    assert.equal(again.headers['x-cache'], 'HIT');
    assert.deepEqual(again.body, first.body);
  });

  test('staff links: 401 anonymous, 403 customers; 201 new, 200 for the same link; checked input; the product’s cached list follows', async () => {
    const d = db().db;
    const [a, b] = [await f.category(d), await f.category(d)];
    const p = await f.product(d, { category_id: a.id });
    const q = await f.product(d, { category_id: b.id });
    const url = '/api/recommendations/relationships/';
    const body = { product_id: p.id, related_product_id: q.id, relationship_type: 'complementary', strength: 0.95 };
    const post = (headers: Record<string, string>, payload: object) => getJson(app, url, { method: 'POST', headers, payload });

    const anon = await post({}, body);
    assert.equal(anon.status, 401);
    assert.equal(anon.body.code, 'not_authenticated');
    assert.equal(anon.headers['www-authenticate'], 'Bearer realm="api"');
    assert.equal((await post({}, {})).status, 401, 'who may call is checked before the body');
    const denied = await post(customer.headers, body);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.code, 'permission_denied');

    const before = await getJson(app, `/api/recommendations/product/${p.id}/`); // now cached
    assert.ok(!ids(before.body).includes(q.id));
    const created = await post(staff.headers, body);
    assert.equal(created.status, 201);
    assert.deepEqual({ ...created.body, id: 0, created_at: '' }, { id: 0, product_id: p.id, related_product_id: q.id, relationship_type: 'complementary', strength: 0.95, created_at: '' });
    assert.match(created.body.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/);
    const linked = await getJson(app, `/api/recommendations/product/${p.id}/`);
    assert.deepEqual([linked.body[0].id, linked.body[0].recommendation_reason], [q.id, 'Complementary Product']);

    const same = await post(staff.headers, { ...body, strength: 0.2 });
    assert.equal(same.status, 200);
    assert.equal(same.body.id, created.body.id);
    assert.equal(same.body.strength, 0.2);
    const bad: [object, string][] = [
      [{ ...body, related_product_id: p.id }, 'related_product_id'],
      [{ ...body, product_id: 987654321 }, 'product_id'],
      [{ ...body, relationship_type: 'cheaper' }, 'relationship_type'],
      [{ ...body, strength: 1.5 }, 'strength'],
      [{ product_id: p.id, relationship_type: 'similar' }, 'related_product_id'],
    ];
    for (const [payload, field] of bad) {
      const r = await post(staff.headers, payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.ok(r.body.errors[field], `${field}: ${JSON.stringify(r.body)}`);
    }

    const delUrl = `${url}${created.body.id}/`;
    assert.equal((await getJson(app, delUrl, { method: 'DELETE' })).status, 401);
    assert.equal((await getJson(app, delUrl, { method: 'DELETE', headers: customer.headers })).status, 403);
    const del = await app.inject({ method: 'DELETE', url: delUrl, headers: staff.headers });
    assert.equal(del.statusCode, 204);
    assert.equal((await getJson(app, delUrl, { method: 'DELETE', headers: staff.headers })).status, 404);
    const unlinked = await getJson(app, `/api/recommendations/product/${p.id}/`);
    assert.ok(!ids(unlinked.body).includes(q.id), 'the cached list is dropped with the link');
  });

  test('a fixed number of statements per request, however many links, orders and views', async () => {
    const uncached = await testApp(db(), { CACHE_ENABLED: 'false' });
    try {
      const busy = (await db().db.selectFrom('product_relationships').select('product_id').executeTakeFirstOrThrow()).product_id;
      const quiet = (await f.product(db().db)).id;
      const statements = async (url: string, headers: Record<string, string> = {}) => {
        const before = db().stats.statements;
        const r = await getJson(uncached, url, { headers });
        assert.equal(r.status, 200, url);
        return db().stats.statements - before;
      };
      // The user's row, the list, the view.
      for (const id of [busy, quiet]) {
        assert.equal(await statements(`/api/recommendations/product/${id}/`), 1);
        assert.equal(await statements(`/api/recommendations/product/${id}/`, customer.headers), 3);
      }
      // The scores of the shop's ranking, then its cards (each cached on its own, see the service).
      assert.equal(await statements('/api/recommendations/trending/'), 2);
      assert.equal(await statements('/api/recommendations/personalized/'), 2);
      // The user's row, their own picks, the shop's ranking.
      assert.equal(await statements('/api/recommendations/personalized/', customer.headers), 4);
    } finally {
      await uncached.close();
    }
  });
  test('a product deactivated after it was recommended leaves every list at once, cached or not', async () => {
    await freshCaches();
    const d = db().db;
    const cat = await f.category(d);
    const [page, star, seen] = [await f.product(d, { category_id: cat.id }), await f.product(d, { category_id: cat.id }), await f.product(d, { category_id: cat.id })];
    assert.equal((await getJson(app, '/api/recommendations/relationships/', { method: 'POST', headers: staff.headers, payload: { product_id: page.id, related_product_id: star.id, relationship_type: 'similar' } })).status, 201);
    await views(d, star.id, 1_000, { daysAgo: 1 });
    await order(d, [[star.id, 50]], { daysAgo: 1 });
    const shopper = await signedIn(app, db());
    await views(d, seen.id, 3, { userId: shopper.id });
    const lists = async () => ({
      product: ids((await getJson(app, `/api/recommendations/product/${page.id}/`)).body),
      trending: ids((await getJson(app, '/api/recommendations/trending/')).body),
      personalized: ids((await getJson(app, '/api/recommendations/personalized/', { headers: shopper.headers })).body),
      mostViewed: ids((await getJson(app, '/api/recommendations/personalized/')).body),
    });
    const before_ = await lists();
    for (const [name, list] of Object.entries(before_)) assert.ok(list.includes(star.id), `${name} lists it while active`);
    assert.equal((await getJson(app, `/api/products/${star.id}/`, { method: 'DELETE', headers: staff.headers })).status, 204);
    const after_ = await lists();
    for (const [name, list] of Object.entries(after_)) assert.ok(!list.includes(star.id), `${name} no longer lists it`);
  });
});
