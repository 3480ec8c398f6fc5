import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, configTable, CONFIG_VARIABLES, loadConfig, redact } from '../src/config.ts';

test('defaults give the embedded demo shop on port 8000', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.database.url, undefined);
  assert.equal(c.dataDir, './data');
  assert.deepEqual(c.database.replicaUrls, []);
  assert.deepEqual(c.corsOrigins, ['http://localhost:3000', 'http://127.0.0.1:3000']);
  assert.equal(c.cdnUrl, undefined);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.database));
});

test('every bad variable is named in one error', () => {
  const err = (() => {
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud', USE_CDN: 'maybe', TRUSTED_PROXIES: '10.0.0.0/99' });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof ConfigError);
  for (const name of ['PORT', 'DATABASE_URL', 'LOG_LEVEL', 'USE_CDN', 'TRUSTED_PROXIES']) assert.match(err.message, new RegExp(name));
  assert.equal(err.problems.length, 6, 'a DATABASE_URL was given, so SECRET_KEY is required too');
  assert.match(err.message, /SECRET_KEY is required/);
  // rules between variables are checked in the same pass, not after the others are fixed
  assert.throws(() => loadConfig({ PORT: 'x', DATABASE_URL: 'postgres://u@h/db', USE_CDN: 'true' }), (e: ConfigError) =>
    e.problems.length === 3 && /PORT/.test(e.message) && /SECRET_KEY is required/.test(e.message) && /CDN_URL is required/.test(e.message));
});

test('cross-variable rules', () => {
  assert.throws(() => loadConfig({ USE_CDN: 'True' }), /CDN_URL is required/);
  assert.equal(loadConfig({ USE_CDN: 'True', CDN_URL: 'https://cdn.example.com/' }).cdnUrl, 'https://cdn.example.com');
  assert.equal(loadConfig({ USE_CDN: 'false', CDN_URL: 'https://cdn.example.com' }).cdnUrl, undefined);
  assert.throws(() => loadConfig({ DATABASE_URL: 'postgres://u@h/db' }), /SECRET_KEY is required/);
  assert.throws(() => loadConfig({ SECRET_KEY: 'short' }), /at least 32/);
  assert.throws(() => loadConfig({ DATABASE_REPLICA_URLS: 'postgres://r/db' }), /needs DATABASE_URL/);
  assert.throws(() => loadConfig({ DATABASE_SCHEMA: 'bad;drop' }), /DATABASE_SCHEMA/);
  const c = loadConfig({ DATABASE_URL: 'postgres://u:pw@h/db', SECRET_KEY: 'x'.repeat(32), DATABASE_REPLICA_URLS: 'postgres://r1/db, postgres://r2/db', TRUSTED_PROXIES: '127.0.0.1,10.0.0.0/8,::1' });
  assert.deepEqual(c.database.replicaUrls, ['postgres://r1/db', 'postgres://r2/db']);
  assert.deepEqual(c.trustedProxies, ['127.0.0.1', '10.0.0.0/8', '::1']);
});

test('passwords never reach messages', () => {
  assert.equal(redact('postgres://shop:hunter2@db:5432/shop'), 'postgres://shop:***@db:5432/shop');
  assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://shop:hunter2@db/shop' }), (e: Error) => !e.message.includes('hunter2'));
});

test('the README table lists every variable', () => {
  const table = configTable();
  for (const name of Object.keys(CONFIG_VARIABLES)) assert.match(table, new RegExp(`\\| \`${name}\` \\|`));
});
