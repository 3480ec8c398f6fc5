// All account SQL: users, addresses, newsletter sign-ups.
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';

export const USER_COLUMNS = [
  'id',
  'email',
  'username',
  'first_name',
  'last_name',
  'phone',
  'date_of_birth',
  'newsletter_subscription',
  'is_staff',
  'is_active',
  'created_at',
] as const;

export interface UserRow {
  id: number;
  email: string;
  username: string;
  first_name: string;
  last_name: string;
  phone: string;
  date_of_birth: string | null;
  newsletter_subscription: boolean;
  is_staff: boolean;
  is_active: boolean;
  created_at: string;
}

export function findUserById(db: Db, id: number): Promise<UserRow | undefined> {
  return db.selectFrom('users').select(USER_COLUMNS).where('id', '=', id).executeTakeFirst();
}

/**
 * The user behind a token, with when its credentials last changed (tokens_valid_after, ms since
 * the epoch, or null): sessions that signed in before then are over, except the one that changed
 * the password (tokens_kept_sid).
 */
export function findUserForToken(db: Db, id: number): Promise<(UserRow & { tokens_valid_after_ms: number | null; tokens_kept_sid: string | null }) | undefined> {
  return db
    .selectFrom('users')
    // Rounded up, as sign-in times are rounded down (see confirmLogin): a session that signed in
    // before the change, in the same millisecond, is still before it.
    .select([
      ...USER_COLUMNS,
      sql<number | null>`ceil(extract(epoch from tokens_valid_after) * 1000)::float8`.as('tokens_valid_after_ms'),
      sql<string | null>`tokens_kept_sid`.as('tokens_kept_sid'),
    ])
    .where('id', '=', id)
    .executeTakeFirst();
}

export function findLoginByEmail(db: Db, email: string): Promise<(UserRow & { password: string }) | undefined> {
  return db
    .selectFrom('users')
    .select([...USER_COLUMNS, 'password'])
    .where(sql`lower(email)`, '=', email.toLowerCase())
    .executeTakeFirst();
}

export function findLoginById(db: Db, id: number): Promise<(UserRow & { password: string }) | undefined> {
  return db
    .selectFrom('users')
    .select([...USER_COLUMNS, 'password'])
    .where('id', '=', id)
    .executeTakeFirst();
}

export async function emailTaken(db: Db, email: string, exceptId?: number): Promise<boolean> {
  let q = db.selectFrom('users').select('id').where(sql`lower(email)`, '=', email.toLowerCase());
  if (exceptId !== undefined) q = q.where('id', '<>', exceptId);
  return (await q.executeTakeFirst()) !== undefined;
}

export async function usernameTaken(db: Db, username: string, exceptId?: number): Promise<boolean> {
  let q = db.selectFrom('users').select('id').where('username', '=', username);
  if (exceptId !== undefined) q = q.where('id', '<>', exceptId);
  return (await q.executeTakeFirst()) !== undefined;
}

export interface NewUser {
  email: string;
  username: string;
  first_name: string;
  last_name: string;
  password: string;
  phone?: string;
  newsletter_subscription?: boolean;
  is_staff?: boolean;
}

export function insertUser(db: Db, u: NewUser): Promise<UserRow> {
  return db.insertInto('users').values(u).returning(USER_COLUMNS).executeTakeFirstOrThrow();
}

export type ProfileChanges = Partial<Pick<UserRow, 'username' | 'first_name' | 'last_name' | 'phone' | 'date_of_birth' | 'newsletter_subscription'>>;

export function updateUser(db: Db, id: number, changes: ProfileChanges): Promise<UserRow | undefined> {
  return db
    .updateTable('users')
    .set({ ...changes, updated_at: sql<string>`now()` })
    .where('id', '=', id)
    .returning(USER_COLUMNS)
    .executeTakeFirst();
}

export async function findPassword(db: Db, id: number): Promise<string | undefined> {
  return (await db.selectFrom('users').select('password').where('id', '=', id).executeTakeFirst())?.password;
}

/**
 * Replaces the password, only while it is still `currentHash` (of two changes or resets racing,
 * one wins; false for the other), and ends every session that signed in before it except
 * `keepSid` (the caller's, on a password change). The time is the database clock's once the row
 * is locked, so a sign-in confirmed with the old password (confirmLogin) is always earlier.
 */
