import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/database.ts';
import { loadMigrations, migrate, pendingMigrations } from '../../src/db/migrate.ts';
import { seedCatalog } from '../../src/db/seed.ts';
import { forEachBackend, postgresEnv, TEST_DATABASE_URL, uniqueSchema } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';

forEachBackend('database', ({ db }) => {
  test('migrations are applied once and recorded', async () => {
    assert.deepEqual(await migrate(db()), []);
    assert.deepEqual(await pendingMigrations(db()), []);
    const rows = await db().db.selectFrom('schema_migrations').select('version').execute();
    assert.deepEqual(rows.map((r) => r.version), loadMigrations().map((m) => m.version));
  });

  test('the search document follows product and category changes', async () => {
    const d = db().db;
    const c = await f.category(d, { name: 'Gadgets' });
    const p = await f.product(d, { name: 'Widget', category_id: c.id, material: 'Nylon' });
    const vector = async () => (await d.selectFrom('products').select('search_vector').where('id', '=', p.id).executeTakeFirstOrThrow()).search_vector!;
    assert.match(await vector(), /'widget':1A/);
    assert.match(await vector(), /'gadget':\d+C/);
    assert.match(await vector(), /'nylon':\d+$|'nylon':\d+ /);
    await d.updateTable('categories').set({ name: 'Gizmos' }).where('id', '=', c.id).execute();
    assert.match(await vector(), /'gizmo':\d+C/);
    assert.doesNotMatch(await vector(), /gadget/);
    await d.updateTable('products').set({ description: 'Spring loaded' }).where('id', '=', p.id).execute();
    assert.match(await vector(), /'spring':\d+B/);
  });

  test('constraints keep bad data out', async () => {
    const d = db().db;
    const p = await f.product(d, {});
    await assert.rejects(d.updateTable('products').set({ stock_quantity: -1 }).where('id', '=', p.id).execute(), { code: '23514' });
    await f.image(d, p.id, { is_main: true });
    await assert.rejects(f.image(d, p.id, { is_main: true }), { code: '23505' });
    const u = await f.user(d);
    await f.review(d, p.id, u.id, 4);
    await assert.rejects(f.review(d, p.id, u.id, 5), { code: '23505' });
    await assert.rejects(f.review(d, p.id, (await f.user(d)).id, 6), { code: '23514' });
  });

  test('the generated catalog is consistent and searchable', async () => {
    const result = await seedCatalog(db(), { products: 300, seed: 3, batchSize: 120 });
    assert.equal(result.products, 300);
    assert.ok(result.reviews > 300, `reviews: ${result.reviews}`);
    assert.equal(result.categories, 12);
    const d = db().db;
    const mismatched = await sql<{ n: number }>`
      select count(*)::int as n from products p
       where p.review_count <> (select count(*) from reviews r where r.product_id = p.id)
          or p.rating_total <> (select coalesce(sum(rating), 0) from reviews r where r.product_id = p.id)`.execute(d);
    assert.equal(mismatched.rows[0]!.n, 0);
    const noMain = await sql<{ n: number }>`select count(*)::int as n from products p where p.sku like 'PP-%' and not exists (select 1 from product_images i where i.product_id = p.id and i.is_main)`.execute(d);
    assert.equal(noMain.rows[0]!.n, 0);
    const stock = await sql<{ zero: number; low: number }>`select count(*) filter (where stock_quantity = 0)::int as zero, count(*) filter (where stock_quantity > 0 and stock_quantity <= low_stock_threshold)::int as low from products`.execute(d);
    assert.ok(stock.rows[0]!.zero > 0 && stock.rows[0]!.low > 0, 'sold-out and low-stock products exist');
    const found = await sql<{ n: number }>`select count(*)::int as n from products where search_vector @@ to_tsquery('english', 'dragon')`.execute(d);
    assert.ok(found.rows[0]!.n > 0);
    // seeding again adds, never collides
    const again = await seedCatalog(db(), { products: 10, seed: 3 });
    assert.equal(again.products, 10);
  });
});

test('concurrent migrations on PostgreSQL apply once', async () => {
  const schema = uniqueSchema();
  const a = await openDatabase(loadConfig(postgresEnv(schema)));
  const b = await openDatabase(loadConfig(postgresEnv(schema)));
  try {
    const [x, y] = await Promise.all([migrate(a), migrate(b)]);
    assert.deepEqual([...x, ...y], loadMigrations().map((m) => m.version));
  } finally {
    await sql.raw(`drop schema ${schema} cascade`).execute(a.db);
    await a.close();
    await b.close();
  }
});

test('replica reads go round-robin and fall back to the primary when a replica is down', async () => {
  const schema = uniqueSchema();
  // Two "replicas" on the same server (reads see the same data) and one that refuses connections.
  const database = await openDatabase(loadConfig(postgresEnv(schema, { DATABASE_REPLICA_URLS: `${TEST_DATABASE_URL},postgres://postgres@127.0.0.1:1/test,${TEST_DATABASE_URL}` })));
  try {
    await migrate(database);
    const before = { ...database.stats.byTarget };
    for (let i = 0; i < 6; i++) await database.read((db) => db.selectFrom('products').select('id').execute());
    const delta = (t: string) => (database.stats.byTarget[t] ?? 0) - (before[t] ?? 0);
    assert.equal(delta('replica0') + delta('replica2'), 6, 'the live replicas served every read');
    assert.ok(delta('replica0') >= 2 && delta('replica2') >= 2, 'spread round-robin');
    assert.equal(delta('replica1'), 0, 'the dead replica answered nothing');
    assert.equal(delta('primary'), 0, 'the primary was not needed');
    // every replica down: the primary answers
    const lonely = await openDatabase(loadConfig(postgresEnv(schema, { DATABASE_REPLICA_URLS: 'postgres://postgres@127.0.0.1:1/test' })));
    try {
      const rows = await lonely.read((db) => db.selectFrom('products').select('id').execute());
      assert.deepEqual(rows, []);
      assert.equal(lonely.stats.byTarget.primary, 1);
    } finally {
      await lonely.close();
    }
    // a query error is not a connection error: it is not retried elsewhere
    await assert.rejects(database.read((db) => sql`select * from no_such_table`.execute(db)), { code: '42P01' });
  } finally {
    await sql.raw(`drop schema ${schema} cascade`).execute(database.db);
    await database.close();
  }
});
