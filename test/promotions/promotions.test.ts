// Promotions: the public active list (cached, dropped by writes), validate/ and apply/ with every
// rule and the discount arithmetic, the checkout's hold (exact under concurrency), and staff
// management of codes and campaigns with analytics: who may call, what is stored, what bad input
// leaves behind (nothing), and the events after commit.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../src/db/database.ts';
import type { PromotionCodesTable } from '../../src/db/schema.ts';
import type { Insertable } from 'kysely';
import type { DomainEvents, EventName } from '../../src/infra/events.ts';
import { AppError } from '../../src/infra/http/errors.ts';
import * as repo from '../../src/modules/promotions/promotions.repository.ts';
import { holdPromotion, parseDateTime, randomCode, type PromotionLine } from '../../src/modules/promotions/promotions.service.ts';
import { forEachBackend } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import * as f from '../helpers/factories.ts';

const PROMOTION_KEYS = [
  'applicable_categories', 'applicable_products', 'applicable_to_all', 'code', 'created_at', 'description', 'discount_type', 'discount_value', 'first_order_only', 'id',
  'is_active', 'is_valid', 'logged_in_only', 'minimum_order_amount', 'updated_at', 'usage_limit', 'usage_limit_per_user', 'usage_type', 'valid_from', 'valid_until',
];
const CARD_KEYS = ['average_rating', 'category_name', 'id', 'is_featured', 'is_in_stock', 'main_image', 'name', 'price', 'review_count'];
const CATEGORY_KEYS = ['created_at', 'description', 'id', 'image', 'image_variants', 'is_active', 'name', 'products_count', 'updated_at'];
const CAMPAIGN_KEYS = ['created_at', 'description', 'end_date', 'id', 'is_active', 'is_running', 'name', 'promotion_codes', 'start_date', 'updated_at'];
const BAD_REQUEST = 'Bad request. Please check your input.';
const DATETIME_FORMAT = 'Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].';
const NOT_FOUND = { error: true, message: 'Not found.', status_code: 404, code: 'not_found' };
const UNAUTHENTICATED = { error: true, message: 'Authentication credentials were not provided.', status_code: 401, code: 'not_authenticated' };
const FORBIDDEN = { error: true, message: 'You do not have permission to perform this action.', status_code: 403, code: 'permission_denied' };
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

let seq = 0;

