// Hostile tokens (issue 11): forged, expired, tampered, of the wrong algorithm or kind, revoked.
// Tokens are made here with jose the way an attacker (or a careless client) would, from the claims
// tokens.ts issues: {token_type, exp, iat, jti, user_id}, HS256 over SECRET_KEY. Every refusal is
// the contract's 401 (§1.3): wrapped body, WWW-Authenticate: Bearer realm="api".
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { openTestDatabase } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { reportRow } from './report.ts';

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let app: FastifyInstance;
let customer: TestUser;
let staff: TestUser;
let secret: Uint8Array;

/** One row of the chaos table per test: the requests it sent and the checks it made. */
interface Row { scenario: string; requests: number; serverErrors: number; checks: number; checksPassed: number }
const rows: Row[] = [];
let current: Row | undefined;

before(async () => {
  database = await openTestDatabase('pglite');
  app = await testApp(database);
  secret = new TextEncoder().encode(app.config.secretKey);
  customer = await signedIn(app, database);
  staff = await signedIn(app, database, { staff: true });
  await f.product(database.db);
});

after(async () => {
  for (const { scenario, ...r } of rows) reportRow({ suite: 'tokens', scenario, ...r });
  await app?.close();
  await database?.drop();
});

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const jti = () => randomBytes(16).toString('hex');

/** Claims as tokens.ts makes them, for the customer unless told otherwise. */
function claims(o: Record<string, unknown> = {}): Record<string, unknown> {
  return { token_type: 'access', exp: now() + 3600, iat: now(), jti: jti(), user_id: customer.id, ...o };
}

function sign(payload: Record<string, unknown>, alg = 'HS256', key: Uint8Array | CryptoKey = secret, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', ...header }).sign(key);
}

async function call(url: string, token: string | undefined, o: { method?: 'GET' | 'POST'; payload?: object; authorization?: string } = {}) {
  const authorization = o.authorization ?? (token === undefined ? undefined : `Bearer ${token}`);
  const r = await getJson(app, url, { method: o.method ?? 'GET', ...(o.payload ? { payload: o.payload } : {}), headers: authorization ? { authorization } : {} });
  if (current) {
    current.requests++;
    if (r.status >= 500) current.serverErrors++;
  }
  return r;
}

/** Starts a row of the table; its checks assert as they go and are counted. */
function scenario(name: string) {
  const row: Row = { scenario: name, requests: 0, serverErrors: 0, checks: 0, checksPassed: 0 };
  rows.push(row);
  current = row;
  return {
    check(ok: boolean, message: string) {
      row.checks++;
      if (ok) row.checksPassed++;
      assert.ok(ok, message);
    },
  };
}

/**
 * A bad Bearer token is refused everywhere, public routes included (§1.3): a signed-in route, a
 * staff route, the guest's cart, and a catalog read the response cache holds.
 */
const PROBES = ['/api/users/profile/', '/api/orders/statistics/', '/api/cart/', '/api/products/'];

async function assertRefused(s: ReturnType<typeof scenario>, token: string, what: string, authorization?: string) {
  for (const url of PROBES) {
    const r = await call(url, token, authorization ? { authorization } : {});
    s.check(r.status === 401, `${what} on ${url}: ${r.status} ${JSON.stringify(r.body)}`);
    s.check(r.body?.error === true && r.body?.status_code === 401 && typeof r.body?.message === 'string', `${what} on ${url}: body ${JSON.stringify(r.body)}`);
    s.check(r.headers['www-authenticate'] === 'Bearer realm="api"', `${what} on ${url}: WWW-Authenticate ${r.headers['www-authenticate']}`);
  }
}

test('baseline: the tokens made here are the server\'s own (a well-formed one gets in), and the catalog read is cached', async () => {
  const s = scenario('well-formed token accepted (baseline)');
  const mine = await sign(claims());
  s.check((await call('/api/users/profile/', mine)).status === 200, 'a token made with the right secret and claims is accepted');
  s.check((await call('/api/products/', undefined)).status === 200, 'catalog read');
  s.check((await call('/api/products/', undefined)).headers['x-cache'] === 'HIT', 'catalog read cached');
});

