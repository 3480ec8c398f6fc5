import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { getJson, testApp } from '../helpers/app.ts';
import { forEachBackend, TEST_SECRET } from '../helpers/db.ts';

const PASSWORD = 'Str0ng-Pass-2026';

function registration(tag: string, o: Record<string, unknown> = {}) {
  return { email: `${tag}@Example.com`, username: tag, first_name: 'Ada', last_name: 'Lovelace', password: PASSWORD, password_confirm: PASSWORD, ...o };
}

forEachBackend('accounts', ({ db }) => {
  let app: FastifyInstance;
  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) => getJson(app, url, { method: 'POST', payload: payload as object, headers });
  const send = (method: 'PUT' | 'PATCH' | 'DELETE' | 'GET', url: string, headers: Record<string, string>, payload?: unknown) =>
    getJson(app, url, { method, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  const bearer = (access: string) => ({ authorization: `Bearer ${access}` });
  const userCount = async () => Number((await db().db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

  before(async () => {
    app = await testApp(db());
  });
  after(async () => {
    await app.close();
  });

  test('register: 201 with the user (email lower-cased, is_staff false) and working tokens; password stored as argon2id', async () => {
    const r = await post('/api/users/auth/register/', registration('ada', { phone: '+1 555 0100', newsletter_subscription: true }));
    assert.equal(r.status, 201);
    assert.equal(r.body.message, 'User created successfully');
    assert.deepEqual(Object.keys(r.body.user).sort(), ['created_at', 'date_of_birth', 'email', 'first_name', 'id', 'is_staff', 'last_name', 'newsletter_subscription', 'phone', 'username']);
    assert.equal(r.body.user.email, 'ada@example.com');
    assert.equal(r.body.user.is_staff, false);
    assert.equal(r.body.user.newsletter_subscription, true);
    assert.match(r.body.user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/);
    const profile = await getJson(app, '/api/users/profile/', { headers: bearer(r.body.tokens.access) });
    assert.equal(profile.status, 200);
    assert.equal(profile.body.id, r.body.user.id);
    const row = await db().db.selectFrom('users').select('password').where('id', '=', r.body.user.id).executeTakeFirstOrThrow();
    assert.match(row.password, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    const claims = JSON.parse(Buffer.from(r.body.tokens.access.split('.')[1], 'base64url').toString());
    // SimpleJWT's payload, plus the sign-in session it belongs to (id, and when it signed in, ms).
    assert.deepEqual(Object.keys(claims).sort(), ['exp', 'iat', 'jti', 'sat', 'sid', 'token_type', 'user_id']);
    assert.match(claims.sid, /^[0-9a-f]{32}$/);
    assert.equal(claims.token_type, 'access');
    assert.match(claims.jti, /^[0-9a-f]{32}$/);
    assert.equal(claims.exp - claims.iat, 3600);
  });

  test('register refuses a taken email (any case) or username, weak passwords and a mismatch; nothing is created', async () => {
    await post('/api/users/auth/register/', registration('taken'));
    const before = await userCount();
    const cases: [Record<string, unknown>, Record<string, string[]>][] = [
      [registration('other', { email: 'TAKEN@example.COM' }), { email: ['user with this email already exists.'] }],
      [registration('taken', { email: 'fresh@example.com' }), { username: ['A user with that username already exists.'] }],
      [registration('short', { password: 'q7#Z', password_confirm: 'q7#Z' }), { password: ['This password is too short. It must contain at least 8 characters.'] }],
      [registration('common', { password: 'password1', password_confirm: 'password1' }), { password: ['This password is too common.'] }],
      [registration('digits', { password: '90417253681', password_confirm: '90417253681' }), { password: ['This password is entirely numeric.'] }],
      [registration('similar', { username: 'stargazer42', password: 'stargazer42!', password_confirm: 'stargazer42!' }), { password: ['The password is too similar to the username.'] }],
      [registration('mismatch', { password_confirm: 'Something-Else-1' }), { non_field_errors: ["Passwords don't match"] }],
    ];
    for (const [payload, errors] of cases) {
      const r = await post('/api/users/auth/register/', payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.equal(r.body.message, 'Bad request. Please check your input.');
      assert.deepEqual(r.body.errors, errors, JSON.stringify(payload));
    }
    const missing = await post('/api/users/auth/register/', { email: 'x@example.com' });
    assert.equal(missing.status, 400);
    for (const field of ['username', 'first_name', 'last_name', 'password', 'password_confirm']) assert.deepEqual(missing.body.errors[field], ['This field is required.'], field);
    const bad = await post('/api/users/auth/register/', registration('bad', { email: 'not-an-email', username: 'has space', first_name: 'x'.repeat(31) }));
    assert.deepEqual(bad.body.errors.email, ['Enter a valid email address.']);
    assert.deepEqual(bad.body.errors.username, ['Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.']);
    assert.deepEqual(bad.body.errors.first_name, ['Ensure this field has no more than 30 characters.']);
    assert.equal(await userCount(), before);
  });

  test('ten parallel registrations of one email create one account', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => post('/api/users/auth/register/', registration(`race${i}`, { email: 'race@example.com' }))));
    assert.equal(results.filter((r) => r.status === 201).length, 1);
    assert.ok(results.every((r) => r.status === 201 || (r.status === 400 && r.body.errors.email)));
  });

  test('login: a token pair; unknown email and wrong password get the same 401; blank fields are 400', async () => {
    await post('/api/users/auth/register/', registration('grace'));
    const ok = await post('/api/users/auth/login/', { email: '  GRACE@example.com ', password: PASSWORD });
    assert.equal(ok.status, 200);
    assert.deepEqual(Object.keys(ok.body).sort(), ['access', 'refresh']);
    const wrong = await post('/api/users/auth/login/', { email: 'grace@example.com', password: 'not-the-password' });
    const unknown = await post('/api/users/auth/login/', { email: 'nobody@example.com', password: PASSWORD });
    for (const r of [wrong, unknown]) {
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, { error: true, message: 'No active account found with the given credentials', status_code: 401, code: 'authentication_failed' });
    }
    const blank = await post('/api/users/auth/login/', { email: '', password: '' });
    assert.equal(blank.status, 400);
    assert.deepEqual(blank.body.errors, { email: ['This field may not be blank.'], password: ['This field may not be blank.'] });
    const none = await post('/api/users/auth/login/', {});
    assert.deepEqual(none.body.errors, { email: ['This field is required.'], password: ['This field is required.'] });
    await db().db.updateTable('users').set({ is_active: false }).where('email', '=', 'grace@example.com').execute();
    const disabled = await post('/api/users/auth/login/', { email: 'grace@example.com', password: PASSWORD });
    assert.equal(disabled.status, 401);
    assert.equal(disabled.body.message, 'No active account found with the given credentials');
    const staleToken = await getJson(app, '/api/users/profile/', { headers: bearer(ok.body.access) });
    assert.equal(staleToken.status, 401);
    assert.equal(staleToken.body.message, 'User is inactive');
  });

  test('refresh rotates: a new pair each time; the used token keeps working (§1.3); an access token is the wrong type', async () => {
    const reg = await post('/api/users/auth/register/', registration('rota'));
    const first = await post('/api/users/auth/refresh/', { refresh: reg.body.tokens.refresh });
    assert.equal(first.status, 200);
    assert.notEqual(first.body.refresh, reg.body.tokens.refresh);
    const again = await post('/api/users/auth/refresh/', { refresh: reg.body.tokens.refresh });
    assert.equal(again.status, 200, 'no blacklist: an old refresh token keeps working until its session ends');
    assert.notEqual(again.body.refresh, first.body.refresh);
    const second = await post('/api/users/auth/refresh/', { refresh: first.body.refresh });
    assert.equal(second.status, 200);
    const wrongType = await post('/api/users/auth/refresh/', { refresh: first.body.access });
    assert.equal(wrongType.status, 401);
    assert.equal(wrongType.body.message, 'Token has wrong type');
    const garbage = await post('/api/users/auth/refresh/', { refresh: 'abc.def.ghi' });
    assert.equal(garbage.body.message, 'Token is invalid or expired');
    const missing = await post('/api/users/auth/refresh/', {});
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body.errors, { refresh: ['This field is required.'] });
  });

  test('ten parallel refreshes with one token all succeed, each with its own new pair', async () => {
    const reg = await post('/api/users/auth/register/', registration('parallel'));
    const results = await Promise.all(Array.from({ length: 10 }, () => post('/api/users/auth/refresh/', { refresh: reg.body.tokens.refresh })));
    assert.equal(results.filter((r) => r.status === 200).length, 10);
    assert.equal(new Set(results.map((r) => r.body.refresh)).size, 10);
  });

  test('logout ends the session of the refresh token; logging out twice is fine', async () => {
    const reg = await post('/api/users/auth/register/', registration('bye'));
    const out = await post('/api/users/auth/logout/', { refresh: reg.body.tokens.refresh });
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { message: 'Successfully logged out' });
    assert.equal((await post('/api/users/auth/logout/', { refresh: reg.body.tokens.refresh })).status, 200);
    const refresh = await post('/api/users/auth/refresh/', { refresh: reg.body.tokens.refresh });
    assert.equal(refresh.status, 401);
    assert.equal(refresh.body.message, 'Token is blacklisted');
  });

  test('expired, tampered, unsigned and foreign-key tokens are 401 on every route, public ones included', async () => {
    const reg = await post('/api/users/auth/register/', registration('tokens'));
    const id = reg.body.user.id;
    const key = new TextEncoder().encode(TEST_SECRET);
    const now = Math.floor(Date.now() / 1000);
    const claims = { token_type: 'access', user_id: id, jti: 'a'.repeat(32) };
    const expired = await new SignJWT({ ...claims, exp: now - 10, iat: now - 3700 }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    const foreign = await new SignJWT({ ...claims, exp: now + 600, iat: now }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-that-is-long-enough-0000'));
    const [h, p] = reg.body.tokens.access.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), user_id: id + 1 })).toString('base64url')}.${reg.body.tokens.access.split('.')[2]}`;
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ ...claims, exp: now + 600, iat: now })).toString('base64url')}.`;
    for (const token of [expired, foreign, tampered, unsigned, reg.body.tokens.refresh, 'not-a-jwt']) {
      for (const url of ['/api/products/', '/api/cart/', '/api/users/profile/', '/api/wishlist/']) {
        const r = await getJson(app, url, { headers: bearer(token) });
        assert.equal(r.status, 401, `${url} ${token.slice(0, 20)}`);
        assert.equal(r.headers['www-authenticate'], 'Bearer realm="api"');
        assert.equal(r.body.message, 'Given token not valid for any token type');
      }
    }
    const twoParts = await getJson(app, '/api/products/', { headers: { authorization: 'Bearer a b' } });
    assert.equal(twoParts.status, 401);
    const basic = await getJson(app, '/api/products/', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    assert.equal(basic.status, 200, 'another scheme is not ours to judge');
  });

  test('profile: 401 without a token; PUT needs the names; PATCH changes some; email, id and is_staff are read-only', async () => {
    const anon = await getJson(app, '/api/users/profile/');
    assert.equal(anon.status, 401);
    assert.equal(anon.body.message, 'Authentication credentials were not provided.');
    assert.equal(anon.headers['www-authenticate'], 'Bearer realm="api"');
    const anonBadBody = await send('PUT', '/api/users/profile/', {}, { username: 42 });
    assert.equal(anonBadBody.status, 401, 'who may call is checked before the body');
    const anonBadJson = await app.inject({ method: 'PUT', url: '/api/users/profile/', headers: { 'content-type': 'application/json' }, payload: '{bad' });
    assert.equal(anonBadJson.statusCode, 401, 'even before it is parsed');
    const reg = await post('/api/users/auth/register/', registration('prof'));
    const auth = bearer(reg.body.tokens.access);
    const put = await send('PUT', '/api/users/profile/', auth, { username: 'prof2', first_name: 'Grace', last_name: 'Hopper', phone: '555', date_of_birth: '1906-12-09', email: 'hijack@example.com', is_staff: true, id: 999 });
    assert.equal(put.status, 200);
    assert.equal(put.body.username, 'prof2');
    assert.equal(put.headers['cache-control'], 'private, no-store');
    assert.equal(put.body.date_of_birth, '1906-12-09');
    assert.equal(put.body.email, 'prof@example.com');
    assert.equal(put.body.is_staff, false);
    assert.equal(put.body.id, reg.body.user.id);
    const putMissing = await send('PUT', '/api/users/profile/', auth, { phone: '1' });
    assert.equal(putMissing.status, 400);
    assert.deepEqual(Object.keys(putMissing.body.errors).sort(), ['first_name', 'last_name', 'username']);
    const patch = await send('PATCH', '/api/users/profile/', auth, { newsletter_subscription: true });
    assert.equal(patch.body.newsletter_subscription, true);
    assert.equal(patch.body.first_name, 'Grace');
    const badDate = await send('PATCH', '/api/users/profile/', auth, { date_of_birth: '2026-02-30' });
    assert.equal(badDate.status, 400);
    assert.deepEqual(badDate.body.errors, { date_of_birth: ['Date has wrong format. Use one of these formats instead: YYYY-MM-DD.'] });
    await post('/api/users/auth/register/', registration('someoneelse'));
    const clash = await send('PATCH', '/api/users/profile/', auth, { username: 'someoneelse' });
    assert.deepEqual(clash.body.errors, { username: ['A user with that username already exists.'] });
    const after = await getJson(app, '/api/users/profile/', { headers: auth });
    assert.equal(after.body.username, 'prof2');
    assert.equal(after.body.date_of_birth, '1906-12-09');
  });

  test("password change: old password checked, new ones must match and pass the rules; POST is 405; the caller's tokens stay valid", async () => {
    const reg = await post('/api/users/auth/register/', registration('pwchange'));
    const auth = bearer(reg.body.tokens.access);
    const url = '/api/users/password/change/';
    const wrongOld = await send('PUT', url, auth, { old_password: 'nope-nope-nope', new_password: 'New-Secret-2027', new_password_confirm: 'New-Secret-2027' });
    assert.deepEqual(wrongOld.body.errors, { old_password: ['Old password is incorrect'] });
    const mismatch = await send('PATCH', url, auth, { old_password: PASSWORD, new_password: 'New-Secret-2027', new_password_confirm: 'New-Secret-2028' });
    assert.deepEqual(mismatch.body.errors, { non_field_errors: ["New passwords don't match"] });
    const weak = await send('PUT', url, auth, { old_password: PASSWORD, new_password: '12345678', new_password_confirm: '12345678' });
    assert.deepEqual(weak.body.errors, { new_password: ['This password is too common.', 'This password is entirely numeric.'] });
    assert.equal((await post(url, {}, auth)).status, 405);
    assert.equal((await post('/api/users/auth/login/', { email: 'pwchange@example.com', password: PASSWORD })).status, 200, 'refused changes changed nothing');
    const ok = await send('PUT', url, auth, { old_password: PASSWORD, new_password: 'New-Secret-2027', new_password_confirm: 'New-Secret-2027' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { message: 'Password updated successfully' });
    assert.equal((await post('/api/users/auth/login/', { email: 'pwchange@example.com', password: PASSWORD })).status, 401);
    assert.equal((await post('/api/users/auth/login/', { email: 'pwchange@example.com', password: 'New-Secret-2027' })).status, 200);
    assert.equal((await getJson(app, '/api/users/profile/', { headers: auth })).status, 200);
    assert.equal((await post('/api/users/auth/refresh/', { refresh: reg.body.tokens.refresh })).status, 200, "the caller's session goes on");
  });

  test('addresses: CRUD of your own, one default per type, another user sees 404', async () => {
    const a = await post('/api/users/auth/register/', registration('addr-a'));
    const b = await post('/api/users/auth/register/', registration('addr-b'));
    const authA = bearer(a.body.tokens.access);
    const authB = bearer(b.body.tokens.access);
    const home = { address_type: 'shipping', street_address: '1 Main St', city: 'Springfield', state: 'IL', postal_code: '62701', country: 'US', is_default: true };
    const created = await post('/api/users/addresses/', home, authA);
    assert.equal(created.status, 201);
    assert.deepEqual(Object.keys(created.body).sort(), ['address_type', 'apartment', 'city', 'country', 'created_at', 'id', 'is_default', 'postal_code', 'state', 'street_address', 'updated_at', 'user']);
    assert.equal(created.body.apartment, '');
    assert.equal(created.body.user, a.body.user.id);
    const second = await post('/api/users/addresses/', { ...home, street_address: '2 Side St' }, authA);
    assert.equal(second.status, 201);
    const third = await post('/api/users/addresses/', { ...home, street_address: '3 Far St', is_default: false }, authA);
    assert.equal(third.status, 201);
    const list = await getJson(app, '/api/users/addresses/', { headers: authA });
    assert.equal(list.body.count, 3);
    assert.deepEqual(list.body.results.filter((x: { is_default: boolean }) => x.is_default).map((x: { id: number }) => x.id), [second.body.id]);
    const badType = await post('/api/users/addresses/', { ...home, address_type: 'home' }, authA);
    assert.equal(badType.status, 400);
    assert.deepEqual(badType.body.errors, { address_type: ['"home" is not a valid choice.'] });
    assert.equal((await getJson(app, '/api/users/addresses/', { headers: authB })).body.count, 0);
    const url = `/api/users/addresses/${created.body.id}/`;
    for (const [method, payload] of [['GET'], ['PATCH', { city: 'Hijacked' }], ['PUT', home], ['DELETE']] as const) {
      const r = await send(method, url, authB, payload);
      assert.equal(r.status, 404, `${method} by another user`);
    }
    const patched = await send('PATCH', url, authA, { city: 'Shelbyville', is_default: true });
    assert.equal(patched.body.city, 'Shelbyville');
    assert.equal((await send('GET', `/api/users/addresses/${second.body.id}/`, authA)).body.is_default, false);
    const del = await app.inject({ method: 'DELETE', url, headers: authA });
    assert.equal(del.statusCode, 204);
    assert.equal(del.body, '');
    assert.equal((await send('GET', url, authA)).status, 404);
    assert.equal((await getJson(app, '/api/users/addresses/')).status, 401);
  });

  test('newsletter: by email, with or without an account; only the holder can switch their account on; no email is the ad-hoc 400', async () => {
    const reg = await post('/api/users/auth/register/', registration('news'));
    const auth = bearer(reg.body.tokens.access);
    const flag = async () => (await getJson(app, '/api/users/profile/', { headers: auth })).body.newsletter_subscription;
    const anon = await post('/api/users/newsletter/subscribe/', { email: 'NEWS@example.com' });
    assert.deepEqual(anon.body, { message: 'Successfully subscribed to newsletter' });
    assert.equal(await flag(), false, 'a stranger cannot sign an account up');
    await post('/api/users/newsletter/subscribe/', { email: 'news@example.com' }, auth);
    assert.equal(await flag(), true, 'the holder can');
    const unsub = await post('/api/users/newsletter/unsubscribe/', { email: 'news@example.com' });
    assert.deepEqual(unsub.body, { message: 'Successfully unsubscribed from newsletter' });
    assert.equal(await flag(), false, 'an unsubscribe always works');
    const guest = await post('/api/users/newsletter/subscribe/', { email: 'guest@example.com' });
    assert.equal(guest.status, 200);
    const row = await db().db.selectFrom('newsletter_subscribers').select('is_subscribed').where('email', '=', 'guest@example.com').executeTakeFirstOrThrow();
    assert.equal(row.is_subscribed, true);
    const none = await post('/api/users/newsletter/subscribe/', {});
    assert.equal(none.status, 400);
    assert.deepEqual(none.body, { error: 'Email is required' });
    const bad = await post('/api/users/newsletter/subscribe/', { email: 'nope' });
    assert.deepEqual(bad.body, { error: 'Enter a valid email address.' });
  });

  test('routes that need a user or staff refuse before reading the body, and answer privately', async () => {
    const routes: [string, string][] = [
      ['PUT', '/api/users/profile/'], ['POST', '/api/users/addresses/'], ['PATCH', '/api/users/password/change/'], ['POST', '/api/cart/merge/'],
      ['POST', '/api/products/'], ['PATCH', '/api/products/1/'], ['POST', '/api/products/categories/'], ['POST', '/api/products/1/reviews/'], ['PUT', '/api/products/reviews/1/'],
    ];
    for (const [method, url] of routes) {
      const r = await app.inject({ method: method as 'PUT', url, headers: { 'content-type': 'application/json', origin: 'http://localhost:3000' }, payload: '{"not json' });
      assert.equal(r.statusCode, 401, `${method} ${url}`);
      assert.equal(r.headers['cache-control'], 'private, no-store', `${method} ${url}`);
      assert.match(String(r.headers.vary), /Origin/, 'the CORS Vary is kept');
      assert.match(String(r.headers.vary), /Authorization/);
    }
    const low = await getJson(app, '/api/products/low-stock/');
    assert.equal(low.status, 403);
    assert.deepEqual(low.body, { error: 'Permission denied' });
    assert.equal(low.headers['cache-control'], 'private, no-store');
  });

  test('a customer token on a staff-only route is 403, a staff token passes', async () => {
    const reg = await post('/api/users/auth/register/', registration('customer'));
    const r = await getJson(app, '/api/products/low-stock/', { headers: bearer(reg.body.tokens.access) });
    assert.equal(r.status, 403);
    const create = await post('/api/products/', { name: 'x' }, bearer(reg.body.tokens.access));
    assert.equal(create.status, 403);
    assert.equal(create.body.message, 'You do not have permission to perform this action.');
  });
});

