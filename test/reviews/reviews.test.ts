// Review writes: signed-in users review active products once each, and read, change or delete
// only their own reviews; the product's rating aggregates follow every write.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { DomainEvents, EventName } from '../../src/infra/events.ts';
import { forEachBackend } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import * as f from '../helpers/factories.ts';

const REVIEW_KEYS = ['created_at', 'id', 'is_verified_purchase', 'product', 'rating', 'review_text', 'updated_at', 'user', 'user_name'];
const NOT_FOUND = { error: true, message: 'Not found.', status_code: 404, code: 'not_found' };
const CONFLICT = { error: true, message: 'Database integrity error. This operation would violate data constraints.', status_code: 409, code: 'conflict' };
const UNAUTHENTICATED = { error: true, message: 'Authentication credentials were not provided.', status_code: 401, code: 'not_authenticated' };

forEachBackend('review writes', ({ db }) => {
  let app: FastifyInstance;
  let ann: TestUser;
  let bob: TestUser;

  const d = () => db().db;
  const call = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, who?: TestUser | null, payload?: unknown) =>
    getJson(app, url, { method, ...(payload === undefined ? {} : { payload: payload as object }), headers: who ? who.headers : {} });
  const reviews = () => d().selectFrom('reviews').selectAll().orderBy('id').execute();
  const aggregates = async (productId: number) => {
    const body = (await getJson(app, `/api/products/${productId}/`)).body;
    return [body.review_count, body.average_rating];
  };

  function watch<K extends EventName>(name: K) {
    const seen: DomainEvents[K][] = [];
    const off = app.events.on(name, (payload) => {
      seen.push(payload);
    });
    return () => {
      off();
      return seen;
    };
  }

  before(async () => {
    app = await testApp(db());
    ann = await signedIn(app, db(), { first_name: 'Ann', last_name: 'lee' });
    bob = await signedIn(app, db(), { first_name: 'Bob', last_name: '' });
  });
  after(() => app.close());

  test('writing a review needs a signed-in user', async () => {
    const p = await f.product(d());
    const before_ = await reviews();
    const anon = await call('POST', `/api/products/${p.id}/reviews/`, null, { rating: 5, review_text: 'Nice' });
    assert.equal(anon.status, 401);
    assert.deepEqual(anon.body, UNAUTHENTICATED);
    assert.equal(anon.headers['www-authenticate'], 'Bearer realm="api"');
    assert.equal((await call('POST', `/api/products/${p.id}/reviews/`, null, { rating: 9 })).status, 401, 'before the body is validated');
    const invalid = await call('POST', `/api/products/${p.id}/reviews/`, { headers: { authorization: 'Bearer nope' } } as TestUser, { rating: 5, review_text: 'Nice' });
    assert.equal(invalid.status, 401);
    assert.equal(invalid.body.code, 'token_not_valid');
    assert.deepEqual(await reviews(), before_);
  });

  test('a user reviews a product once: 201 Review; the URL names the product; read-only fields are ignored', async () => {
    const p = await f.product(d());
    const elsewhere = await f.product(d());
    const created = watch('review.created');
    const r = await call('POST', `/api/products/${p.id}/reviews/`, ann, {
      product: elsewhere.id, rating: 4, review_text: '  Lovely detail  ', is_verified_purchase: true, user: bob.id, created_at: '2000-01-01T00:00:00Z',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), REVIEW_KEYS);
    assert.deepEqual(
      [r.body.product, r.body.user, r.body.user_name, r.body.rating, r.body.review_text, r.body.is_verified_purchase],
      [p.id, ann.id, 'Ann L.', 4, 'Lovely detail', false],
    );
    assert.equal(r.body.created_at, r.body.updated_at);
    assert.doesNotMatch(r.body.created_at, /^2000/);
    assert.deepEqual(created(), [{ id: r.body.id, productId: p.id }]);
    const row = await d().selectFrom('reviews').selectAll().where('id', '=', r.body.id).executeTakeFirstOrThrow();
    assert.deepEqual([row.product_id, row.user_id, row.rating, row.review_text, row.is_verified_purchase], [p.id, ann.id, 4, 'Lovely detail', false]);
    assert.deepEqual(await aggregates(p.id), [1, 4]);
    assert.equal((await getJson(app, `/api/products/${p.id}/reviews/`)).body.results[0].id, r.body.id);

    const before_ = await reviews();
    const again = await call('POST', `/api/products/${p.id}/reviews/`, ann, { rating: 1, review_text: 'Changed my mind' });
    assert.equal(again.status, 409);
    assert.deepEqual(again.body, CONFLICT);
    assert.deepEqual(await reviews(), before_);
    assert.deepEqual(await aggregates(p.id), [1, 4]);

    const asString = await call('POST', `/api/products/${p.id}/reviews/`, bob, { rating: '5', review_text: 'Great' });
    assert.equal(asString.status, 201, 'a numeric string is a valid choice, as in DRF');
    assert.equal(asString.body.user_name, 'Bob');
    assert.equal(asString.body.rating, 5);
    assert.deepEqual(await aggregates(p.id), [2, 4.5]);
  });

  test('two reviews racing for one product and user: one 201, one 409', async () => {
    const p = await f.product(d());
    const post = () => call('POST', `/api/products/${p.id}/reviews/`, ann, { rating: 5, review_text: 'Twice?' });
    const results = await Promise.all([post(), post()]);
    assert.deepEqual(results.map((r) => r.status).sort(), [201, 409]);
    assert.deepEqual(await aggregates(p.id), [1, 5]);
  });

  test('a missing or inactive product is 409 and nothing is written', async () => {
    const inactive = await f.product(d(), { is_active: false });
    const before_ = await reviews();
    for (const id of [999999, inactive.id]) {
      const r = await call('POST', `/api/products/${id}/reviews/`, ann, { rating: 5, review_text: 'Where is it?' });
      assert.equal(r.status, 409, String(id));
      assert.deepEqual(r.body, CONFLICT);
    }
    assert.deepEqual((await call('POST', '/api/products/abc/reviews/', ann, { rating: 5, review_text: 'x' })).body, NOT_FOUND);
    assert.deepEqual(await reviews(), before_);
  });

  test('bad ratings and blank text are 400 field errors and write nothing', async () => {
    const p = await f.product(d());
    const choice = (v: string) => ({ rating: [`"${v}" is not a valid choice.`] });
    const cases: [unknown, Record<string, string[]>][] = [
      [{ rating: 7, review_text: 'ok' }, choice('7')],
      [{ rating: 0, review_text: 'ok' }, choice('0')],
      [{ rating: -1, review_text: 'ok' }, choice('-1')],
      [{ rating: 2.5, review_text: 'ok' }, choice('2.5')],
      [{ rating: 'abc', review_text: 'ok' }, choice('abc')],
      [{ rating: '7', review_text: 'ok' }, choice('7')],
      [{ rating: true, review_text: 'ok' }, choice('true')],
      [{ review_text: 'ok' }, { rating: ['This field is required.'] }],
      [{ rating: 3 }, { review_text: ['This field is required.'] }],
      [{ rating: 3, review_text: '' }, { review_text: ['This field may not be blank.'] }],
      [{ rating: 3, review_text: ' \n\t ' }, { review_text: ['This field may not be blank.'] }],
      [{ rating: 3, review_text: 'x'.repeat(5001) }, { review_text: ['Ensure this field has no more than 5000 characters.'] }],
      [{ rating: 3, review_text: 'ok', product: 'abc' }, { product: ['A valid integer is required.'] }],
    ];
    const before_ = await reviews();
    for (const [payload, errors] of cases) {
      const r = await call('POST', `/api/products/${p.id}/reviews/`, ann, payload);
      assert.equal(r.status, 400, JSON.stringify(payload).slice(0, 80));
      assert.deepEqual(r.body, { error: true, message: 'Bad request. Please check your input.', status_code: 400, code: 'bad_request', errors }, JSON.stringify(payload).slice(0, 80));
    }
    assert.deepEqual(await reviews(), before_);
    assert.deepEqual(await aggregates(p.id), [0, 0]);
  });

  test('own reviews only: GET, PUT, PATCH, DELETE of another user’s or a missing review are 404', async () => {
    const p = await f.product(d());
    const mine = (await call('POST', `/api/products/${p.id}/reviews/`, ann, { rating: 3, review_text: 'Mine' })).body;
    const url = `/api/products/reviews/${mine.id}/`;
    const before_ = await reviews();
    for (const [method, payload] of [['GET', undefined], ['PUT', { rating: 1, review_text: 'Hijacked' }], ['PATCH', { rating: 1 }], ['DELETE', undefined]] as const) {
      const anon = await call(method, url, null, payload);
      assert.deepEqual([anon.status, anon.body], [401, UNAUTHENTICATED], `${method} anonymous`);
      for (const [who, target] of [[bob, url], [ann, '/api/products/reviews/999999/']] as const) {
        const r = await call(method, target, who, payload);
        assert.equal(r.status, 404, `${method} ${target}`);
        assert.deepEqual(r.body, NOT_FOUND);
      }
    }
    assert.deepEqual(await reviews(), before_);
    const own = await call('GET', url, ann);
    assert.equal(own.status, 200);
    assert.deepEqual(own.body, mine);
  });

  test('changing and deleting your review; aggregates and events follow', async () => {
    const p = await f.product(d());
    const a = (await call('POST', `/api/products/${p.id}/reviews/`, ann, { rating: 4, review_text: 'Good' })).body;
    const b = (await call('POST', `/api/products/${p.id}/reviews/`, bob, { rating: 5, review_text: 'Great' })).body;
    assert.deepEqual(await aggregates(p.id), [2, 4.5]);
    const updated = watch('review.updated');

    const patched = await call('PATCH', `/api/products/reviews/${b.id}/`, bob, { rating: 1, is_verified_purchase: true, user: ann.id, product: 999, created_at: '2000-01-01T00:00:00Z' });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual([patched.body.rating, patched.body.review_text, patched.body.is_verified_purchase, patched.body.user, patched.body.product], [1, 'Great', false, bob.id, p.id]);
    assert.equal(patched.body.created_at, b.created_at);
    assert.notEqual(patched.body.updated_at, b.updated_at);
    assert.deepEqual(await aggregates(p.id), [2, 2.5]);

    const before_ = await reviews();
    for (const [method, payload, errors] of [
      ['PUT', { rating: 2 }, { review_text: ['This field is required.'] }],
      ['PATCH', { review_text: '   ' }, { review_text: ['This field may not be blank.'] }],
      ['PATCH', { rating: 6 }, { rating: ['"6" is not a valid choice.'] }],
    ] as const) {
      const r = await call(method, `/api/products/reviews/${b.id}/`, bob, payload);
      assert.equal(r.status, 400, `${method} ${JSON.stringify(payload)}`);
      assert.deepEqual(r.body.errors, errors);
    }
    assert.deepEqual(await reviews(), before_);

    const put = await call('PUT', `/api/products/reviews/${b.id}/`, bob, { rating: 3, review_text: ' Better after a week ' });
    assert.equal(put.status, 200);
    assert.deepEqual([put.body.rating, put.body.review_text, put.body.user_name], [3, 'Better after a week', 'Bob']);
    assert.deepEqual(await aggregates(p.id), [2, 3.5]);
    assert.deepEqual(updated(), [{ id: b.id, productId: p.id }, { id: b.id, productId: p.id }]);

    const deleted = watch('review.deleted');
    const gone = await app.inject({ method: 'DELETE', url: `/api/products/reviews/${a.id}/`, headers: ann.headers });
    assert.equal(gone.statusCode, 204);
    assert.equal(gone.body, '');
    assert.deepEqual(deleted(), [{ id: a.id, productId: p.id }]);
    assert.equal(await d().selectFrom('reviews').select('id').where('id', '=', a.id).executeTakeFirst(), undefined);
    assert.deepEqual(await aggregates(p.id), [1, 3]);
    assert.deepEqual((await call('GET', `/api/products/reviews/${a.id}/`, ann)).body, NOT_FOUND);
    assert.equal((await call('DELETE', `/api/products/reviews/${b.id}/`, bob)).status, 204);
    assert.deepEqual(await aggregates(p.id), [0, 0]);

    const again = await call('POST', `/api/products/${p.id}/reviews/`, ann, { rating: 2, review_text: 'Second try' });
    assert.equal(again.status, 201, 'after deleting, the user may review the product again');
  });

  test('a deactivated product’s reviews are listed nowhere public, also not from the cache; reactivated, they are back', async () => {
    const staff = await signedIn(app, db(), { staff: true });
    const p = await f.product(d());
    await call('POST', `/api/products/${p.id}/reviews/`, ann, { rating: 4, review_text: 'Sturdy print' });
    const listed = await getJson(app, `/api/products/${p.id}/reviews/`);
    assert.equal(listed.body.count, 1);
    assert.equal((await getJson(app, `/api/products/${p.id}/reviews/`)).headers['x-cache'], 'HIT', 'the list is cached, so the test shows the cache follows');

    assert.equal((await call('DELETE', `/api/products/${p.id}/`, staff)).status, 204);
    const hidden = await getJson(app, `/api/products/${p.id}/reviews/`);
    assert.equal(hidden.status, 200);
    assert.deepEqual([hidden.body.count, hidden.body.results], [0, []], 'as an unknown product: none');
    assert.equal((await getJson(app, `/api/products/${p.id}/`)).status, 404);
    const top = await getJson(app, '/api/products/?ordering=-average_rating&page_size=100');
    assert.ok(!top.body.results.some((c: { id: number }) => c.id === p.id), 'not in the top rated');
    const rated = await getJson(app, '/api/products/advanced-search/?sort=rating&min_rating=1&per_page=100');
    assert.ok(!rated.body.results.some((c: { id: number }) => c.id === p.id), 'not in advanced search by rating');

    assert.equal((await call('PATCH', `/api/products/${p.id}/`, staff, { is_active: true })).status, 200);
    assert.equal((await getJson(app, `/api/products/${p.id}/reviews/`)).body.count, 1);
  });

  test('reviews by a deactivated account are not shown: not in the list, not on the product page', async () => {
    const p = await f.product(d());
    const gone = await signedIn(app, db(), { first_name: 'Gone', last_name: 'Away' });
    await call('POST', `/api/products/${p.id}/reviews/`, gone, { rating: 1, review_text: 'Closed my account' });
    await call('POST', `/api/products/${p.id}/reviews/`, bob, { rating: 5, review_text: 'Lovely' });
    await d().updateTable('users').set({ is_active: false }).where('id', '=', gone.id).execute();
    const list = (await getJson(app, `/api/products/${p.id}/reviews/`)).body;
    assert.deepEqual([list.count, list.results.map((r: { user_name: string }) => r.user_name)], [1, ['Bob']]);
    const page = (await getJson(app, `/api/products/${p.id}/`)).body;
    assert.deepEqual(page.reviews.map((r: { user_name: string }) => r.user_name), ['Bob']);
    for (const r of [...list.results, ...page.reviews]) assert.deepEqual(Object.keys(r).sort(), REVIEW_KEYS, 'no email or other account data');
  });

  test('the rating aggregates count what is listed: an account disabled, enabled again, or deleted while disabled', async () => {
    const p = await f.product(d());
    const [u1, u2, u3] = [await f.user(d()), await f.user(d()), await f.user(d())];
    await f.review(d(), p.id, u1.id, 5);
    await f.review(d(), p.id, u2.id, 1);
    await f.review(d(), p.id, u3.id, 3);
    const stored = async () => {
      const row = await d().selectFrom('products').select(['review_count', 'average_rating']).where('id', '=', p.id).executeTakeFirstOrThrow();
      return [row.review_count, String(row.average_rating)];
    };
    const listed = async () => (await getJson(app, `/api/products/${p.id}/reviews/`, { headers: { 'cache-control': 'no-cache' } })).body.count;
    assert.deepEqual(await stored(), [3, '3.0']);
    const active = (id: number, is_active: boolean) => d().updateTable('users').set({ is_active }).where('id', '=', id).execute();
    await active(u2.id, false);
    assert.deepEqual(await stored(), [2, '4.0'], 'the disabled account’s 1-star review left the aggregates');
    assert.equal(await listed(), 2);
    // A review written, changed or deleted while its account is disabled moves nothing.
    await d().updateTable('reviews').set({ rating: 5 }).where('user_id', '=', u2.id).execute();
    assert.deepEqual(await stored(), [2, '4.0']);
    await active(u2.id, true);
    assert.deepEqual(await stored(), [3, '4.3'], 'enabled again: its (changed) review is back');
    await active(u3.id, false);
    await d().deleteFrom('users').where('id', '=', u3.id).execute();
    assert.deepEqual(await stored(), [2, '5.0'], 'a disabled account deleted: its review was already out, and stays out');
    await d().deleteFrom('users').where('id', '=', u1.id).execute();
    assert.deepEqual(await stored(), [1, '5.0'], 'an active account deleted: its review leaves');
  });

  test('the OpenAPI document lists the review routes', async () => {
    const spec = (await getJson(app, '/api/docs/json')).body;
    assert.deepEqual(spec.paths['/api/products/{id}/reviews/'].post.security, [{ bearerAuth: [] }]);
    for (const method of ['get', 'put', 'patch', 'delete']) {
      const op = spec.paths['/api/products/reviews/{id}/']?.[method];
      assert.ok(op, method);
      assert.deepEqual(op.security, [{ bearerAuth: [] }], method);
    }
    assert.equal(spec.paths['/api/products/{id}/reviews/'].get.security, undefined);
  });
});
