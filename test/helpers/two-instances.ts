// Two app instances sharing one Redis (a single server, a Cluster or a Sentinel's master): waiting
// for what one instance hears from the other, and the scenario every topology must pass.
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import type { Database } from '../../src/db/database.ts';
import { getJson } from './app.ts';
import { within } from './net.ts';
import { signedIn } from './auth.ts';
import * as f from './factories.ts';

/**
 * Resolves when `app` hears another instance's invalidation (of the kind `wanted` names, when
 * given). Its own invalidations are ignored, and one write sends several messages (keys, then
 * their tags), so a late one from the step before must not stand for the one awaited. Fails after
 * `ms` (a message that never comes must fail the test, not hang it), naming what it waited for.
 * Made before the write it waits on: if that write fails first, the promise is left unawaited,
 * and its later failure is not an unhandled rejection.
 */
export function heardFromOther(app: FastifyInstance, store: 'api' | 'default' = 'api', wanted?: 'tags' | 'keys' | 'prefix', ms = 10_000): Promise<void> {
  let off = () => {};
  const heard = new Promise<void>((resolve) => {
    off = app.caches[store].onInvalidation((m, own) => {
      if (own || (wanted && !(wanted in m))) return;
      resolve();
    });
  });
  const waited = within(`the ${store} store to hear another instance's ${wanted ?? 'any'} invalidation`, heard, ms).finally(() => off());
  waited.catch(() => {});
  return waited;
}

/** A product page cached by `a` is a hit on `b`, held in `b`'s memory, and a staff edit on `a` shows on `b`'s next read. */
export async function assertWriteShowsOnOther(a: FastifyInstance, b: FastifyInstance, database: Database): Promise<void> {
  const staff = await signedIn(a, database, { staff: true });
  const p = await f.product(database.db, { price: '10.00' });
  const url = `/api/products/${p.id}/`;
  assert.equal((await getJson(a, url)).headers['x-cache'], 'MISS');
  assert.equal((await getJson(b, url)).headers['x-cache'], 'HIT', 'b found a’s entry in Redis');
  assert.equal((await getJson(b, url)).headers['x-cache'], 'HIT', 'and now holds it in memory');
  const told = heardFromOther(b);
  assert.equal((await getJson(a, url, { method: 'PATCH', headers: staff.headers, payload: { price: '12.00' } })).status, 200);
  await told;
  assert.equal((await getJson(b, url)).body.price, '12.00');
}
