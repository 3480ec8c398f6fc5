// inTransaction: events go out once, after commit; a deadlock victim is run again, other errors are not.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EventBus } from '../../src/infra/events.ts';
import { inTransaction, type Ctx } from '../../src/infra/http/context.ts';
import { openTestDatabase } from '../helpers/db.ts';

let database: Awaited<ReturnType<typeof openTestDatabase>>;
before(async () => {
  database = await openTestDatabase('pglite');
});
after(async () => {
  await database.drop();
});

test('a deadlock victim runs again and its events are published once; a rolled-back run publishes nothing', async () => {
  const events = new EventBus();
  const seen: number[][] = [];
  events.on('stock.changed', ({ productIds }) => void seen.push(productIds));
  const ctx = { database, events } as unknown as Ctx;
  let runs = 0;
  const result = await inTransaction(ctx, async (trx, publish) => {
    runs++;
    await trx.insertInto('categories').values({ name: `Try ${runs}` }).execute();
    publish('stock.changed', { productIds: [runs], moves: [] });
    if (runs === 1) throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
    return 'done';
  });
  assert.equal(result, 'done');
  assert.equal(runs, 2);
  assert.deepEqual(seen, [[2]], 'only the committed run published');
  const names = (await database.db.selectFrom('categories').select('name').where('name', 'like', 'Try %').execute()).map((c) => c.name);
  assert.deepEqual(names, ['Try 2'], 'the first run was rolled back');

  let other = 0;
  await assert.rejects(
    inTransaction(ctx, async () => {
      other++;
      throw Object.assign(new Error('unique'), { code: '23505' });
    }),
    /unique/,
  );
  assert.equal(other, 1, 'other errors are not retried');
});
