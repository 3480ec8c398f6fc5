// Signed-in callers for tests: a user row plus a real token pair from the app's token service.
import type { FastifyInstance } from 'fastify';
import type { Database } from '../../src/db/database.ts';
import { hashPassword } from '../../src/modules/accounts/passwords.ts';

let n = 0;

export interface TestUser {
  id: number;
  email: string;
  password: string;
  access: string;
  refresh: string;
  /** `{ authorization: 'Bearer …' }` for inject headers. */
  headers: { authorization: string };
}

export async function signedIn(app: FastifyInstance, database: Database, o: { staff?: boolean; first_name?: string; last_name?: string } = {}): Promise<TestUser> {
  const i = ++n;
  const tag = `${process.pid}-${i}-${Math.random().toString(36).slice(2, 7)}`;
  const password = `Correct-Horse-${tag}`;
  const row = await database.db
    .insertInto('users')
    .values({
      email: `${o.staff ? 'staff' : 'customer'}-${tag}@example.com`,
      username: `u-${tag}`,
      first_name: o.first_name ?? 'Test',
      last_name: o.last_name ?? 'User',
      password: await hashPassword(password),
      is_staff: o.staff ?? false,
    })
    .returning(['id', 'email', 'is_staff'])
    .executeTakeFirstOrThrow();
  const pair = await app.tokens.issue(row);
  return { id: row.id, email: row.email, password, ...pair, headers: { authorization: `Bearer ${pair.access}` } };
}