test('expired, not yet valid, or missing exp/jti/user_id: 401 everywhere', async () => {
  const s = scenario('expired / not-yet-valid / incomplete access tokens');
  await assertRefused(s, await sign(claims({ exp: now() - 1, iat: now() - 3601 })), 'expired');
  await assertRefused(s, await sign({ ...claims(), nbf: now() + 600 }), 'nbf in the future');
  const { exp: _e, ...noExp } = claims();
  await assertRefused(s, await sign(noExp), 'no exp');
  const { jti: _j, ...noJti } = claims();
  await assertRefused(s, await sign(noJti), 'no jti');
  await assertRefused(s, await sign(claims({ user_id: String(customer.id) })), 'user_id as a string');
  await assertRefused(s, await sign(claims({ user_id: 1.5 })), 'fractional user_id');
});

test('tampered payload or signature, another secret: 401 (no escalation to staff)', async () => {
  const s = scenario('tampered payload / signature / other secret');
  const [h, p, sig] = customer.access.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
  // The customer's own token, rewritten to be the staff user's: the signature no longer matches.
  await assertRefused(s, `${h}.${b64({ ...payload, user_id: staff.id, is_staff: true })}.${sig}`, 'payload swapped to staff');
  await assertRefused(s, `${h}.${b64({ ...payload, exp: now() + 10 * 365 * 86_400 })}.${sig}`, 'lifetime extended');
  const flipped = sig.slice(0, -2) + (sig.at(-2) === 'A' ? 'B' : 'A') + sig.at(-1);
  await assertRefused(s, `${h}.${p}.${flipped}`, 'signature altered');
  await assertRefused(s, `${h}.${p}.`, 'signature removed');
  await assertRefused(s, await sign(claims({ user_id: staff.id }), 'HS256', new TextEncoder().encode('another-secret-key-that-is-long-enough-0')), 'signed with another secret');
  await assertRefused(s, 'not.a.jwt', 'garbage');
  await assertRefused(s, '', 'empty token', 'Bearer');
  await assertRefused(s, customer.access, 'three-part header', `Bearer ${customer.access} extra`);
});

test('wrong algorithms: none, HS384/HS512, RS256, HS256 keyed with a public key, an embedded JWK', async () => {
  const s = scenario('alg none / HS-RS confusion / other HMACs');
  const body = b64(claims({ user_id: staff.id }));
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    await assertRefused(s, `${b64({ alg, typ: 'JWT' })}.${body}.`, `alg ${alg}`);
  }
  // Only HS256 is accepted, even when the secret is right.
  await assertRefused(s, await sign(claims(), 'HS384'), 'HS384 with the real secret');
  await assertRefused(s, await sign(claims(), 'HS512'), 'HS512 with the real secret');

  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  await assertRefused(s, await sign(claims({ user_id: staff.id }), 'RS256', privateKey), 'RS256');
  // The classic confusion: the attacker's public key PEM used as an HMAC secret.
  const pem = await exportSPKI(publicKey);
  await assertRefused(s, await sign(claims({ user_id: staff.id }), 'HS256', new TextEncoder().encode(pem)), 'HS256 keyed with a public key PEM');
  // And a token carrying its own verification key.
  await assertRefused(s, await sign(claims({ user_id: staff.id }), 'RS256', privateKey, { jwk: await exportJWK(publicKey) }), 'RS256 with an embedded jwk');
});

