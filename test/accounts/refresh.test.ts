// Refresh tokens as the storefront uses them (issue 20): it keeps the refresh token from sign-in
// and refreshes with it again and again, several requests at once, as the original allowed
// (API-CONTRACT.md §1.3). A session (one sign-in) still ends: at its absolute expiry, on logout
// (every token rotated from it), when the password changes or is reset, or when the account is
// disabled; and with REFRESH_REUSE_DETECTION a token reused past the grace revokes its session.
// Each suite runs on the embedded store (PGlite) and on Redis shared by two instances (PostgreSQL).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import { dropPrefix, uniquePrefix } from '../helpers/redis.ts';
import { makePasswordResetToken } from '../../src/modules/accounts/accounts.service.ts';

const REDIS = 'redis://127.0.0.1:6379';
const prefixes: string[] = [];
after(async () => {
  for (const p of prefixes) await dropPrefix(p, `${REDIS}/2`);
});

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

forEachBackend('refresh sessions', ({ backend, db }) => {
  const apps: FastifyInstance[] = [];
  let prefix = '';
  let app: FastifyInstance;
  /** An app; on PostgreSQL its `session` store is Redis, under this suite's prefix (shared by every app of the suite). */
  async function make(env: Record<string, string> = {}): Promise<FastifyInstance> {
    const a = await testApp(db(), { ...(backend === 'postgres' ? { REDIS_URL: REDIS, REDIS_KEY_PREFIX: prefix } : {}), ...env });
    apps.push(a);
    return a;
  }
  before(async () => {
    prefix = uniquePrefix();
    prefixes.push(prefix);
    app = await make();
  });
  after(async () => {
    for (const a of apps) await a.close();
  });

  const post = (a: FastifyInstance, url: string, payload: object, headers: Record<string, string> = {}) => getJson(a, url, { method: 'POST', payload, headers });
  const refresh = (a: FastifyInstance, token: string) => post(a, '/api/users/auth/refresh/', { refresh: token });
  const login = (a: FastifyInstance, email: string, password: string) => post(a, '/api/users/auth/login/', { email, password });

  test('the storefront pattern: one refresh token from sign-in used 5 times in sequence and 5 in parallel, all 200, each with a new refresh token', async () => {
    const user = await signedIn(app, db());
    const signIn = await login(app, user.email, user.password);
    assert.equal(signIn.status, 200);
    const seen = new Set<string>([signIn.body.refresh]);
    for (let i = 0; i < 5; i++) {
      const r = await refresh(app, signIn.body.refresh);
      assert.equal(r.status, 200, `sequential refresh ${i + 1}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(Object.keys(r.body).sort(), ['access', 'refresh']);
      seen.add(r.body.refresh);
      assert.equal((await getJson(app, '/api/users/profile/', { headers: { authorization: `Bearer ${r.body.access}` } })).status, 200);
    }
    const parallel = await Promise.all(Array.from({ length: 5 }, () => refresh(app, signIn.body.refresh)));
    assert.deepEqual(parallel.map((r) => r.status), [200, 200, 200, 200, 200], JSON.stringify(parallel.map((r) => r.body)));
    for (const r of parallel) seen.add(r.body.refresh);
    assert.equal(seen.size, 11, 'every refresh returns a new refresh token');
    // The SimpleJWT payload, plus the session it belongs to.
    const c = claimsOf(parallel[0]!.body.refresh);
    for (const field of ['token_type', 'exp', 'iat', 'jti', 'user_id', 'sid']) assert.ok(field in c, field);
    assert.equal(c.token_type, 'refresh');
    assert.match(String(c.jti), /^[0-9a-f]{32}$/);
  });

  test('a rotated token carries its sign-in session and never outlives it (absolute lifetime)', async () => {
    // Ten seconds: long enough for two refreshes on a busy machine (three was not: the first refresh
    // came after the sign-in's expiry), short enough to wait out.
    const short = await make({ REFRESH_TOKEN_TTL: '10' });
    const user = await signedIn(short, db());
    const first = claimsOf(user.refresh);
    await sleep(1_100);
    const r1 = await refresh(short, user.refresh);
    assert.equal(r1.status, 200);
    const rotated = claimsOf(r1.body.refresh);
    assert.equal(rotated.sid, first.sid, 'the same session');
    assert.equal(rotated.exp, first.exp, 'the sign-in’s expiry, not ten seconds from now');
    assert.ok(Number(claimsOf(r1.body.access).exp) <= Number(first.exp), 'no access token outlives the session either');
    const r2 = await refresh(short, r1.body.refresh);
    assert.equal(r2.status, 200);
    assert.equal(claimsOf(r2.body.refresh).exp, first.exp);
    await sleep(Math.max(0, Number(first.exp) * 1000 - Date.now()) + 1_100);
    const late = await refresh(short, r2.body.refresh);
    assert.equal(late.status, 401, 'the newest rotated token ends with the sign-in');
    assert.equal(late.body.message, 'Token is invalid or expired');
  });

  test('logout ends the whole session: the sign-in token and every token rotated from it, on any instance; other sessions go on', async () => {
    const other = await make();
    const user = await signedIn(app, db());
    const second = await login(app, user.email, user.password);
    const a = await refresh(app, user.refresh);
    const b = await refresh(other, a.body.refresh);
    assert.equal(b.status, 200);
    const out = await post(other, '/api/users/auth/logout/', { refresh: a.body.refresh });
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { message: 'Successfully logged out' });
    for (const token of [user.refresh, a.body.refresh, b.body.refresh]) {
      for (const inst of [app, other]) {
        const r = await refresh(inst, token);
        assert.equal(r.status, 401, 'every token of the logged-out session');
        assert.equal(r.body.message, 'Token is blacklisted');
        assert.equal(r.headers['www-authenticate'], 'Bearer realm="api"');
      }
    }
    assert.equal((await post(app, '/api/users/auth/logout/', { refresh: user.refresh })).status, 200, 'logging out twice is fine');
    assert.equal((await refresh(app, second.body.refresh)).status, 200, 'another sign-in of the same user is another session');
  });

  test('strict reuse detection: parallel refreshes inside the grace all succeed; a reuse past it revokes the session on every instance', async () => {
    const env = { REFRESH_REUSE_DETECTION: 'true', REFRESH_REUSE_GRACE: '1' };
    const [s1, s2] = [await make(env), await make(env)];
    const user = await signedIn(s1, db());
    const bystander = await login(s1, user.email, user.password);
    const burst = await Promise.all(Array.from({ length: 5 }, (_, i) => refresh(i % 2 ? s2 : s1, user.refresh)));
    assert.deepEqual(burst.map((r) => r.status), [200, 200, 200, 200, 200], 'one token, five parallel uses inside the grace');
    const child = await refresh(s2, burst[0]!.body.refresh);
    assert.equal(child.status, 200, 'the client that keeps the newest token goes on');
    await sleep(1_300);
    const reuse = await refresh(s2, user.refresh);
    assert.equal(reuse.status, 401, 'reused past the grace');
    assert.equal(reuse.body.message, 'Token is blacklisted');
    for (const token of [child.body.refresh, burst[3]!.body.refresh]) assert.equal((await refresh(s1, token)).status, 401, 'the whole session is revoked');
    assert.equal((await refresh(s1, bystander.body.refresh)).status, 200, 'another session of the user is untouched');
    // Strict mode is a setting: the default app on the same store still lets a token be reused.
    const lenient = await signedIn(app, db());
    assert.equal((await refresh(app, lenient.refresh)).status, 200);
    await sleep(1_300);
    assert.equal((await refresh(app, lenient.refresh)).status, 200);
  });

  test('a password change ends every other session (refresh and access tokens) and keeps the caller’s own', async () => {
    const user = await signedIn(app, db());
    const thief = await login(app, user.email, user.password);
    const thiefRotated = await refresh(app, thief.body.refresh);
    const mine = await refresh(app, user.refresh);
    const changed = await getJson(app, '/api/users/password/change/', {
      method: 'PUT',
      headers: { authorization: `Bearer ${mine.body.access}` },
      payload: { old_password: user.password, new_password: 'Brand-New-Secret-2027', new_password_confirm: 'Brand-New-Secret-2027' },
    });
    assert.equal(changed.status, 200);
    assert.deepEqual(changed.body, { message: 'Password updated successfully' });
    for (const token of [thief.body.refresh, thiefRotated.body.refresh]) {
      const r = await refresh(app, token);
      assert.equal(r.status, 401, 'a refresh token issued before the change');
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="api"');
    }
    assert.equal((await getJson(app, '/api/users/profile/', { headers: { authorization: `Bearer ${thiefRotated.body.access}` } })).status, 401, 'the other session’s access token');
    // The caller's session (the storefront keeps its sign-in refresh token) goes on.
    assert.equal((await getJson(app, '/api/users/profile/', { headers: { authorization: `Bearer ${mine.body.access}` } })).status, 200);
    const still = await refresh(app, user.refresh);
    assert.equal(still.status, 200, 'the caller’s own sign-in token');
    assert.equal((await refresh(app, still.body.refresh)).status, 200);
    const fresh = await login(app, user.email, 'Brand-New-Secret-2027');
    assert.equal((await refresh(app, fresh.body.refresh)).status, 200, 'a sign-in after the change');
  });

  test('a password reset ends every session; a reset link works only while the password is the one it was issued for', async () => {
    const user = await signedIn(app, db());
    const other = await login(app, user.email, user.password);
    const store = app.sessions.store;
    const older = await makePasswordResetToken(db().db, store, user.email, 3600);
    const newer = await makePasswordResetToken(db().db, store, user.email, 3600);
    assert.ok(older && newer);
    const used = await post(app, '/api/users/password/reset/confirm/', { token: newer.token, new_password: 'Reset-Secret-2027-a', new_password_confirm: 'Reset-Secret-2027-a' });
    assert.equal(used.status, 200, JSON.stringify(used.body));
    for (const token of [user.refresh, other.body.refresh]) assert.equal((await refresh(app, token)).status, 401, 'sessions from before the reset');
    assert.equal((await getJson(app, '/api/users/profile/', { headers: user.headers })).status, 401, 'access tokens from before the reset');
    const stale = await post(app, '/api/users/password/reset/confirm/', { token: older.token, new_password: 'Reset-Secret-2027-b', new_password_confirm: 'Reset-Secret-2027-b' });
    assert.equal(stale.status, 400, 'an older link once a newer one was used');
    assert.deepEqual(stale.body.errors, { token: ['Invalid or expired token'] });
    assert.equal((await login(app, user.email, 'Reset-Secret-2027-a')).status, 200, 'the password set by the newer link stands');
    // A link issued before a password change dies with the old password too.
    const link = await makePasswordResetToken(db().db, store, user.email, 3600);
    const session = await login(app, user.email, 'Reset-Secret-2027-a');
    await getJson(app, '/api/users/password/change/', {
      method: 'PATCH',
      headers: { authorization: `Bearer ${session.body.access}` },
      payload: { old_password: 'Reset-Secret-2027-a', new_password: 'Changed-Secret-2027-c', new_password_confirm: 'Changed-Secret-2027-c' },
    });
    const afterChange = await post(app, '/api/users/password/reset/confirm/', { token: link!.token, new_password: 'Reset-Secret-2027-d', new_password_confirm: 'Reset-Secret-2027-d' });
    assert.equal(afterChange.status, 400);
    assert.equal((await login(app, user.email, 'Changed-Secret-2027-c')).status, 200);
  });

  test('two reset links used at once: one sets the password, the other is refused', async () => {
    const user = await signedIn(app, db());
    const store = app.sessions.store;
    const [x, y] = [await makePasswordResetToken(db().db, store, user.email, 3600), await makePasswordResetToken(db().db, store, user.email, 3600)];
    const results = await Promise.all([x!, y!].map((l, i) => post(app, '/api/users/password/reset/confirm/', { token: l.token, new_password: `Race-Secret-2027-${i}`, new_password_confirm: `Race-Secret-2027-${i}` })));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 400]);
    const winner = results[0]!.status === 200 ? 0 : 1;
    assert.equal((await login(app, user.email, `Race-Secret-2027-${winner}`)).status, 200);
  });

  test('a disabled account’s refresh tokens are refused, and stay refused once it is enabled again', async () => {
    const user = await signedIn(app, db());
    const rotated = await refresh(app, user.refresh);
    await db().db.updateTable('users').set({ is_active: false }).where('id', '=', user.id).execute();
    const r = await refresh(app, rotated.body.refresh);
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="api"');
    await db().db.updateTable('users').set({ is_active: true }).where('id', '=', user.id).execute();
    for (const token of [user.refresh, rotated.body.refresh]) assert.equal((await refresh(app, token)).status, 401, 'disabling ended the sessions');
    assert.equal((await getJson(app, '/api/users/profile/', { headers: { authorization: `Bearer ${rotated.body.access}` } })).status, 401);
    const again = await login(app, user.email, user.password);
    assert.equal((await refresh(app, again.body.refresh)).status, 200, 'a new sign-in works');
  });

  test('token endpoints answer on their body alone: a stale or foreign Bearer is not read', async () => {
    const user = await signedIn(app, db());
    const expired = await signedIn(await make({ ACCESS_TOKEN_TTL: '1' }), db());
    await sleep(2_100);
    const stale = { authorization: `Bearer ${expired.access}` };
    assert.equal((await getJson(app, '/api/users/profile/', { headers: stale })).status, 401, 'the token is expired');
    const signIn = await post(app, '/api/users/auth/login/', { email: user.email, password: user.password }, stale);
    assert.equal(signIn.status, 200, JSON.stringify(signIn.body));
    assert.equal((await post(app, '/api/users/auth/refresh/', { refresh: user.refresh }, stale)).status, 200);
    assert.equal((await post(app, '/api/users/auth/refresh/', { refresh: user.refresh }, { authorization: 'Bearer a b' })).status, 200);
    const tag = `stale-${Math.random().toString(36).slice(2, 8)}`;
    const reg = await post(app, '/api/users/auth/register/', { email: `${tag}@example.com`, username: tag, first_name: 'S', last_name: 'T', password: 'Str0ng-Pass-2026', password_confirm: 'Str0ng-Pass-2026' }, stale);
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal((await post(app, '/api/users/password/reset/', { email: user.email }, stale)).status, 200);
    const bad = await post(app, '/api/users/password/reset/confirm/', { token: 'x'.repeat(43), new_password: 'Whatever-2027-x', new_password_confirm: 'Whatever-2027-x' }, stale);
    assert.equal(bad.status, 400, 'the body decides: an unknown reset token');
    assert.equal((await post(app, '/api/users/auth/logout/', { refresh: signIn.body.refresh }, stale)).status, 200);
    // Elsewhere the stale token is still refused, public routes included (§1.3).
    assert.equal((await getJson(app, '/api/products/', { headers: stale })).status, 401);
  });
});
