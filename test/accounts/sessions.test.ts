// Guest sessions and tokens over time: they survive a restart (embedded database, Redis), slide
// on use, expire; tokens expire on their configured lifetime.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { openPglite } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn } from '../helpers/auth.ts';
import { openTestDatabase } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

const cookieOf = (r: { headers: Record<string, unknown> }) => String(r.headers['set-cookie'] ?? '').split(';')[0]!;

test('embedded: a guest cart outlives a restart of the server and its database', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pasargad-sessions-'));
  try {
    let database = await openPglite(dir);
    await migrate(database);
    const p = await f.product(database.db, { stock_quantity: 5 });
    let app = await testApp(database);
    const added = await getJson(app, '/api/cart/add/', { method: 'POST', payload: { product_id: p.id, quantity: 2 } });
    const cookie = cookieOf(added);
    await app.close();
    await database.close();

    database = await openPglite(dir);
    app = await testApp(database);
    const after = await getJson(app, '/api/cart/', { headers: { cookie } });
    assert.equal(after.body.id, added.body.id);
    assert.equal(after.body.items[0].quantity, 2);
    await app.close();
    await database.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('production: with REDIS_URL, sessions and logged-out sign-in sessions live in Redis database 2 and outlive the app', async () => {
  const database = await openTestDatabase('postgres');
  const redis = new Redis('redis://127.0.0.1:6379/2');
  const keys: string[] = [];
  try {
    const p = await f.product(database.db, { stock_quantity: 5 });
    const env = { REDIS_URL: 'redis://127.0.0.1:6379' };
    let app = await testApp(database, env);
    const added = await getJson(app, '/api/cart/add/', { method: 'POST', payload: { product_id: p.id, quantity: 1 } });
    const cookie = cookieOf(added);
    const key = `session:${cookie.split('=')[1]}`;
    keys.push(key);
    const ttl = await redis.ttl(key);
    assert.ok(ttl > 1_209_000 && ttl <= 1_209_600, `TTL ${ttl}`);
    const user = await signedIn(app, database);
    const rotated = await getJson(app, '/api/users/auth/refresh/', { method: 'POST', payload: { refresh: user.refresh } });
    assert.equal(rotated.status, 200);
    assert.equal((await getJson(app, '/api/users/auth/logout/', { method: 'POST', payload: { refresh: rotated.body.refresh } })).status, 200);
    const sid = JSON.parse(Buffer.from(user.refresh.split('.')[1]!, 'base64url').toString()).sid;
    keys.push(`auth_session:${sid}:revoked`);
    assert.equal(await redis.get(`auth_session:${sid}:revoked`), '1');
    const left = await redis.ttl(`auth_session:${sid}:revoked`);
    assert.ok(left > 604_000 && left <= 604_800, `kept until the session would have ended: ${left}`);
    await app.close();

    app = await testApp(database, env);
    const after = await getJson(app, '/api/cart/', { headers: { cookie } });
    assert.equal(after.body.id, added.body.id);
    const reused = await getJson(app, '/api/users/auth/refresh/', { method: 'POST', payload: { refresh: user.refresh } });
    assert.equal(reused.status, 401);
    await app.close();
  } finally {
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await database.drop();
  }
});

test('sessions slide on use and end after SESSION_TTL of silence; access tokens end after ACCESS_TOKEN_TTL', async () => {
  const database = await openTestDatabase('pglite');
  try {
    const p = await f.product(database.db, { stock_quantity: 5 });
    const app = await testApp(database, { SESSION_TTL: '28', ACCESS_TOKEN_TTL: '2' });
    const added = await getJson(app, '/api/cart/add/', { method: 'POST', payload: { product_id: p.id, quantity: 1 } });
    const cookie = cookieOf(added);
    assert.match(String(added.headers['set-cookie']), /Max-Age=28;/);
    const user = await signedIn(app, database);
    await sleep(2_200);
    const renewed = await getJson(app, '/api/cart/', { headers: { cookie } });
    assert.equal(renewed.body.id, added.body.id);
    assert.equal(cookieOf(renewed), cookie, 'the same session, its cookie re-sent with a fresh Max-Age');
    const expired = await getJson(app, '/api/users/profile/', { headers: user.headers });
    assert.equal(expired.status, 401);
    assert.equal(expired.body.message, 'Given token not valid for any token type');
    await database.db.updateTable('kv_entries').set({ expires_at: '2000-01-01T00:00:00Z' }).where('key', '=', `session:${cookie.split('=')[1]}`).execute();
    const fresh = await getJson(app, '/api/cart/', { headers: { cookie } });
    assert.notEqual(fresh.body.id, added.body.id, 'an expired session starts over');
    assert.notEqual(cookieOf(fresh), cookie);
    await app.close();
  } finally {
    await database.drop();
  }
});
