// once(): an effect per key. A later run of the job that claimed it takes it over only once the
// claim has gone unrenewed (its run died), and makes it again with the reference of the first try;
// a run that finds the claim fresh (its twin is alive) waits for a retry instead.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { sql } from 'kysely';
import { EffectInProgress, once as onceWith } from '../../src/infra/jobs/effects.ts';
import type { Db } from '../../src/db/database.ts';
import { forEachBackend } from '../helpers/db.ts';

const STALE_MS = 600;
const once = (db: Db, key: string, job: string, effect: (ref: string) => Promise<void>) => onceWith(db, key, job, effect, { staleMs: STALE_MS });

forEachBackend('effects made once', ({ db }) => {
  const d = () => db().db;
  const row = (key: string) => d().selectFrom('job_effects').selectAll().where('key', '=', key).executeTakeFirst();
  const age = (key: string, ms: number) => sql`update job_effects set claimed_at = now() - make_interval(secs => ${ms / 1000}) where key = ${key}`.execute(d());

  test('made once: a second run of the job, or another job, finds it done', async () => {
    const refs: string[] = [];
    assert.equal(await once(d(), 'e:1', 'job-a', async (ref) => void refs.push(ref)), true);
    assert.equal(await once(d(), 'e:1', 'job-a', async (ref) => void refs.push(ref)), false);
    assert.equal(await once(d(), 'e:1', 'job-b', async (ref) => void refs.push(ref)), false);
    assert.equal(refs.length, 1);
    assert.match(refs[0]!, /^[0-9a-f-]{36}$/);
    assert.equal((await row('e:1'))!.done, true);
  });

  test('a failed effect is given back: the retry makes it', async () => {
    await assert.rejects(once(d(), 'e:2', 'job-a', async () => Promise.reject(new Error('smtp said no'))), /smtp said no/);
    assert.equal(await row('e:2'), undefined);
    let made = 0;
    assert.equal(await once(d(), 'e:2', 'job-a', async () => void made++), true);
    assert.equal(made, 1);
  });

  test('a claim left by a dead run: another job leaves it; the same job waits while it is fresh, then makes it again with the same reference', async () => {
    // What a worker killed mid-effect leaves behind: the claim, never marked done nor renewed.
    await d().insertInto('job_effects').values({ key: 'e:3', job: 'job-a', ref: 'first-try', token: 'dead-run', done: false }).execute();
    const refs: string[] = [];
    assert.equal(await once(d(), 'e:3', 'job-b', async (ref) => void refs.push(ref)), false, 'another job does not take it');
    await assert.rejects(once(d(), 'e:3', 'job-a', async (ref) => void refs.push(ref)), EffectInProgress, 'not yet: it may be a live run');
    await age('e:3', STALE_MS * 2);
    assert.equal(await once(d(), 'e:3', 'job-a', async (ref) => void refs.push(ref)), true, 'unrenewed past the lock timeout: its own job takes it');
    assert.deepEqual(refs, ['first-try']);
    assert.equal((await row('e:3'))!.done, true);
    assert.equal(await once(d(), 'e:3', 'job-a', async (ref) => void refs.push(ref)), false, 'and only once');
  });

  test('two live runs of one job (a worker wrongly taken for dead): one makes it, even when it takes longer than the lock timeout', async () => {
    let made = 0;
    const slow = once(d(), 'e:4', 'job-a', async () => {
      await sleep(STALE_MS * 2.5); // renewed meanwhile
      made++;
    });
    await sleep(STALE_MS * 1.5);
    await assert.rejects(once(d(), 'e:4', 'job-a', async () => void made++), EffectInProgress);
    assert.equal(await slow, true);
    assert.equal(made, 1);
    assert.equal(await once(d(), 'e:4', 'job-a', async () => void made++), false, 'the retry finds it done');
  });

  test('a stale run whose effect fails does not give back the claim of the run that took it over', async () => {
    let release!: () => void;
    const stale = once(d(), 'e:5', 'job-a', () => new Promise<void>((_, reject) => (release = () => reject(new Error('cut off')))));
    await sleep(50);
    // The first run stalls (no renewals reach the database), the queue hands the job on.
    await sql`update job_effects set claimed_at = now() - interval '10 seconds', token = 'stalled' where key = 'e:5'`.execute(d());
    let made = 0;
    let finish!: () => void;
    const next = once(d(), 'e:5', 'job-a', () => new Promise<void>((resolve) => (finish = () => (made++, resolve()))));
    await sleep(100);
    release();
    await assert.rejects(stale, /cut off/);
    assert.ok(await row('e:5'), 'the second run still holds its claim');
    finish();
    assert.equal(await next, true);
    assert.equal(made, 1);
    assert.equal((await row('e:5'))!.done, true);
  });
});

test('the Message-ID domain is the sender address’s, or localhost when it has none usable', async () => {
  const { messageDomain } = await import('../../src/infra/jobs/handlers.ts');
  const cases: [string, string][] = [
    ['Pasargad Prints <shop@pasargad.test>', 'pasargad.test'],
    ['shop@example.com', 'example.com'],
    ['"shop@example.com" <shop@example.com>', 'example.com'],
    ['shop@example.com, ops@example.org', 'example.com'],
    ['Bücher <shop@bücher.de>', 'xn--bcher-kva.de'],
    ['shop@[127.0.0.1]', 'localhost'],
    ['no address at all', 'localhost'],
  ];
  assert.deepEqual(cases.map(([from]) => messageDomain(from)), cases.map(([, domain]) => domain));
});