export async function setPassword(db: Db, id: number, currentHash: string, passwordHash: string, keepSid: string | null = null): Promise<boolean> {
  const r = await sql`update users set password = ${passwordHash}, tokens_valid_after = clock_timestamp(), tokens_kept_sid = ${keepSid}, updated_at = now()
    where id = ${id} and password = ${currentHash}`.execute(db);
  return Number(r.numAffectedRows ?? 0) > 0;
}

/**
 * A sign-in's last step, once the password checked out against `passwordHash`: records it
 * (last_login) while the row still has that password and the account is active, and answers when
 * the session starts (ms, the database clock, rounded down), or undefined when the password
 * changed (or the account was disabled) meanwhile. As an UPDATE it waits for a password change in
 * progress and then sees the new password; one that comes after it gets a later clock. So a
 * session signed in with the old password always starts before the change that ends it.
 */
export async function confirmLogin(db: Db, id: number, passwordHash: string): Promise<number | undefined> {
  const r = await sql<{ at: number }>`update users set last_login = now() where id = ${id} and password = ${passwordHash} and is_active
    returning floor(extract(epoch from clock_timestamp()) * 1000)::float8 as at`.execute(db);
  return r.rows[0]?.at;
}

// Addresses ---------------------------------------------------------------------------------

export interface AddressRow {
  id: number;
  user_id: number;
  address_type: 'shipping' | 'billing';
  street_address: string;
  apartment: string;
  city: string;
  state: string;
  postal_code: string;
  country: string;
  is_default: boolean;
  created_at: string;
  updated_at: string;
}

export type AddressFields = Pick<AddressRow, 'address_type' | 'street_address' | 'apartment' | 'city' | 'state' | 'postal_code' | 'country' | 'is_default'>;

export async function countAddresses(db: Db, userId: number): Promise<number> {
  const row = await db.selectFrom('addresses').select(sql<number>`count(*)::int`.as('n')).where('user_id', '=', userId).executeTakeFirstOrThrow();
  return row.n;
}

export function listAddresses(db: Db, userId: number, limit: number, offset: number): Promise<AddressRow[]> {
  return db.selectFrom('addresses').selectAll().where('user_id', '=', userId).orderBy('id').limit(limit).offset(offset).execute();
}

export function findAddress(db: Db, userId: number, id: number): Promise<AddressRow | undefined> {
  return db.selectFrom('addresses').selectAll().where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
}

/**
 * Serialises one user's address writes, so two new defaults of one type cannot race. NO KEY
 * UPDATE: an order or cart inserted for the user meanwhile (a foreign-key check) need not wait.
 */
export async function lockUser(db: Db, userId: number): Promise<void> {
  await db.selectFrom('users').select('id').where('id', '=', userId).forNoKeyUpdate().execute();
}

/** Clears the default flag of the user's other addresses of a type (before another becomes default). */
export async function clearDefault(db: Db, userId: number, type: AddressRow['address_type'], exceptId?: number): Promise<void> {
  let q = db.updateTable('addresses').set({ is_default: false, updated_at: sql<string>`now()` }).where('user_id', '=', userId).where('address_type', '=', type).where('is_default', '=', true);
  if (exceptId !== undefined) q = q.where('id', '<>', exceptId);
  await q.execute();
}

export function insertAddress(db: Db, userId: number, a: AddressFields): Promise<AddressRow> {
  return db.insertInto('addresses').values({ ...a, user_id: userId }).returningAll().executeTakeFirstOrThrow();
}

export function updateAddress(db: Db, userId: number, id: number, a: Partial<AddressFields>): Promise<AddressRow | undefined> {
  return db
    .updateTable('addresses')
    .set({ ...a, updated_at: sql<string>`now()` })
    .where('user_id', '=', userId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteAddress(db: Db, userId: number, id: number): Promise<boolean> {
  const r = await db.deleteFrom('addresses').where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

// Newsletter --------------------------------------------------------------------------------

/** Records the choice for an email and, with `account`, mirrors it on the account with that email. */
export async function setNewsletter(db: Db, email: string, subscribed: boolean, account: boolean): Promise<void> {
  await db
    .insertInto('newsletter_subscribers')
    .values({ email, is_subscribed: subscribed })
    .onConflict((oc) => oc.expression(sql`lower(email)`).doUpdateSet({ is_subscribed: subscribed, updated_at: sql<string>`now()` }))
    .execute();
  if (account) await db.updateTable('users').set({ newsletter_subscription: subscribed }).where(sql`lower(email)`, '=', email.toLowerCase()).execute();
}