test('wrong kind: a refresh token as Bearer, an access token to refresh/logout; a forged staff claim gives no staff rights', async () => {
  const s = scenario('wrong token kind / forged staff claim');
  await assertRefused(s, customer.refresh, 'refresh token as Bearer');
  await assertRefused(s, await sign(claims({ token_type: undefined })), 'no token_type');
  await assertRefused(s, await sign(claims({ token_type: 'id' })), 'token_type id');

  for (const url of ['/api/users/auth/refresh/', '/api/users/auth/logout/']) {
    const r = await call(url, undefined, { method: 'POST', payload: { refresh: customer.access } });
    s.check(r.status === 401 && r.body.message === 'Token has wrong type' && r.body.error === true, `access token to ${url}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  // Permissions are read from the database: an is_staff claim (even one signed with the secret) changes nothing.
  const claimed = await sign(claims({ is_staff: true }));
  const r = await call('/api/orders/statistics/', claimed);
  s.check(r.status === 403, `customer token claiming is_staff on a staff route: ${r.status}`);
});

test('refresh tokens: rotation keeps the session, logout ends all of it, a forged session id or lifetime gets nothing; expired or for a removed account refused', async () => {
  const s = scenario('revoked / rotated / expired refresh tokens');
  const user = await signedIn(app, database);
  const refresh = (token: string) => call('/api/users/auth/refresh/', undefined, { method: 'POST', payload: { refresh: token } });

  const first = await refresh(user.refresh);
  s.check(first.status === 200 && typeof first.body.refresh === 'string' && first.body.refresh !== user.refresh, `rotation: ${first.status}`);
  // No blacklist (§1.3): the sign-in token keeps working until its session ends, also from two tabs at once.
  const both = await Promise.all([refresh(user.refresh), refresh(user.refresh)]);
  s.check(both.every((r) => r.status === 200), `sign-in token reused, twice at once: ${both.map((r) => r.status)}`);

  const out = await call('/api/users/auth/logout/', undefined, { method: 'POST', payload: { refresh: first.body.refresh } });
  s.check(out.status === 200, `logout: ${out.status}`);
  for (const [what, token] of [['rotated', first.body.refresh], ['sign-in', user.refresh], ['parallel', both[0]!.body.refresh]] as const) {
    const r = await refresh(token);
    s.check(r.status === 401 && r.body.error === true && r.body.status_code === 401 && r.headers['www-authenticate'] === 'Bearer realm="api"', `${what} token after logout: ${r.status} ${JSON.stringify(r.body)}`);
  }
  // A session's id and lifetime are signed: rewriting them (to escape a logout, or live longer) breaks the signature.
  const [h, p, sig] = first.body.refresh.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
  for (const forged of [{ ...payload, sid: 'f'.repeat(32) }, { ...payload, exp: payload.exp + 30 * 86_400 }, { ...payload, sat: Date.now() + 86_400_000 }]) {
    s.check((await refresh(`${h}.${b64(forged)}.${sig}`)).status === 401, 'a rewritten session claim');
  }

  const expired = await sign(claims({ token_type: 'refresh', user_id: user.id, exp: now() - 1, iat: now() - 7 * 86_400 }));
  const e = await refresh(expired);
  s.check(e.status === 401 && e.body.message === 'Token is invalid or expired', `expired refresh: ${e.status} ${JSON.stringify(e.body)}`);
  const forged = await sign(claims({ token_type: 'refresh', user_id: user.id }), 'HS512');
  s.check((await refresh(forged)).status === 401, 'refresh token with another algorithm');

  // An account switched off: its still-valid tokens open nothing, and cannot be refreshed.
  const gone = await signedIn(app, database);
  await database.db.updateTable('users').set({ is_active: false }).where('id', '=', gone.id).execute();
  const profile = await call('/api/users/profile/', gone.access);
  s.check(profile.status === 401 && profile.body.error === true, `inactive user's access token: ${profile.status}`);
  const goneRefresh = await refresh(gone.refresh);
  s.check(goneRefresh.status === 401 && goneRefresh.headers['www-authenticate'] === 'Bearer realm="api"', `inactive user's refresh token: ${goneRefresh.status}`);
  const login = await call('/api/users/auth/login/', undefined, { method: 'POST', payload: { email: gone.email, password: gone.password } });
  s.check(login.status === 401 && login.headers['www-authenticate'] === 'Bearer realm="api"', `inactive user's sign-in: ${login.status} ${login.headers['www-authenticate']}`);
});
