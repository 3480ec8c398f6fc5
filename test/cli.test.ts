// The `pasargad` command as an operator runs it: exit codes, messages, and what it leaves behind.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { withEmbeddedSecret } from '../src/server.ts';
import { postgresEnv, TEST_DATABASE_URL, uniqueSchema } from './helpers/db.ts';
import { within } from './helpers/net.ts';
import { dropPrefix, uniquePrefix } from './helpers/redis.ts';

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    // A command that never ends fails the test with what it printed, not the runner's timeout.
    const timer = setTimeout(() => {
      err += `\n[test] pasargad ${args.join(' ')} did not exit within 180 s: killed`;
      child.kill('SIGKILL');
    }, 180_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

test('a bad configuration stops the command with every bad variable named', async () => {
  const r = await cli(['migrate'], { PORT: 'x', LOG_LEVEL: 'loud', DATABASE_URL: 'postgres://u:hunter2@h/db' });
  assert.equal(r.code, 2);
  for (const name of ['PORT', 'LOG_LEVEL', 'SECRET_KEY']) assert.match(r.err, new RegExp(name));
  assert.doesNotMatch(r.err + r.out, /hunter2/);
});

test('migrate applies once; serve refuses a production database with pending migrations', async () => {
  const schema = uniqueSchema();
  // Its own data folder: the seed stores the demo's pictures there (media), never in the checkout's ./data.
  const dataDir = mkdtempSync(join(tmpdir(), 'pasargad-cli-data-'));
  const env = postgresEnv(schema, { PORT: '8999', HOST: '127.0.0.1', DATA_DIR: dataDir });
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`create schema ${schema}`);
    const refused = await cli(['serve'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /pending migrations \(001_catalog, 002_accounts.*\).*pasargad migrate/);
    const first = await cli(['migrate'], env);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /^applied: 001_catalog, 002_accounts/);
    const again = await cli(['migrate'], env);
    assert.equal(again.out, 'nothing to apply\n');
    const seeded = await cli(['seed', '--products', '25'], env);
    assert.equal(seeded.code, 0, seeded.err);
    assert.match(seeded.out, /"products":25/);
    assert.match(seeded.err, /seeding: 25\/25 products/, 'progress is reported when stderr is not a terminal');
    assert.equal((await client.query(`select count(*)::int as n from ${schema}.products`)).rows[0].n, 25);
    assert.equal((await cli(['seed', '--products', '-3'], env)).code, 1);

    const staff = await cli(['users', 'create-staff', '--email', 'Boss@Example.com', '--password', 'Staff-Pass-2026'], env);
    assert.equal(staff.code, 0, staff.err);
    assert.match(staff.out, /^created staff account boss@example.com \(id \d+\)/);
    const row = (await client.query(`select is_staff, password from ${schema}.users where email = 'boss@example.com'`)).rows[0];
    assert.equal(row.is_staff, true);
    assert.match(row.password, /^\$argon2id\$/);
    const twice = await cli(['users', 'create-staff', '--email', 'boss@example.com', '--password', 'Other-Pass-2027'], env);
    assert.equal(twice.code, 0);
    assert.match(twice.out, /already has an account.*left unchanged/);
    assert.equal((await client.query(`select password from ${schema}.users where email = 'boss@example.com'`)).rows[0].password, row.password);
    const weak = await cli(['users', 'create-staff', '--email', 'weak@example.com', '--password', 'password'], env);
    assert.equal(weak.code, 1);
    assert.match(weak.err, /too common/);
    assert.equal((await cli(['users', 'create-staff', '--email', 'x@example.com'], env)).code, 1);

    // The Redis caches: warmed from the CLI, then emptied; a key prefix per run keeps other tests' keys apart.
    const redisPrefix = uniquePrefix();
    const redisEnv = { ...env, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: redisPrefix };
    const warm = await cli(['cache', 'warm'], redisEnv);
    assert.equal(warm.code, 0, warm.err);
    assert.match(warm.out, /^warmed \d+ answers in \d+ ms/);
    const cleared = await cli(['cache', 'clear', '--store', 'api', '--pattern', 'product_list:*'], redisEnv);
    assert.equal(cleared.code, 0, cleared.err);
    assert.match(cleared.out, /api: dropped product_list:\*/);
    assert.equal((await cli(['cache', 'clear', '--store', 'nope'], redisEnv)).code, 1);
    // The session store is no cache: `all` leaves it alone, and `--store session` takes guest
    // sessions only, never an ended sign-in session's record (a logged-out token would work again).
    const sessionRedis = new Redis('redis://127.0.0.1:6379/2', { keyPrefix: redisPrefix, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await sessionRedis.set('session:abcdefghijklmnopqrstuvwxyz012345', '{}', 'EX', 600);
      await sessionRedis.set('auth_session:s1:revoked', '1', 'EX', 600);
      const all = await cli(['cache', 'clear', '--store', 'all'], redisEnv);
      assert.equal(all.code, 0, all.err);
      assert.doesNotMatch(all.out, /session:/);
      assert.equal(await sessionRedis.exists('session:abcdefghijklmnopqrstuvwxyz012345', 'auth_session:s1:revoked'), 2, '`all` kept the session store');
      const guests = await cli(['cache', 'clear', '--store', 'session'], redisEnv);
      assert.equal(guests.code, 0, guests.err);
      assert.match(guests.out, /session: removed 1 guest sessions/);
      assert.deepEqual([await sessionRedis.exists('session:abcdefghijklmnopqrstuvwxyz012345'), await sessionRedis.exists('auth_session:s1:revoked')], [0, 1]);
    } finally {
      sessionRedis.disconnect();
    }
    const embedded = await cli(['cache', 'clear'], { DATA_DIR: join(tmpdir(), 'pasargad-cli-nocache') });
    assert.equal(embedded.code, 1);
    assert.match(embedded.err, /live inside the server/);
    await Promise.all([1, 2, 3].map((n) => dropPrefix(redisPrefix, `redis://127.0.0.1:6379/${n}`)));
  } finally {
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('config --markdown prints the README table; unknown commands fail', async () => {
  const r = await cli(['config', '--markdown'], {});
  assert.equal(r.code, 0);
  assert.match(r.out, /^\| variable \| default \| meaning \|/);
  assert.equal((await cli(['frobnicate'], {})).code, 2);
});

test('embedded mode keeps one generated secret key across restarts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pasargad-secret-'));
  try {
    const first = withEmbeddedSecret(loadConfig({ DATA_DIR: dir }));
    assert.ok(first.secretKey && first.secretKey.length >= 32);
    assert.equal(withEmbeddedSecret(loadConfig({ DATA_DIR: dir })).secretKey, first.secretKey);
    assert.equal(readFileSync(join(dir, 'secret_key'), 'utf8'), first.secretKey);
    assert.equal(withEmbeddedSecret(loadConfig({ DATA_DIR: dir, SECRET_KEY: 'k'.repeat(40) })).secretKey, 'k'.repeat(40));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('worker and scheduler: jobs in PostgreSQL run in their own process, which stops cleanly on SIGTERM; embedded mode refuses', async () => {
  const refused = await cli(['worker'], { DATA_DIR: mkdtempSync(join(tmpdir(), 'pasargad-cli-')) });
  assert.equal(refused.code, 2);
  assert.match(refused.err, /embedded mode the jobs run inside `pasargad serve`/);

  const schema = uniqueSchema();
  const env = postgresEnv(schema, { LOG_LEVEL: 'info' });
  let worker: ChildProcess | undefined;
  assert.equal((await cli(['migrate'], env)).code, 0);
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    const listed = await cli(['jobs', 'list'], env);
    assert.equal(listed.code, 0, listed.err);
    assert.match(listed.out, /check_low_stock\s+0 \* \* \* \*\s+queue products/);
    assert.match(listed.out, /queue orders\s+waiting 0/);
    const queued = await cli(['jobs', 'run', 'trim_jobs'], env);
    assert.equal(queued.code, 0, queued.err);
    assert.match(queued.out, /enqueued trim_jobs on queue default/);
    assert.notEqual((await cli(['jobs', 'run', 'rm_rf'], env)).code, 0);

    const w = (worker = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'worker', '-Q', 'default', '--concurrency', '2'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } }));
    let log = '';
    w.stdout.on('data', (b) => (log += b));
    const status = async () => (await client.query(`select status from ${schema}.jobs where name = 'trim_jobs'`)).rows[0]?.status;
    // A worker starts in a few seconds; on a loaded CI host (two suites' processes) it took over 30.
    const end = Date.now() + 90_000;
    while ((await status()) !== 'completed') {
      assert.ok(Date.now() < end, `the worker ran the job within 90 s: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const exited = new Promise<number | null>((resolve) => w.on('exit', resolve));
    w.kill('SIGTERM');
    assert.equal(await within('the worker to exit after SIGTERM', exited, 30_000), 0);
    assert.match(log, /worker started/);
    assert.match(log, /worker: stopping/);
  } finally {
    // A failed test must not leave its worker running (it kept the file alive to the runner's timeout).
    if (worker && worker.exitCode === null) worker.kill('SIGKILL');
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
  }
});