forEachBackend('accounts: other body encodings and races', ({ db }) => {
  let app: FastifyInstance;
  before(async () => {
    app = await testApp(db());
  });
  after(async () => {
    await app.close();
  });

  test('form-encoded bodies work like JSON (§1.2)', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const reg = await app.inject({ method: 'POST', url: '/api/users/auth/register/', headers: form, payload: new URLSearchParams({ email: 'form@example.com', username: 'form', first_name: 'F', last_name: 'Orm', password: PASSWORD, password_confirm: PASSWORD, newsletter_subscription: 'true' }).toString() });
    assert.equal(reg.statusCode, 201, reg.body);
    assert.equal(reg.json().user.newsletter_subscription, true);
    const login = await app.inject({ method: 'POST', url: '/api/users/auth/login/', headers: form, payload: `email=form%40example.com&password=${encodeURIComponent(PASSWORD)}` });
    assert.equal(login.statusCode, 200);
  });

  test('ten parallel new default addresses of one type leave exactly one default', async () => {
    const reg = await getJson(app, '/api/users/auth/register/', { method: 'POST', payload: registration('defaults') });
    const headers = { authorization: `Bearer ${reg.body.tokens.access}` };
    const address = { address_type: 'billing', street_address: '1 Main St', city: 'A', state: 'B', postal_code: '1', country: 'US', is_default: true };
    const results = await Promise.all(Array.from({ length: 10 }, () => getJson(app, '/api/users/addresses/', { method: 'POST', headers, payload: address })));
    assert.ok(results.every((r) => r.status === 201));
    const rows = await db().db.selectFrom('addresses').select('is_default').where('user_id', '=', reg.body.user.id).execute();
    assert.equal(rows.length, 10);
    assert.equal(rows.filter((r) => r.is_default).length, 1);
  });
});
