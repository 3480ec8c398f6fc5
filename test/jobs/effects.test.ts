// once(): an effect per key, made again only by a later run of the job that claimed it and died
// before finishing, with the reference of that first try.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { once } from '../../src/infra/jobs/effects.ts';
import { forEachBackend } from '../helpers/db.ts';

forEachBackend('effects made once', ({ db }) => {
  const d = () => db().db;
  const row = (key: string) => d().selectFrom('job_effects').selectAll().where('key', '=', key).executeTakeFirst();

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

  test('a claim left by a dead run: the same job makes it again with the same reference, another job leaves it', async () => {
    // What a worker killed mid-effect leaves behind: the claim, never marked done.
    await d().insertInto('job_effects').values({ key: 'e:3', job: 'job-a', ref: 'first-try', done: false }).execute();
    const refs: string[] = [];
    assert.equal(await once(d(), 'e:3', 'job-b', async (ref) => void refs.push(ref)), false, 'another job does not take it');
    assert.equal(await once(d(), 'e:3', 'job-a', async (ref) => void refs.push(ref)), true, 'its own job does');
    assert.deepEqual(refs, ['first-try']);
    assert.equal((await row('e:3'))!.done, true);
    assert.equal(await once(d(), 'e:3', 'job-a', async (ref) => void refs.push(ref)), false, 'and only once');
  });
});
