// Test databases: every suite gets its own freshly migrated schema, on embedded PGlite (one
// instance per test file, shared) and on the real PostgreSQL at 127.0.0.1:5432.
import { randomBytes } from 'node:crypto';
import { after, before, describe } from 'node:test';
import type { PGlite } from '@electric-sql/pglite';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.ts';
import { createPglite, openDatabase, wrapPglite, type Database } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';

export type BackendName = 'pglite' | 'postgres';
export const BACKENDS: BackendName[] = ['pglite', 'postgres'];
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_SECRET = 'test-secret-key-that-is-long-enough-000';

let pglite: Promise<PGlite> | undefined;
function sharedPglite(): Promise<PGlite> {
  pglite ??= createPglite('memory://');
  return pglite;
}

export function uniqueSchema(): string {
  return `t_${process.pid}_${randomBytes(4).toString('hex')}`;
}

export function postgresEnv(schema: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema, SECRET_KEY: TEST_SECRET, LOG_LEVEL: 'silent', ...extra };
}

/** A migrated, empty database in a schema of its own. `drop()` removes the schema. */
export async function openTestDatabase(backend: BackendName): Promise<Database & { drop(): Promise<void> }> {
  const schema = uniqueSchema();
  const database =
    backend === 'pglite'
      ? await wrapPglite(await sharedPglite(), schema)
      : await openDatabase(loadConfig(postgresEnv(schema)));
  await migrate(database);
  return Object.assign(database, {
    async drop() {
      if (backend === 'postgres') await sql.raw(`drop schema if exists ${schema} cascade`).execute(database.db);
      await database.close();
    },
  });
}

/**
 * Declares `body` once per backend, each in its own describe with a fresh database. Suites run
 * one after another within a file, so the shared PGlite connection serves one schema at a time.
 */
export function forEachBackend(title: string, body: (ctx: { backend: BackendName; db: () => Database }) => void): void {
  for (const backend of BACKENDS) {
    describe(`${title} [${backend}]`, () => {
      let database: (Database & { drop(): Promise<void> }) | undefined;
      before(async () => {
        database = await openTestDatabase(backend);
      });
      after(async () => {
        await database?.drop();
      });
      body({ backend, db: () => database! });
    });
  }
}