/** A code straight into the table: valid from yesterday to tomorrow, 10% off, unlimited. */
async function promo(db: Db, o: Partial<Insertable<PromotionCodesTable>> & { products?: number[]; categories?: number[] } = {}) {
  const { products = [], categories = [], ...values } = o;
  const row = await db
    .insertInto('promotion_codes')
    .values({
      code: `T${++seq}${Math.random().toString(36).slice(2, 7).toUpperCase()}`,
      discount_type: 'percentage',
      discount_value: '10.00',
      usage_type: 'unlimited',
      valid_from: iso(Date.now() - DAY),
      valid_until: iso(Date.now() + DAY),
      ...values,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  if (products.length) await db.insertInto('promotion_products').values(products.map((product_id) => ({ promotion_id: row.id, product_id }))).execute();
  if (categories.length) await db.insertInto('promotion_categories').values(categories.map((category_id) => ({ promotion_id: row.id, category_id }))).execute();
  return row;
}

async function order(db: Db, userId: number | null, createdAt?: string) {
  return db
    .insertInto('orders')
    .values({ order_number: `O${++seq}${Math.random().toString(16).slice(2, 8)}`.slice(0, 12).toUpperCase(), user_id: userId, subtotal: '10.00', total_amount: '10.00', ...(createdAt ? { created_at: createdAt } : {}) })
    .returning('id')
    .executeTakeFirstOrThrow();
}

async function checkout(db: Db, userId: number | null = null) {
  return db
    .insertInto('checkouts')
    .values({
      provider: 'test', user_id: userId, lines: '[]', subtotal: '0.00', total_amount: '0.00', success_url: 'http://shop.test/ok', cancel_url: 'http://shop.test/no',
      owner_key: userId ? `user:${userId}` : `guest:${seq}`, expires_at: iso(Date.now() + 3600_000),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
}

/** One use of a code: held by a new checkout, or kept by an order when `orderId` is given. */
async function usage(db: Db, promotionId: number, o: { userId?: number | null; orderId?: number; discount?: string } = {}) {
  const held = o.orderId === undefined ? (await checkout(db, o.userId ?? null)).id : null;
  await db.insertInto('promotion_usages').values({ promotion_id: promotionId, user_id: o.userId ?? null, checkout_id: held, order_id: o.orderId ?? null, discount_amount: o.discount ?? '1.00' }).execute();
}

forEachBackend('promotions', ({ backend, db }) => {
  let app: FastifyInstance;
  let staff: TestUser;
  let ann: TestUser;
  let bob: TestUser;

  const d = () => db().db;
  const call = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, who?: TestUser | null, payload?: unknown) =>
    getJson(app, url, { method, ...(payload === undefined ? {} : { payload: payload as object }), headers: who ? who.headers : {} });
  const snapshot = async () => ({
    codes: await d().selectFrom('promotion_codes').selectAll().orderBy('id').execute(),
    products: await d().selectFrom('promotion_products').selectAll().orderBy('promotion_id').orderBy('product_id').execute(),
    categories: await d().selectFrom('promotion_categories').selectAll().orderBy('promotion_id').orderBy('category_id').execute(),
    campaigns: await d().selectFrom('campaigns').selectAll().orderBy('id').execute(),
    campaignCodes: await d().selectFrom('campaign_codes').selectAll().orderBy('campaign_id').orderBy('promotion_id').execute(),
    usages: await d().selectFrom('promotion_usages').selectAll().orderBy('id').execute(),
  });
  const usages = (promotionId: number) => d().selectFrom('promotion_usages').selectAll().where('promotion_id', '=', promotionId).orderBy('id').execute();

  /** Records an event's payloads, and whether the write was visible (committed) when it fired. */
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
  const codeExists = async ({ id }: { id: number }) => (await d().selectFrom('promotion_codes').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;

  before(async () => {
    app = await testApp(db());
    staff = await signedIn(app, db(), { staff: true });
    ann = await signedIn(app, db(), { first_name: 'Ann' });
    bob = await signedIn(app, db(), { first_name: 'Bob' });
  });
  after(() => app.close());

  // ---------------------------------------------------------------------------------------------
  // Staff: who may call

  test('staff routes refuse anonymous callers (401), bad tokens (401) and customers (403), and change nothing', async () => {
    const p = await promo(d());
    const campaign = await d().insertInto('campaigns').values({ name: 'Guarded', start_date: iso(Date.now()), end_date: iso(Date.now() + DAY) }).returning('id').executeTakeFirstOrThrow();
    const body = { discount_type: 'fixed', discount_value: '5', valid_from: '2030-01-01', valid_until: '2030-02-01' };
    const campaignBody = { name: 'Never', start_date: '2030-01-01', end_date: '2030-02-01' };
    const routes: [Parameters<typeof call>[0], string, unknown][] = [
      ['GET', '/api/promotions/codes/', undefined],
      ['POST', '/api/promotions/codes/', body],
      ['GET', `/api/promotions/codes/${p.id}/`, undefined],
      ['PUT', `/api/promotions/codes/${p.id}/`, body],
      ['PATCH', `/api/promotions/codes/${p.id}/`, { is_active: false }],
      ['DELETE', `/api/promotions/codes/${p.id}/`, undefined],
      ['GET', '/api/promotions/campaigns/', undefined],
      ['POST', '/api/promotions/campaigns/', campaignBody],
      ['GET', `/api/promotions/campaigns/${campaign.id}/`, undefined],
      ['PUT', `/api/promotions/campaigns/${campaign.id}/`, campaignBody],
      ['PATCH', `/api/promotions/campaigns/${campaign.id}/`, { is_active: false }],
      ['DELETE', `/api/promotions/campaigns/${campaign.id}/`, undefined],
      ['GET', '/api/promotions/analytics/', undefined],
    ];
    const before_ = await snapshot();
    for (const [method, url, payload] of routes) {
      const anon = await call(method, url, null, payload);
      assert.equal(anon.status, 401, `${method} ${url}`);
      assert.deepEqual(anon.body, UNAUTHENTICATED);
      assert.equal(anon.headers['www-authenticate'], 'Bearer realm="api"');
      const invalid = await call(method, url, { headers: { authorization: 'Bearer not-a-token' } } as TestUser, payload);
      assert.equal(invalid.status, 401, `${method} ${url}`);
      assert.equal(invalid.body.code, 'token_not_valid');
      const denied = await call(method, url, ann, payload);
      assert.equal(denied.status, 403, `${method} ${url}`);
      assert.deepEqual(denied.body, FORBIDDEN);
      assert.match(String(denied.headers['cache-control']), /private/);
    }
    // the permission check comes before the body is looked at
    assert.equal((await call('POST', '/api/promotions/codes/', null, { discount_type: 'bogus' })).status, 401);
    assert.equal((await call('POST', '/api/promotions/codes/', ann, { discount_type: 'bogus' })).status, 403);
    assert.deepEqual(await snapshot(), before_);
  });

  // ---------------------------------------------------------------------------------------------
  // Staff: codes

  test('staff create a code: 201 Promotion with product cards and categories, stored upper-case; event after commit', async () => {
    const cat = await f.category(d(), { name: 'Promo Minis' });
    const other = await f.category(d(), { name: 'Promo Lamps' });
    const dragon = await f.product(d(), { category_id: cat.id, name: 'Dragon', price: '19.99' });
    await f.product(d(), { category_id: other.id });
    const events = watch('promotion.created', codeExists);
    const r = await call('POST', '/api/promotions/codes/', staff, {
      code: 'spring-25', description: '  Spring sale ', discount_type: 'percentage', discount_value: 25, usage_type: 'limited', usage_limit: 100, usage_limit_per_user: 2,
      valid_from: '2026-03-01T00:00:00Z', valid_until: '2026-03-31 23:59:59.5+02:00', minimum_order_amount: '20', applicable_to_all: false,
      applicable_product_ids: [dragon.id, dragon.id], applicable_categories: [other.id], first_order_only: true, logged_in_only: true,
      id: 999, is_valid: true, created_at: '2000-01-01T00:00:00Z',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), PROMOTION_KEYS);
    assert.notEqual(r.body.id, 999);
    assert.deepEqual(
      [r.body.code, r.body.description, r.body.discount_type, r.body.discount_value, r.body.usage_type, r.body.usage_limit, r.body.usage_limit_per_user],
      ['SPRING-25', 'Spring sale', 'percentage', '25.00', 'limited', 100, 2],
    );
    assert.deepEqual([r.body.valid_from, r.body.valid_until], ['2026-03-01T00:00:00Z', '2026-03-31T21:59:59.500000Z']);
    assert.deepEqual([r.body.is_active, r.body.minimum_order_amount, r.body.applicable_to_all, r.body.first_order_only, r.body.logged_in_only], [true, '20.00', false, true, true]);
    assert.equal(r.body.is_valid, Date.now() >= Date.parse('2026-03-01T00:00:00Z') && Date.now() <= Date.parse('2026-03-31T21:59:59.5Z'));
    assert.doesNotMatch(r.body.created_at, /^2000/);
    assert.equal(r.body.applicable_products.length, 1);
    assert.deepEqual(Object.keys(r.body.applicable_products[0]).sort(), CARD_KEYS);
    assert.deepEqual([r.body.applicable_products[0].id, r.body.applicable_products[0].name, r.body.applicable_products[0].price, r.body.applicable_products[0].category_name], [dragon.id, 'Dragon', '19.99', 'Promo Minis']);
    assert.deepEqual(r.body.applicable_categories.map((c: { id: number }) => c.id), [other.id]);
    assert.deepEqual(Object.keys(r.body.applicable_categories[0]).sort(), CATEGORY_KEYS);
    assert.equal(r.body.applicable_categories[0].products_count, 1);
    const row = await d().selectFrom('promotion_codes').selectAll().where('id', '=', r.body.id).executeTakeFirstOrThrow();
    assert.deepEqual([row.code, row.discount_value, row.minimum_order_amount, row.usage_limit], ['SPRING-25', '25.00', '20.00', 100]);
    assert.deepEqual((await d().selectFrom('promotion_products').select('product_id').where('promotion_id', '=', r.body.id).execute()).map((x) => x.product_id), [dragon.id]);
    assert.deepEqual((await d().selectFrom('promotion_categories').select('category_id').where('promotion_id', '=', r.body.id).execute()).map((x) => x.category_id), [other.id]);
    assert.deepEqual(await events.payloads(), [{ id: r.body.id }]);

    // the smallest code: defaults for everything left out
    const plain = await call('POST', '/api/promotions/codes/', staff, { code: 'SHIPFREE', discount_type: 'free_shipping', valid_from: '2026-01-01', valid_until: '2027-01-01' });
    assert.equal(plain.status, 201, JSON.stringify(plain.body));
    assert.deepEqual(
      [plain.body.description, plain.body.discount_value, plain.body.usage_type, plain.body.usage_limit, plain.body.usage_limit_per_user, plain.body.minimum_order_amount, plain.body.applicable_to_all],
      ['', '0.00', 'single', null, 1, '0.00', true],
    );
    assert.equal(plain.body.valid_from, '2026-01-01T00:00:00Z', 'a date alone is its midnight, UTC');
  });

  test('an empty or missing code gets a random 8-character code of A-Z and 0-9', async () => {
    const made = [];
    for (const code of ['', undefined]) {
      const r = await call('POST', '/api/promotions/codes/', staff, { ...(code === undefined ? {} : { code }), discount_type: 'fixed', discount_value: '5.00', valid_from: '2026-01-01', valid_until: '2027-01-01' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.match(r.body.code, /^[A-Z0-9]{8}$/);
      made.push(r.body.code);
    }
    assert.notEqual(made[0], made[1]);
    const many = new Set(Array.from({ length: 200 }, () => randomCode()));
    assert.equal(many.size, 200);
    assert.ok([...many].every((c) => /^[A-Z0-9]{8}$/.test(c)));
  });

  test('bad code input is 400 with field errors, writes nothing and publishes nothing', async () => {
    await promo(d(), { code: 'TAKEN10' });
    const good = { discount_type: 'percentage', discount_value: '10', valid_from: '2026-01-01T00:00:00Z', valid_until: '2026-02-01T00:00:00Z' };
    const cases: [unknown, Record<string, string[]>][] = [
      [{}, { discount_type: ['This field is required.'], valid_from: ['This field is required.'], valid_until: ['This field is required.'] }],
      [{ ...good, discount_type: 'bogo' }, { discount_type: ['"bogo" is not a valid choice.'] }],
      [{ ...good, usage_type: 'twice' }, { usage_type: ['"twice" is not a valid choice.'] }],
      [{ ...good, discount_value: '1.005' }, { discount_value: ['Ensure that there are no more than 2 decimal places.'] }],
      [{ ...good, discount_value: 'ten' }, { discount_value: ['A valid number is required.'] }],
      [{ ...good, discount_value: '100.01' }, { discount_value: ['Ensure this value is less than or equal to 100.'] }],
      [{ ...good, discount_value: '0' }, { discount_value: ['Ensure this value is greater than 0.'] }],
      [{ ...good, discount_value: undefined }, { discount_value: ['This field is required.'] }],
      [{ ...good, discount_type: 'fixed', discount_value: undefined }, { discount_value: ['This field is required.'] }],
      [{ ...good, minimum_order_amount: '-1' }, { minimum_order_amount: ['Ensure this value is greater than or equal to 0.'] }],
      [{ ...good, usage_type: 'limited' }, { usage_limit: ['This field is required when usage_type is limited.'] }],
      [{ ...good, usage_type: 'limited', usage_limit: null }, { usage_limit: ['This field is required when usage_type is limited.'] }],
      [{ ...good, usage_limit: -1, usage_limit_per_user: 0 }, { usage_limit: ['Ensure this value is greater than or equal to 0.'], usage_limit_per_user: ['Ensure this value is greater than or equal to 1.'] }],
      [{ ...good, valid_until: '2025-12-31T23:59:59Z' }, { valid_until: ['Ensure valid_until is after valid_from.'] }],
      [{ ...good, valid_until: good.valid_from }, { valid_until: ['Ensure valid_until is after valid_from.'] }],
      [{ ...good, valid_from: 'tomorrow', valid_until: '2026-02-30T00:00:00Z' }, { valid_from: [DATETIME_FORMAT], valid_until: [DATETIME_FORMAT] }],
      [{ ...good, code: 'taken10' }, { code: ['promotion code with this code already exists.'] }],
      [{ ...good, code: 'two words' }, { code: ['Use only letters, digits, "-" and "_".'] }],
      [{ ...good, code: 'X'.repeat(51) }, { code: ['Ensure this field has no more than 50 characters.'] }],
      [{ ...good, applicable_to_all: false }, { applicable_to_all: ['Choose at least one product or category for a code that does not apply to all.'] }],
      [{ ...good, applicable_to_all: false, applicable_product_ids: [] }, { applicable_to_all: ['Choose at least one product or category for a code that does not apply to all.'] }],
      [{ ...good, applicable_product_ids: [999999] }, { applicable_product_ids: ['Invalid pk "999999" - object does not exist.'] }],
      [{ ...good, applicable_categories: [999998, 999999] }, { applicable_categories: ['Invalid pk "999998" - object does not exist.', 'Invalid pk "999999" - object does not exist.'] }],
      [{ ...good, applicable_products: ['abc'] }, { 'applicable_products.0': ['A valid integer is required.'] }],
      [{ ...good, is_active: 'maybe' }, { is_active: ['Must be a valid boolean.'] }],
    ];
    const events = watch('promotion.created', codeExists);
    const before_ = await snapshot();
    for (const [payload, errors] of cases) {
      const r = await call('POST', '/api/promotions/codes/', staff, payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.deepEqual(r.body, { error: true, message: BAD_REQUEST, status_code: 400, code: 'bad_request', errors }, JSON.stringify(payload));
    }
    assert.deepEqual(await snapshot(), before_);
    assert.deepEqual(await events.payloads(), []);
  });

  test('staff list (paginated, newest first), read, replace, change and delete codes; events after commit', async () => {
    const cat = await f.category(d());
    const p1 = await f.product(d(), { category_id: cat.id });
    const p2 = await f.product(d(), { category_id: cat.id });
    for (let i = 0; i < 21; i++) await promo(d(), { description: `bulk ${i}` });
    const all = await d().selectFrom('promotion_codes').select('id').orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    const page1 = await call('GET', '/api/promotions/codes/?page_size=5', staff);
    assert.equal(page1.status, 200);
    assert.equal(page1.body.count, all.length);
    assert.equal(page1.body.results.length, 20, 'page_size is not honoured here');
    assert.deepEqual(page1.body.results.map((p: { id: number }) => p.id), all.slice(0, 20).map((r) => r.id));
    assert.equal(page1.body.next, 'http://shop.test/api/promotions/codes/?page=2&page_size=5');
    assert.equal(page1.body.previous, null);
    assert.deepEqual(Object.keys(page1.body.results[0]).sort(), PROMOTION_KEYS);
    const last = await call('GET', '/api/promotions/codes/?page=last', staff);
    assert.equal(last.body.previous !== null, all.length > 20);
    assert.deepEqual((await call('GET', '/api/promotions/codes/?page=99', staff)).body, { error: true, message: 'Invalid page.', status_code: 404, code: 'invalid_page' });

    await promo(d(), { code: 'TAKEN20' });
    const made = await call('POST', '/api/promotions/codes/', staff, { code: 'EDITME', discount_type: 'fixed', discount_value: '5', valid_from: '2026-01-01', valid_until: '2027-01-01', applicable_to_all: false, applicable_products: [p1.id] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const id = made.body.id;
    const got = await call('GET', `/api/promotions/codes/${id}/`, staff);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, made.body);
    assert.deepEqual((await call('GET', '/api/promotions/codes/999999/', staff)).body, NOT_FOUND);
    assert.deepEqual((await call('GET', '/api/promotions/codes/abc/', staff)).body, NOT_FOUND);

    const updated = watch('promotion.updated', codeExists);
    const patched = await call('PATCH', `/api/promotions/codes/${id}/`, staff, { description: 'Now for lamps', applicable_product_ids: [p2.id], applicable_category_ids: [cat.id] });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.code, 'EDITME', 'untouched fields keep their value');
    assert.equal(patched.body.description, 'Now for lamps');
    assert.deepEqual(patched.body.applicable_products.map((p: { id: number }) => p.id), [p2.id]);
    assert.deepEqual(patched.body.applicable_categories.map((c: { id: number }) => c.id), [cat.id]);
    assert.ok(patched.body.updated_at > made.body.updated_at);
    // a PATCH that leaves the lists out keeps them
    const kept = await call('PATCH', `/api/promotions/codes/${id}/`, staff, { discount_value: '7.5' });
    assert.equal(kept.body.discount_value, '7.50');
    assert.deepEqual(kept.body.applicable_products.map((p: { id: number }) => p.id), [p2.id]);
    // the window is checked against the stored end when only the start changes
    const late = await call('PATCH', `/api/promotions/codes/${id}/`, staff, { valid_from: '2028-01-01' });
    assert.deepEqual(late.body.errors, { valid_until: ['Ensure valid_until is after valid_from.'] });
    // switching to percentage checks the stored value against 100, and limited needs its limit
    const switched = await call('PATCH', `/api/promotions/codes/${id}/`, staff, { usage_type: 'limited' });
    assert.deepEqual(switched.body.errors, { usage_limit: ['This field is required when usage_type is limited.'] });
    assert.deepEqual((await call('PATCH', `/api/promotions/codes/${id}/`, staff, { code: '' })).body.errors, { code: ['This field may not be blank.'] });
    assert.deepEqual((await call('PATCH', `/api/promotions/codes/${id}/`, staff, { code: 'taken20' })).body.errors, { code: ['promotion code with this code already exists.'] });
    assert.deepEqual((await call('PATCH', `/api/promotions/codes/${id}/`, staff, { applicable_product_ids: [], applicable_category_ids: [] })).body.errors, {
      applicable_to_all: ['Choose at least one product or category for a code that does not apply to all.'],
    });
    assert.deepEqual((await call('PATCH', '/api/promotions/codes/999999/', staff, { description: 'x' })).body, NOT_FOUND);
    assert.deepEqual((await call('PATCH', '/api/promotions/codes/999999/', staff, { discount_value: 'bad' })).body, NOT_FOUND, 'an unknown id is 404 before the values are judged');

    // PUT needs the required fields; those left out keep their value
    const missing = await call('PUT', `/api/promotions/codes/${id}/`, staff, { description: 'x' });
    assert.equal(missing.status, 400);
    assert.deepEqual(Object.keys(missing.body.errors).sort(), ['discount_type', 'valid_from', 'valid_until']);
    const put = await call('PUT', `/api/promotions/codes/${id}/`, staff, { code: 'edited', discount_type: 'percentage', discount_value: '15', valid_from: '2026-01-01', valid_until: '2026-06-01', applicable_to_all: true });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual([put.body.code, put.body.discount_type, put.body.discount_value, put.body.description, put.body.applicable_to_all], ['EDITED', 'percentage', '15.00', 'Now for lamps', true]);
    assert.deepEqual((await call('PUT', '/api/promotions/codes/999999/', staff, { discount_type: 'fixed', discount_value: '1', valid_from: '2026-01-01', valid_until: '2026-06-01' })).body, NOT_FOUND);
    assert.deepEqual(await updated.payloads(), [{ id }, { id }, { id }]);

    // delete: the code, its links and its usage history go; orders keep their amounts
    const o = await order(d(), ann.id);
    await usage(d(), id, { userId: ann.id, orderId: o.id });
    await d().updateTable('orders').set({ promotion_id: id }).where('id', '=', o.id).execute();
    const deleted = watch('promotion.deleted', async (p) => !(await codeExists(p)));
    const del = await call('DELETE', `/api/promotions/codes/${id}/`, staff);
    assert.equal(del.status, 204);
    assert.equal(del.body, '');
    assert.deepEqual(await deleted.payloads(), [{ id }]);
    assert.deepEqual(await usages(id), []);
    assert.equal((await d().selectFrom('promotion_products').selectAll().where('promotion_id', '=', id).execute()).length, 0);
    const kept_ = await d().selectFrom('orders').select(['promotion_id', 'total_amount']).where('id', '=', o.id).executeTakeFirstOrThrow();
    assert.deepEqual(kept_, { promotion_id: null, total_amount: '10.00' });
    assert.deepEqual((await call('DELETE', `/api/promotions/codes/${id}/`, staff)).body, NOT_FOUND);
    assert.deepEqual((await call('GET', `/api/promotions/codes/${id}/`, staff)).body, NOT_FOUND);
  });

  test('the staff code list runs the same statements for 1 code as for 20 with products and categories', async () => {
    await d().deleteFrom('promotion_codes').execute();
    const cat = await f.category(d());
    const products = await Promise.all([1, 2, 3].map(() => f.product(d(), { category_id: cat.id })));
    const statements = async () => {
      const before_ = db().stats.statements;
      const r = await call('GET', '/api/promotions/codes/', staff);
      assert.equal(r.status, 200);
      return db().stats.statements - before_;
    };
    await promo(d(), { applicable_to_all: false, products: products.map((p) => p.id), categories: [cat.id] });
    const one = await statements();
    for (let i = 0; i < 19; i++) await promo(d(), { applicable_to_all: false, products: products.map((p) => p.id), categories: [cat.id] });
    assert.equal(await statements(), one);
    assert.ok(one <= 3, `${one} statements: the staff user, the count and the page`);
  });

  // ---------------------------------------------------------------------------------------------
  // Public: the active list

  test('active codes: public, paginated, only active codes within their window and not for signed-in customers only; cached until a write', async () => {
    await d().updateTable('promotion_codes').set({ is_active: false }).execute();
    await app.events.emit('promotion.updated', { id: 0 });
    const cat = await f.category(d(), { name: 'Active Cat' });
    const lamp = await f.product(d(), { category_id: cat.id, price: '30.00' });
    const shown = await promo(d(), { description: 'shown', applicable_to_all: false, products: [lamp.id], categories: [cat.id] });
    const shownToo = await promo(d(), { description: 'shown too', valid_until: iso(Date.now() + 60_000) });
    await promo(d(), { description: 'inactive', is_active: false });
    await promo(d(), { description: 'expired', valid_from: iso(Date.now() - 2 * DAY), valid_until: iso(Date.now() - DAY) });
    await promo(d(), { description: 'future', valid_from: iso(Date.now() + DAY), valid_until: iso(Date.now() + 2 * DAY) });
    await promo(d(), { description: 'members', logged_in_only: true });

    const first = await getJson(app, '/api/promotions/active/');
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal(first.body.count, 2);
    assert.deepEqual(first.body.results.map((p: { id: number }) => p.id), [shownToo.id, shown.id], 'newest first');
    assert.ok(first.body.results.every((p: { is_valid: boolean }) => p.is_valid));
    assert.deepEqual(first.body.results[1].applicable_products.map((p: { price: string }) => p.price), ['30.00']);
    assert.equal(first.body.results[1].applicable_categories[0].name, 'Active Cat');
    const again = await getJson(app, '/api/promotions/active/');
    assert.equal(again.headers['x-cache'], 'HIT');
    assert.deepEqual(again.body, first.body);
    assert.deepEqual((await getJson(app, '/api/promotions/active/?page=2')).body, { error: true, message: 'Invalid page.', status_code: 404, code: 'invalid_page' });
    assert.equal((await getJson(app, '/api/promotions/active/', { headers: { authorization: 'Bearer nope' } })).status, 401, 'a bad token is refused even here');

    // a staff change shows on the next read
    assert.equal((await call('PATCH', `/api/promotions/codes/${shownToo.id}/`, staff, { is_active: false })).status, 200);
    const afterEdit = await getJson(app, '/api/promotions/active/');
    assert.equal(afterEdit.headers['x-cache'], 'MISS');
    assert.deepEqual(afterEdit.body.results.map((p: { id: number }) => p.id), [shown.id]);
    // so does a change to a product the list shows
    assert.equal((await call('PATCH', `/api/products/${lamp.id}/`, staff, { price: '25.00' })).status, 200);
    const afterPrice = await getJson(app, '/api/promotions/active/');
    assert.equal(afterPrice.headers['x-cache'], 'MISS');
    assert.deepEqual(afterPrice.body.results[0].applicable_products.map((p: { price: string }) => p.price), ['25.00']);
    // and to a category it shows
    assert.equal((await call('PATCH', `/api/products/categories/${cat.id}/`, staff, { name: 'Renamed Cat' })).status, 200);
    assert.equal((await getJson(app, '/api/promotions/active/')).body.results[0].applicable_categories[0].name, 'Renamed Cat');
    // and a deleted code disappears
    assert.equal((await call('DELETE', `/api/promotions/codes/${shown.id}/`, staff)).status, 204);
    assert.equal((await getJson(app, '/api/promotions/active/')).body.count, 0);

    for (let i = 0; i < 21; i++) await promo(d());
    await app.events.emit('promotion.created', { id: 0 });
    const paged = await getJson(app, '/api/promotions/active/');
    assert.equal(paged.body.count, 21);
    assert.equal(paged.body.results.length, 20);
    assert.equal(paged.body.next, 'http://shop.test/api/promotions/active/?page=2');
    assert.equal((await getJson(app, '/api/promotions/active/?page=2')).body.results.length, 1);
  });

  test('the public list and validate/ leave out deactivated products and inactive categories of a restricted code; staff see them all; apply/ still counts them', async () => {
    const cat = await f.category(d(), { name: 'Shown Cat' });
    const hiddenCat = await f.category(d(), { name: 'Hidden Cat', is_active: false });
    const live = await f.product(d(), { category_id: cat.id, price: '20.00' });
    const gone = await f.product(d(), { category_id: cat.id, price: '30.00' });
    await d().updateTable('products').set({ is_active: false }).where('id', '=', gone.id).execute();
    const inHidden = await f.product(d(), { category_id: hiddenCat.id, price: '40.00' });
    const code = await promo(d(), { description: 'restricted', applicable_to_all: false, products: [live.id, gone.id], categories: [cat.id, hiddenCat.id] });
    await app.events.emit('promotion.created', { id: code.id });

    const list = await getJson(app, '/api/promotions/active/');
    const shown = list.body.results.find((p: { id: number }) => p.id === code.id);
    assert.ok(shown, JSON.stringify(list.body));
    assert.deepEqual(shown.applicable_products.map((p: { id: number }) => p.id), [live.id], 'a deactivated product is not shown');
    assert.deepEqual(shown.applicable_categories.map((c: { id: number }) => c.id), [cat.id], 'an inactive category is not shown');
    const valid = await call('POST', '/api/promotions/validate/', null, { code: code.code, order_amount: '50.00' });
    assert.deepEqual(valid.body.promotion.applicable_products.map((p: { id: number }) => p.id), [live.id]);
    assert.deepEqual(valid.body.promotion.applicable_categories.map((c: { id: number }) => c.id), [cat.id]);

    const staffView = await call('GET', `/api/promotions/codes/${code.id}/`, staff);
    assert.deepEqual(staffView.body.applicable_products.map((p: { id: number }) => p.id), [live.id, gone.id], 'staff see what the code is restricted to');
    assert.deepEqual(staffView.body.applicable_categories.map((c: { id: number }) => c.id), [cat.id, hiddenCat.id]);

    // The discount is the checkout's: a product of an inactive category is still sold, and the code covers it.
    const applied = await call('POST', '/api/promotions/apply/', null, { code: code.code, subtotal: '40.00', cart_items: [{ product_id: inHidden.id, price: '40.00', quantity: 1 }] });
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    assert.equal(applied.body.applicable_items_total, 40);
    assert.deepEqual(applied.body.promotion.applicable_categories.map((c: { id: number }) => c.id), [cat.id]);
  });

  // ---------------------------------------------------------------------------------------------
  // Public: validate/

  test('validate: a missing code is 400 with a clear message; an unknown one is 200 valid false', async () => {
    for (const payload of [{}, { code: '' }, { code: '   ' }, { code: null }, { order_amount: 10 }]) {
      const r = await call('POST', '/api/promotions/validate/', null, payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.deepEqual(r.body, { error: 'Promotion code is required' });
    }
    const empty = await app.inject({ method: 'POST', url: '/api/promotions/validate/' });
    assert.equal(empty.statusCode, 400);
    assert.deepEqual(empty.json(), { error: 'Promotion code is required' });
    assert.deepEqual((await call('POST', '/api/promotions/validate/', null, { code: { a: 1 } })).body, { error: 'Promotion code must be a string' });
    assert.deepEqual((await call('POST', '/api/promotions/validate/', null, { code: 'NOPE', order_amount: 'ten' })).body, { error: 'Invalid order_amount: A valid number is required.' });
    assert.deepEqual((await call('POST', '/api/promotions/validate/', null, { code: 'NOPE', order_amount: '1.001' })).body, { error: 'Invalid order_amount: Ensure that there are no more than 2 decimal places.' });
    assert.deepEqual((await call('POST', '/api/promotions/validate/', null, { code: 'NOPE', order_amount: -5 })).body, { error: 'Invalid order_amount: Ensure this value is greater than or equal to 0.' });
    const unknown = await call('POST', '/api/promotions/validate/', null, { code: 'NO-SUCH-CODE', order_amount: 10 });
    assert.equal(unknown.status, 200);
    assert.deepEqual(unknown.body, { valid: false, message: 'Invalid promotion code' });
    assert.match(String(unknown.headers['cache-control']), /private/);
    const bad = await app.inject({ method: 'POST', url: '/api/promotions/validate/', headers: { 'content-type': 'application/json' }, payload: '{"code":' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 'parse_error');
  });

  test('validate: a valid code, in any case, with its discount; order_amount as number or string, default 0', async () => {
    const p = await promo(d(), { code: 'TENOFF', discount_value: '10.00' });
    const r = await call('POST', '/api/promotions/validate/', null, { code: ' tenOff ', order_amount: 25 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), ['discount_amount', 'discount_type', 'message', 'promotion', 'valid']);
    assert.deepEqual([r.body.valid, r.body.message, r.body.discount_amount, r.body.discount_type], [true, 'Valid', 2.5, 'percentage']);
    assert.deepEqual(Object.keys(r.body.promotion).sort(), PROMOTION_KEYS);
    assert.equal(r.body.promotion.id, p.id);
    assert.equal((await call('POST', '/api/promotions/validate/', null, { code: 'TENOFF', order_amount: '19.99' })).body.discount_amount, 2);
    const zero = await call('POST', '/api/promotions/validate/', null, { code: 'TENOFF' });
    assert.deepEqual([zero.body.valid, zero.body.discount_amount], [true, 0]);
    assert.deepEqual(await usages(p.id), [], 'validating uses nothing');
  });

  test('the discount: percentage rounds half up to the cent and is capped; fixed is capped; free shipping takes nothing off', async () => {
    const cases: [Partial<Insertable<PromotionCodesTable>>, string | number, number][] = [
      [{ discount_type: 'percentage', discount_value: '12.50' }, '10.01', 1.25],
      [{ discount_type: 'percentage', discount_value: '15.00' }, '0.10', 0.02],
      [{ discount_type: 'percentage', discount_value: '33.33' }, 100, 33.33],
      [{ discount_type: 'percentage', discount_value: '100.00' }, '49.99', 49.99],
      [{ discount_type: 'percentage', discount_value: '150.00' }, '20.00', 20],
      [{ discount_type: 'fixed', discount_value: '5.00' }, '30.00', 5],
      [{ discount_type: 'fixed', discount_value: '50.00' }, '30.00', 30],
      [{ discount_type: 'free_shipping', discount_value: '0.00' }, '30.00', 0],
    ];
    for (const [values, amount, expected] of cases) {
      const p = await promo(d(), values);
      const r = await call('POST', '/api/promotions/validate/', null, { code: p.code, order_amount: amount });
      assert.deepEqual([r.body.valid, r.body.discount_amount, r.body.discount_type], [true, expected, values.discount_type], JSON.stringify(values));
    }
  });

  test('validate: every rule refuses with its reason, and nothing is written', async () => {
    const now = Date.now();
    const o = await order(d(), bob.id);
    const single = await promo(d(), { usage_type: 'single' });
    await usage(d(), single.id);
    const limited = await promo(d(), { usage_type: 'limited', usage_limit: 2 });
    await usage(d(), limited.id, { userId: bob.id });
    await usage(d(), limited.id, { orderId: o.id });
    const perUser = await promo(d(), { usage_limit_per_user: 2 });
    await usage(d(), perUser.id, { userId: ann.id });
    await usage(d(), perUser.id, { userId: ann.id, orderId: o.id });
    const fresh = (values: Partial<Insertable<PromotionCodesTable>>) => () => promo(d(), values);
    const existing = (p: { code: string }) => async () => p;
    const cases: [string, () => Promise<{ code: string }>, TestUser | null, string, string][] = [
      ['inactive', fresh({ is_active: false }), null, '50', 'This promotion code is not active'],
      ['not yet', fresh({ valid_from: iso(now + 60_000), valid_until: iso(now + DAY) }), null, '50', 'This promotion code is not valid yet'],
      ['expired', fresh({ valid_from: iso(now - DAY), valid_until: iso(now - 60_000) }), null, '50', 'This promotion code has expired'],
      ['minimum', fresh({ minimum_order_amount: '20.00' }), null, '19.99', 'Minimum order amount of $20.00 required'],
      ['minimum with cents', fresh({ minimum_order_amount: '19.50' }), ann, '19.49', 'Minimum order amount of $19.50 required'],
      ['logged in only, anonymous', fresh({ logged_in_only: true }), null, '50', 'This code requires you to be logged in'],
      ['first order only, anonymous', fresh({ first_order_only: true }), null, '50', 'This code requires you to be logged in'],
      ['first order only, has ordered', fresh({ first_order_only: true }), bob, '50', 'This code is only valid for first-time orders'],
      ['single, held once', existing(single), null, '50', 'This code has already been used'],
      ['limited, held and used up', existing(limited), ann, '50', 'This code has reached its usage limit'],
      ['per user, used up', existing(perUser), ann, '50', 'You have already used this code the maximum number of times'],
    ];
    const before_ = await snapshot();
    for (const [name, make, who, amount, reason] of cases) {
      const r = await call('POST', '/api/promotions/validate/', who, { code: (await make()).code, order_amount: amount });
      assert.equal(r.status, 200, name);
      assert.deepEqual(r.body, { valid: false, message: reason }, name);
    }
    const after_ = await snapshot();
    assert.deepEqual(after_.usages, before_.usages);
    // the same codes pass where the rule is met
    const pass = async (code: string, who: TestUser | null, amount = '50') => (await call('POST', '/api/promotions/validate/', who, { code, order_amount: amount })).body.valid;
    assert.equal(await pass((await promo(d(), { minimum_order_amount: '20.00' })).code, null, '20.00'), true, 'exactly the minimum is enough');
    assert.equal(await pass((await promo(d(), { logged_in_only: true })).code, ann), true);
    const newcomer = await signedIn(app, db());
    assert.equal(await pass((await promo(d(), { first_order_only: true })).code, newcomer), true, 'no orders yet');
    assert.equal(await pass(perUser.code, bob), true, 'another user has uses left');
    assert.equal(await pass(perUser.code, null), true, 'a guest has no per-user count');
    assert.equal(await pass((await promo(d(), { valid_from: iso(now - DAY), valid_until: iso(now + 2000) })).code, null), true);
  });

  // ---------------------------------------------------------------------------------------------
  // Public: apply/

  test('apply: shapes, subtotal as integer, float or decimal string (§4.6), and the refusals', async () => {
    const p = await promo(d(), { code: 'APPLY10', discount_value: '10.00', minimum_order_amount: '20.00' });
    for (const subtotal of [30, 30.5, '30.50', '30.5']) {
      const r = await call('POST', '/api/promotions/apply/', null, { code: 'apply10', subtotal });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(Object.keys(r.body).sort(), ['applicable_items_total', 'discount_amount', 'final_total', 'promotion', 'success']);
      const s = Number(subtotal);
      const off = s === 30 ? 3 : 3.05;
      assert.deepEqual([r.body.success, r.body.discount_amount, r.body.applicable_items_total, r.body.final_total], [true, off, s, Math.round((s - off) * 100) / 100], String(subtotal));
      assert.equal(r.body.promotion.id, p.id);
    }
    const before_ = await snapshot();
    const refusals: [unknown, number, string][] = [
      [{ subtotal: 30 }, 400, 'Promotion code is required'],
      [{ code: '', subtotal: 30 }, 400, 'Promotion code is required'],
      [{ code: 'NO-SUCH', subtotal: 30 }, 404, 'Invalid promotion code'],
      [{ code: 'APPLY10', subtotal: 19.99 }, 400, 'Minimum order amount of $20.00 required'],
      [{ code: 'APPLY10' }, 400, 'Minimum order amount of $20.00 required'],
      [{ code: 'APPLY10', subtotal: 'abc' }, 400, 'Invalid subtotal: A valid number is required.'],
      [{ code: 'APPLY10', subtotal: '30.123' }, 400, 'Invalid subtotal: Ensure that there are no more than 2 decimal places.'],
      [{ code: 'APPLY10', subtotal: -1 }, 400, 'Invalid subtotal: Ensure this value is greater than or equal to 0.'],
      [{ code: 'APPLY10', subtotal: true }, 400, 'Invalid subtotal: A valid number is required.'],
      [{ code: 'APPLY10', subtotal: 30, cart_items: 'lots' }, 400, 'Invalid cart_items: Expected a list of items.'],
      [{ code: 'APPLY10', subtotal: 30, cart_items: [5] }, 400, 'Invalid cart_items[0]: Invalid data. Expected a dictionary.'],
      [{ code: 'APPLY10', subtotal: 30, cart_items: [{ price: '1.00' }] }, 400, 'Invalid cart_items[0].product_id: A valid integer is required.'],
      [{ code: 'APPLY10', subtotal: 30, cart_items: [{ product_id: 1, price: 'x' }] }, 400, 'Invalid cart_items[0].price: A valid number is required.'],
      [{ code: 'APPLY10', subtotal: 30, cart_items: [{ product_id: 1, price: '1', quantity: 0 }] }, 400, 'Invalid cart_items[0].quantity: A valid positive integer is required.'],
    ];
    for (const [payload, status, error] of refusals) {
      const r = await call('POST', '/api/promotions/apply/', null, payload);
      assert.equal(r.status, status, JSON.stringify(payload));
      assert.deepEqual(r.body, { error }, JSON.stringify(payload));
    }
    const empty = await app.inject({ method: 'POST', url: '/api/promotions/apply/' });
    assert.deepEqual([empty.statusCode, empty.json()], [400, { error: 'Promotion code is required' }]);
    assert.equal((await call('POST', '/api/promotions/apply/', { headers: { authorization: 'Bearer nope' } } as TestUser, { code: 'APPLY10', subtotal: 30 })).status, 401);
    assert.deepEqual(await snapshot(), before_, 'applying redeems nothing');
  });

  test("apply: a restricted code takes its discount from the items whose product or product's category it lists", async () => {
    const minis = await f.category(d());
    const lamps = await f.category(d());
    const dragon = await f.product(d(), { category_id: minis.id });
    const knight = await f.product(d(), { category_id: minis.id });
    const lamp = await f.product(d(), { category_id: lamps.id });
    const cart = [
      { product_id: dragon.id, price: '10.00', quantity: 2 },
      { product_id: knight.id, price: 5.5, quantity: 1 },
      { product_id: lamp.id, price: '40.00', quantity: 1 },
      { product_id: 999999, price: '3.00', quantity: 1 },
    ];
    const byProduct = await promo(d(), { discount_type: 'percentage', discount_value: '50.00', applicable_to_all: false, products: [dragon.id] });
    const r1 = await call('POST', '/api/promotions/apply/', null, { code: byProduct.code, subtotal: '68.50', cart_items: cart });
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.deepEqual([r1.body.applicable_items_total, r1.body.discount_amount, r1.body.final_total], [20, 10, 58.5]);

    const byCategory = await promo(d(), { discount_type: 'percentage', discount_value: '10.00', applicable_to_all: false, categories: [minis.id] });
    const r2 = await call('POST', '/api/promotions/apply/', null, { code: byCategory.code, subtotal: '68.50', cart_items: cart });
    assert.deepEqual([r2.body.applicable_items_total, r2.body.discount_amount, r2.body.final_total], [25.5, 2.55, 65.95]);

    const both = await promo(d(), { discount_type: 'fixed', discount_value: '100.00', applicable_to_all: false, products: [lamp.id], categories: [minis.id] });
    const r3 = await call('POST', '/api/promotions/apply/', null, { code: both.code, subtotal: '68.50', cart_items: cart });
    assert.deepEqual([r3.body.applicable_items_total, r3.body.discount_amount, r3.body.final_total], [65.5, 65.5, 3], 'fixed is capped at the applicable total');

    // never more than the subtotal, whatever the items claim
    const r4 = await call('POST', '/api/promotions/apply/', null, { code: both.code, subtotal: '10.00', cart_items: cart });
    assert.deepEqual([r4.body.discount_amount, r4.body.final_total], [10, 0]);

    for (const items of [undefined, [], [{ product_id: lamp.id, price: '40.00', quantity: 1 }, { product_id: 999999, price: '1.00' }]]) {
      const r = await call('POST', '/api/promotions/apply/', null, { code: byCategory.code, subtotal: 50, ...(items ? { cart_items: items } : {}) });
      assert.equal(r.status, 400);
      assert.deepEqual(r.body, { error: 'This code does not apply to any item in your cart' });
    }
    // a code for everyone takes the whole subtotal as its base, whatever the items
    const everyone = await promo(d(), { discount_type: 'percentage', discount_value: '10.00' });
    const r5 = await call('POST', '/api/promotions/apply/', null, { code: everyone.code, subtotal: 68.5, cart_items: cart });
    assert.deepEqual([r5.body.applicable_items_total, r5.body.discount_amount], [68.5, 6.85]);
  });

  test("apply: a signed-in caller's uses and orders count; a guest fails logged-in and first-order codes", async () => {
    const newcomer = await signedIn(app, db());
    const regular = await signedIn(app, db());
    await order(d(), regular.id);
    const firstOrder = await promo(d(), { first_order_only: true, usage_limit_per_user: 1 });
    assert.equal((await call('POST', '/api/promotions/apply/', newcomer, { code: firstOrder.code, subtotal: 10 })).status, 200);
    assert.deepEqual((await call('POST', '/api/promotions/apply/', null, { code: firstOrder.code, subtotal: 10 })).body, { error: 'This code requires you to be logged in' });
    assert.deepEqual((await call('POST', '/api/promotions/apply/', regular, { code: firstOrder.code, subtotal: 10 })).body, { error: 'This code is only valid for first-time orders' });
    await usage(d(), firstOrder.id, { userId: newcomer.id });
    assert.deepEqual((await call('POST', '/api/promotions/apply/', newcomer, { code: firstOrder.code, subtotal: 10 })).body, { error: 'You have already used this code the maximum number of times' });
    const members = await promo(d(), { logged_in_only: true });
    assert.equal((await call('POST', '/api/promotions/apply/', regular, { code: members.code, subtotal: 10 })).body.discount_amount, 1);
  });

  // ---------------------------------------------------------------------------------------------
  // The checkout's hold

  const hold = (input: { code: string; userId: number | null; lines: PromotionLine[]; checkoutId: number; now?: Date }) =>
    d().transaction().execute((trx) => holdPromotion(trx, input));
  const refusedWith = (error: string) => (err: unknown) => {
    assert.ok(err instanceof AppError, String(err));
    assert.equal(err.statusCode, 400);
    assert.deepEqual(err.options.body, { error });
    return true;
  };

  test('holdPromotion: checks the rules against the lines, holds one use for the checkout, and returns the discount', async () => {
    const cat = await f.category(d());
    const dragon = await f.product(d(), { category_id: cat.id });
    const lamp = await f.product(d());
    const lines: PromotionLine[] = [
      { product_id: dragon.id, category_id: cat.id, price: '12.50', quantity: 2 },
      { product_id: lamp.id, category_id: lamp.category_id, price: '40.00', quantity: 1 },
    ];
    const p = await promo(d(), { code: 'HOLD15', discount_type: 'percentage', discount_value: '15.00', usage_type: 'limited', usage_limit: 5, applicable_to_all: false, categories: [cat.id] });
    const c = await checkout(d(), ann.id);
    const held = await hold({ code: 'hold15', userId: ann.id, lines, checkoutId: c.id });
    assert.deepEqual(held, { promotionId: p.id, code: 'HOLD15', discount: '3.75', freeShipping: false });
    const rows = await usages(p.id);
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]!.user_id, rows[0]!.checkout_id, rows[0]!.order_id, rows[0]!.discount_amount], [ann.id, c.id, null, '3.75']);

    const ship = await promo(d(), { discount_type: 'free_shipping', discount_value: '0.00' });
    assert.deepEqual(await hold({ code: ship.code, userId: null, lines, checkoutId: (await checkout(d())).id }), { promotionId: ship.id, code: ship.code, discount: '0.00', freeShipping: true });
    const fixed = await promo(d(), { discount_type: 'fixed', discount_value: '100.00' });
    assert.equal((await hold({ code: fixed.code, userId: null, lines, checkoutId: (await checkout(d())).id })).discount, '65.00', 'capped at the order');
  });

  test('holdPromotion: refusals throw 400 {"error": reason} and hold nothing; held uses count; `now` is honoured', async () => {
    const lamp = await f.product(d());
    const lines: PromotionLine[] = [{ product_id: lamp.id, category_id: lamp.category_id, price: '10.00', quantity: 1 }];
    const other = await f.product(d());
    const before_ = (await snapshot()).usages;
    await assert.rejects(hold({ code: 'NO-SUCH-CODE', userId: null, lines, checkoutId: (await checkout(d())).id }), refusedWith('Invalid promotion code'));
    await assert.rejects(hold({ code: '', userId: null, lines, checkoutId: (await checkout(d())).id }), refusedWith('Invalid promotion code'));
    const minimum = await promo(d(), { minimum_order_amount: '10.01' });
    await assert.rejects(hold({ code: minimum.code, userId: ann.id, lines, checkoutId: (await checkout(d())).id }), refusedWith('Minimum order amount of $10.01 required'));
    const restricted = await promo(d(), { applicable_to_all: false, products: [other.id] });
    await assert.rejects(hold({ code: restricted.code, userId: ann.id, lines, checkoutId: (await checkout(d())).id }), refusedWith('This code does not apply to any item in your cart'));
    const members = await promo(d(), { logged_in_only: true });
    await assert.rejects(hold({ code: members.code, userId: null, lines, checkoutId: (await checkout(d())).id }), refusedWith('This code requires you to be logged in'));
    const later = await promo(d(), { valid_from: iso(Date.now() + DAY), valid_until: iso(Date.now() + 2 * DAY) });
    await assert.rejects(hold({ code: later.code, userId: null, lines, checkoutId: (await checkout(d())).id }), refusedWith('This promotion code is not valid yet'));
    assert.deepEqual((await snapshot()).usages, before_);
    // `now` moves the clock the rules read
    assert.equal((await hold({ code: later.code, userId: null, lines, checkoutId: (await checkout(d())).id, now: new Date(Date.now() + 1.5 * DAY) })).promotionId, later.id);

    // a held use counts for everyone at once: the next hold, validate/ and apply/
    const single = await promo(d(), { usage_type: 'single' });
    await hold({ code: single.code, userId: ann.id, lines, checkoutId: (await checkout(d(), ann.id)).id });
    await assert.rejects(hold({ code: single.code, userId: bob.id, lines, checkoutId: (await checkout(d(), bob.id)).id }), refusedWith('This code has already been used'));
    assert.deepEqual((await call('POST', '/api/promotions/validate/', null, { code: single.code, order_amount: 10 })).body, { valid: false, message: 'This code has already been used' });
    const perUser = await promo(d(), { usage_limit_per_user: 1 });
    await hold({ code: perUser.code, userId: ann.id, lines, checkoutId: (await checkout(d(), ann.id)).id });
    await assert.rejects(hold({ code: perUser.code, userId: ann.id, lines, checkoutId: (await checkout(d(), ann.id)).id }), refusedWith('You have already used this code the maximum number of times'));
    assert.equal((await hold({ code: perUser.code, userId: bob.id, lines, checkoutId: (await checkout(d(), bob.id)).id })).promotionId, perUser.id);
    assert.equal((await usages(perUser.id)).length, 2);

    // outside a transaction there is no lock to hold: refused outright
    await assert.rejects(holdPromotion(d(), { code: perUser.code, userId: null, lines, checkoutId: (await checkout(d())).id }), /inside the checkout transaction/);
  });

  test(`holdPromotion: 20 checkouts racing for a code's last use hold it exactly once [${backend}]`, async () => {
    const lamp = await f.product(d());
    const lines: PromotionLine[] = [{ product_id: lamp.id, category_id: lamp.category_id, price: '10.00', quantity: 1 }];
    const p = await promo(d(), { usage_type: 'limited', usage_limit: 3 });
    await usage(d(), p.id);
    await usage(d(), p.id, { orderId: (await order(d(), null)).id });
    const checkouts = [];
    for (let i = 0; i < 20; i++) checkouts.push((await checkout(d())).id);
    const results = await Promise.allSettled(checkouts.map((checkoutId) => hold({ code: p.code, userId: null, lines, checkoutId })));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1, JSON.stringify(lost.map((r) => String(r.reason))));
    assert.ok(lost.every((r) => r.reason instanceof AppError && (r.reason.options.body as { error: string }).error === 'This code has reached its usage limit'));
    assert.equal((await usages(p.id)).length, 3);

    // and one customer racing themself for a once-per-customer code
    const once = await promo(d(), { usage_type: 'unlimited', usage_limit_per_user: 1 });
    const mine = [];
    for (let i = 0; i < 20; i++) mine.push((await checkout(d(), ann.id)).id);
    const raced = await Promise.allSettled(mine.map((checkoutId) => hold({ code: once.code, userId: ann.id, lines, checkoutId })));
    assert.equal(raced.filter((r) => r.status === 'fulfilled').length, 1);
    assert.equal((await usages(once.id)).length, 1);
  });

  // ---------------------------------------------------------------------------------------------
  // Staff: campaigns

  if (backend === 'postgres') {
    test('a campaign naming a code and that code deleted at the same time do not deadlock: the code is taken first [postgres]', async () => {
      const code = await promo(d());
      const campaign = await d()
        .insertInto('campaigns')
        .values({ name: 'Race', start_date: iso(Date.now() - DAY), end_date: iso(Date.now() + DAY) })
        .returning('id')
        .executeTakeFirstOrThrow();
      await d().insertInto('campaign_codes').values({ campaign_id: campaign.id, promotion_id: code.id }).execute();
      // The deletion: the code's row taken (as its DELETE takes it), then (on `go`) the delete and its cascade.
      let locked!: () => void;
      const lockedNow = new Promise<void>((r) => (locked = r));
      let go!: () => void;
      const going = new Promise<void>((r) => (go = r));
      const deletion = d().transaction().execute(async (trx) => {
        await trx.selectFrom('promotion_codes').select('id').where('id', '=', code.id).forUpdate().execute();
        locked();
        await going;
        await trx.deleteFrom('promotion_codes').where('id', '=', code.id).execute();
      });
      await lockedNow;
      // The campaign write, step by step as updateCampaign makes it (without its retry).
      const write = d().transaction().execute(async (trx) => {
        await repo.lockCampaign(trx, Number(campaign.id));
        const known = await repo.existingIds(trx, 'promotion_codes', [Number(code.id)]);
        await repo.setCampaignCodes(trx, Number(campaign.id), [...known]);
      });
      await new Promise((r) => setTimeout(r, 300)); // the write is waiting on the code now
      go();
      const [deleted, written] = await Promise.allSettled([deletion, write]);
      assert.equal(deleted.status, 'fulfilled', `the deletion: ${(deleted as PromiseRejectedResult).reason}`);
      assert.equal(written.status, 'fulfilled', `the campaign write: ${(written as PromiseRejectedResult).reason}`);
      assert.equal((await d().selectFrom('campaign_codes').select('promotion_id').where('campaign_id', '=', campaign.id).execute()).length, 0);
    });
  }

  test('staff campaigns: create, list, read, replace, change and delete; is_running; codes by id', async () => {
    const a = await promo(d(), { description: 'campaign a' });
    const b = await promo(d(), { description: 'campaign b' });
    const now = Date.now();
    const r = await call('POST', '/api/promotions/campaigns/', staff, {
      name: '  Spring ', description: 'Flowers', start_date: iso(now - DAY), end_date: iso(now + DAY), promotion_codes: [b.id, a.id, a.id], is_running: false, id: 999,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), CAMPAIGN_KEYS);
    assert.deepEqual([r.body.name, r.body.description, r.body.is_active, r.body.is_running], ['Spring', 'Flowers', true, true]);
    assert.deepEqual(r.body.promotion_codes.map((p: { id: number }) => p.id), [a.id, b.id]);
    assert.deepEqual(Object.keys(r.body.promotion_codes[0]).sort(), PROMOTION_KEYS);
    const id = r.body.id;

    const future = await call('POST', '/api/promotions/campaigns/', staff, { name: 'Autumn', start_date: iso(now + DAY), end_date: iso(now + 2 * DAY), promotion_code_ids: [a.id] });
    assert.equal(future.status, 201);
    assert.equal(future.body.is_running, false);
    assert.equal(future.body.description, '');
    const off = await call('POST', '/api/promotions/campaigns/', staff, { name: 'Paused', start_date: iso(now - DAY), end_date: iso(now + DAY), is_active: false });
    assert.deepEqual([off.body.is_running, off.body.promotion_codes], [false, []]);

    const list = await call('GET', '/api/promotions/campaigns/', staff);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.results.slice(0, 3).map((c: { id: number }) => c.id), [off.body.id, future.body.id, id]);
    assert.equal(list.body.count, (await d().selectFrom('campaigns').select('id').execute()).length);
    assert.deepEqual((await call('GET', `/api/promotions/campaigns/${id}/`, staff)).body, r.body);
    assert.deepEqual((await call('GET', '/api/promotions/campaigns/999999/', staff)).body, NOT_FOUND);

    const patched = await call('PATCH', `/api/promotions/campaigns/${id}/`, staff, { promotion_code_ids: [b.id], is_active: false });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual([patched.body.name, patched.body.is_running, patched.body.promotion_codes.map((p: { id: number }) => p.id)], ['Spring', false, [b.id]]);
    const kept = await call('PATCH', `/api/promotions/campaigns/${id}/`, staff, { description: 'Still b' });
    assert.deepEqual(kept.body.promotion_codes.map((p: { id: number }) => p.id), [b.id]);
    const put = await call('PUT', `/api/promotions/campaigns/${id}/`, staff, { name: 'Summer', start_date: '2026-06-01', end_date: '2026-09-01', promotion_codes: [] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual([put.body.name, put.body.start_date, put.body.end_date, put.body.description, put.body.promotion_codes], ['Summer', '2026-06-01T00:00:00Z', '2026-09-01T00:00:00Z', 'Still b', []]);
    assert.deepEqual((await call('PUT', '/api/promotions/campaigns/999999/', staff, { name: 'x', start_date: '2026-06-01', end_date: '2026-09-01' })).body, NOT_FOUND);

    const del = await call('DELETE', `/api/promotions/campaigns/${id}/`, staff);
    assert.equal(del.status, 204);
    assert.deepEqual((await call('GET', `/api/promotions/campaigns/${id}/`, staff)).body, NOT_FOUND);
    assert.deepEqual((await call('DELETE', `/api/promotions/campaigns/${id}/`, staff)).body, NOT_FOUND);
    assert.equal((await call('GET', `/api/promotions/codes/${b.id}/`, staff)).status, 200, 'its codes stay');
    // deleting a code takes it out of its campaigns
    assert.equal((await call('DELETE', `/api/promotions/codes/${a.id}/`, staff)).status, 204);
    assert.deepEqual((await call('GET', `/api/promotions/campaigns/${future.body.id}/`, staff)).body.promotion_codes, []);
  });

  test('bad campaign input is 400 with field errors and writes nothing', async () => {
    const c = await d().insertInto('campaigns').values({ name: 'Fixed', start_date: '2026-01-01T00:00:00Z', end_date: '2026-02-01T00:00:00Z' }).returning('id').executeTakeFirstOrThrow();
    const good = { name: 'Winter', start_date: '2026-12-01T00:00:00Z', end_date: '2027-01-01T00:00:00Z' };
    const cases: [Parameters<typeof call>[0], string, unknown, Record<string, string[]>][] = [
      ['POST', '/api/promotions/campaigns/', {}, { name: ['This field is required.'], start_date: ['This field is required.'], end_date: ['This field is required.'] }],
      ['POST', '/api/promotions/campaigns/', { ...good, name: '   ' }, { name: ['This field may not be blank.'] }],
      ['POST', '/api/promotions/campaigns/', { ...good, name: 'x'.repeat(201) }, { name: ['Ensure this field has no more than 200 characters.'] }],
      ['POST', '/api/promotions/campaigns/', { ...good, end_date: '2026-11-30T00:00:00Z' }, { end_date: ['Ensure end_date is after start_date.'] }],
      ['POST', '/api/promotions/campaigns/', { ...good, start_date: '12/01/2026' }, { start_date: [DATETIME_FORMAT] }],
      ['POST', '/api/promotions/campaigns/', { ...good, promotion_codes: [999999] }, { promotion_codes: ['Invalid pk "999999" - object does not exist.'] }],
      ['PATCH', `/api/promotions/campaigns/${c.id}/`, { end_date: '2025-12-31' }, { end_date: ['Ensure end_date is after start_date.'] }],
      ['PATCH', `/api/promotions/campaigns/${c.id}/`, { promotion_code_ids: [999999] }, { promotion_code_ids: ['Invalid pk "999999" - object does not exist.'] }],
      ['PUT', `/api/promotions/campaigns/${c.id}/`, { name: 'x' }, { start_date: ['This field is required.'], end_date: ['This field is required.'] }],
    ];
    const before_ = await snapshot();
    for (const [method, url, payload, errors] of cases) {
      const r = await call(method, url, staff, payload);
      assert.equal(r.status, 400, `${method} ${JSON.stringify(payload)}`);
      assert.deepEqual(r.body, { error: true, message: BAD_REQUEST, status_code: 400, code: 'bad_request', errors }, `${method} ${JSON.stringify(payload)}`);
    }
    assert.deepEqual(await snapshot(), before_);
  });

  // ---------------------------------------------------------------------------------------------
  // Staff: analytics

  test('analytics: per code, the uses that became orders within the dates; held uses do not count', async () => {
    await d().deleteFrom('promotion_codes').execute();
    const busy = await promo(d(), { code: 'BUSY', description: 'busy one' });
    const quiet = await promo(d(), { code: 'QUIET', description: 'quiet one' });
    await promo(d(), { code: 'UNUSED' });
    const jan = await order(d(), ann.id, '2026-01-15T10:00:00Z');
    const jan2 = await order(d(), bob.id, '2026-01-31T23:30:00Z');
    const feb = await order(d(), ann.id, '2026-02-10T10:00:00Z');
    const guest = await order(d(), null, '2026-01-20T10:00:00Z');
    await usage(d(), busy.id, { userId: ann.id, orderId: jan.id, discount: '2.50' });
    await usage(d(), busy.id, { userId: bob.id, orderId: jan2.id, discount: '3.00' });
    await usage(d(), busy.id, { userId: null, orderId: guest.id, discount: '1.25' });
    await usage(d(), busy.id, { userId: ann.id, orderId: feb.id, discount: '4.00' });
    await usage(d(), busy.id, { userId: ann.id }); // held by an open checkout: not an order yet
    await usage(d(), quiet.id, { userId: ann.id, orderId: feb.id, discount: '1.00' });

    const all = await call('GET', '/api/promotions/analytics/', staff);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.deepEqual(all.body, {
      analytics: [
        { code: 'BUSY', description: 'busy one', total_uses: 4, total_discount: 10.75, unique_users: 2, conversion_rate: '100.00%' },
        { code: 'QUIET', description: 'quiet one', total_uses: 1, total_discount: 1, unique_users: 1, conversion_rate: '100.00%' },
        { code: 'UNUSED', description: '', total_uses: 0, total_discount: 0, unique_users: 0, conversion_rate: '0.00%' },
      ],
      total_promotions: 3,
      date_range: { start: null, end: null },
    });

    // a date alone as the end takes in its whole day
    const january = await call('GET', '/api/promotions/analytics/?start_date=2026-01-01&end_date=2026-01-31', staff);
    assert.deepEqual(january.body.analytics[0], { code: 'BUSY', description: 'busy one', total_uses: 3, total_discount: 6.75, unique_users: 2, conversion_rate: '75.00%' });
    // ties in uses: newest code first
    assert.deepEqual(january.body.analytics.slice(1).map((a: { code: string; total_uses: number }) => [a.code, a.total_uses]), [['UNUSED', 0], ['QUIET', 0]]);
    assert.deepEqual(january.body.date_range, { start: '2026-01-01', end: '2026-01-31' });
    const fromFeb = await call('GET', '/api/promotions/analytics/?start_date=2026-02-01T00:00:00Z', staff);
    assert.deepEqual(fromFeb.body.analytics.map((a: { code: string; total_uses: number; conversion_rate: string }) => [a.code, a.total_uses, a.conversion_rate]).slice(0, 2), [
      ['QUIET', 1, '100.00%'],
      ['BUSY', 1, '25.00%'],
    ]);
    const until = await call('GET', '/api/promotions/analytics/?end_date=2026-01-20T10:00:00Z', staff);
    assert.equal(until.body.analytics[0].total_uses, 2, 'a datetime end is included');

    for (const [query, errors] of [
      ['start_date=yesterday', { start_date: ['Enter a valid date or datetime.'] }],
      ['start_date=2026-02-30&end_date=2026-13-01', { start_date: ['Enter a valid date or datetime.'], end_date: ['Enter a valid date or datetime.'] }],
    ] as const) {
      const r = await call('GET', `/api/promotions/analytics/?${query}`, staff);
      assert.equal(r.status, 400, query);
      assert.deepEqual(r.body, { error: true, message: BAD_REQUEST, status_code: 400, code: 'bad_request', errors }, query);
    }
  });

  test('datetimes are read as DRF reads them', () => {
    assert.deepEqual(parseDateTime('2026-03-01T10:20:30.123456+05:30'), { text: '2026-03-01T10:20:30.123456+05:30', ms: Date.parse('2026-03-01T04:50:30.123Z') });
    assert.equal(parseDateTime('2026-03-01 10:20')?.text, '2026-03-01T10:20:00Z');
    assert.equal(parseDateTime('2026-03-01')?.text, '2026-03-01T00:00:00Z');
    assert.equal(parseDateTime('2026-03-01T10:20:30-0800')?.text, '2026-03-01T10:20:30-08:00');
    for (const bad of ['2026-02-29', '2026-03-01T24:00', '2026-03-01T10:60', '2026-3-1', '2026-03-01T10:20+15:00', 'now', '']) assert.equal(parseDateTime(bad), undefined, bad);
  });
});
