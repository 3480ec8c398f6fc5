// Applies the SQL files in ./migrations in name order, each once. All of it runs in one
// transaction behind an advisory lock, so several instances starting together migrate once.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import type { Database } from './database.ts';

// Two levels below the package root from both src/db and dist/db, so this finds the SQL files
// whether the code runs from source or from the build.
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../src/db/migrations/', import.meta.url));
const LOCK_KEY = 7_345_120_001; // any constant shared by every instance of this app

export interface Migration {
  version: string;
  sql: string;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => ({ version: f.replace(/\.sql$/, ''), sql: readFileSync(dir + f, 'utf8') }));
}

/** Applies pending migrations; returns the versions applied now. */
export async function migrate(database: Database, migrations = loadMigrations()): Promise<string[]> {
  return database.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${LOCK_KEY})`.execute(trx);
    // search_path names the schema before it exists; statements resolve it once it does.
    if (database.schema !== 'public') await sql.raw(`create schema if not exists ${database.schema}`).execute(trx);
    await sql`create table if not exists schema_migrations (version text primary key, applied_at timestamptz not null default now())`.execute(trx);
    const done = new Set((await trx.selectFrom('schema_migrations').select('version').execute()).map((r) => r.version));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await sql.raw(m.sql).execute(trx);
      await trx.insertInto('schema_migrations').values({ version: m.version }).execute();
      applied.push(m.version);
    }
    return applied;
  });
}

/** The versions not applied yet (readiness checks report these). */
export async function pendingMigrations(database: Database, migrations = loadMigrations()): Promise<string[]> {
  const rows = await sql<{ version: string }>`select version from schema_migrations`.execute(database.db).catch(() => ({ rows: [] }));
  const done = new Set(rows.rows.map((r) => r.version));
  return migrations.map((m) => m.version).filter((v) => !done.has(v));
}
