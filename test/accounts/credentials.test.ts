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
  let prefix = '';
  const others: FastifyInstance[] = [];
  before(async () => {
    prefix = uniquePrefix();
    prefixes.push(prefix);
    app = await testApp(db(), backend === 'postgres' ? { REDIS_URL: REDIS, REDIS_KEY_PREFIX: prefix } : {});
  });
  after(async () => {
    await app?.close();
    for (const a of others) await a.close();
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

  // Two instances with their own clocks exist only with a database server (embedded PGlite even
  // takes its clock from the process's Date.now).
  test('strict reuse detection: the grace is measured by the shared store, not by comparing two instances’ clocks', { skip: backend !== 'postgres' }, async () => {
    const env = { REFRESH_REUSE_DETECTION: 'true', REFRESH_REUSE_GRACE: '10', ...(backend === 'postgres' ? { REDIS_URL: REDIS, REDIS_KEY_PREFIX: prefix } : {}) };
    const [a, b] = [await testApp(db(), env), await testApp(db(), env)];
    others.push(a, b);
    const user = await signedIn(a, db());
    const first = await getJson(a, '/api/users/auth/refresh/', { method: 'POST', payload: { refresh: user.refresh } });
    assert.equal(first.status, 200);
    // Instance b's clock runs 30 s ahead of a's (NTP not yet converged): a reuse one moment later,
    // well inside the grace, must not be taken for a reuse past it.
    const realNow = Date.now;
    const skewed = () => realNow() + 30_000;
    let again;
    try {
      Date.now = skewed;
      again = await getJson(b, '/api/users/auth/refresh/', { method: 'POST', payload: { refresh: user.refresh } });
    } finally {
      Date.now = realNow;
    }
    assert.equal(again.status, 200, `a parallel-style reuse on the instance with the fast clock: ${JSON.stringify(again.body)}`);
    assert.equal((await getJson(a, '/api/users/auth/refresh/', { method: 'POST', payload: { refresh: first.body.refresh } })).status, 200, 'the session goes on');
  });
});
