// Credential changes against what races them (issue 20 review): a sign-in with the old password
// that is still being checked when the password changes (or is reset) must not come out with a
// session that survives the change. Runs on PGlite and on PostgreSQL with Redis.
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

forEachBackend('credential changes and racing sign-ins', ({ backend, db }) => {
  let app: FastifyInstance;
  before(async () => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    app = await testApp(db(), backend === 'postgres' ? { REDIS_URL: REDIS, REDIS_KEY_PREFIX: prefix } : {});
  });
  after(async () => {
    await app?.close();
  });

  const post = (url: string, payload: object, headers: Record<string, string> = {}) => getJson(app, url, { method: 'POST', payload, headers });
  const login = (email: string, password: string) => post('/api/users/auth/login/', { email, password });

  /**
   * Sign-ins with the old password, one started every few ms while `change` runs. Every one that
   * succeeded was checked against the old password, so none of its tokens may work afterwards.
   */
  async function signInsDuring(email: string, password: string, change: () => Promise<{ status: number }>): Promise<{ access: string; refresh: string }[]> {
    const logins: Promise<{ status: number; body: any }>[] = [];
    let done = false;
    const changed = change().finally(() => (done = true));
    for (let i = 0; i < 60 && !done; i++) {
      logins.push(login(email, password));
      await sleep(8);
    }
    assert.equal((await changed).status, 200);
    const results = await Promise.all(logins);
    return results.filter((r) => r.status === 200).map((r) => r.body);
  }

  for (const kind of ['change', 'reset'] as const) {
    test(`a sign-in with the old password in flight during a password ${kind} gets no session that outlives it`, async () => {
      let survivors = 0;
      let raced = 0;
      for (let round = 0; round < 3 && survivors === 0; round++) {
        const user = await signedIn(app, db());
        const next = `Next-Secret-2027-${kind}-${round}`;
        const change =
          kind === 'change'
            ? () => getJson(app, '/api/users/password/change/', { method: 'PUT', headers: user.headers, payload: { old_password: user.password, new_password: next, new_password_confirm: next } })
            : async () => {
                const link = await makePasswordResetToken(db().db, app.sessions.store, user.email, 3600);
                return post('/api/users/password/reset/confirm/', { token: link!.token, new_password: next, new_password_confirm: next });
              };
        const sessions = await signInsDuring(user.email, user.password, change);
        raced += sessions.length;
        for (const s of sessions) {
          if ((await post('/api/users/auth/refresh/', { refresh: s.refresh })).status === 200) survivors++;
          else assert.equal((await getJson(app, '/api/users/profile/', { headers: { authorization: `Bearer ${s.access}` } })).status, 401);
        }
      }
      assert.ok(raced > 0, 'some sign-ins with the old password succeeded during the change');
      assert.equal(survivors, 0, `sessions signed in with the old password that outlived the ${kind}`);
    });
  }
});
