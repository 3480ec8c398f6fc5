// Accounts: registration, sign-in, profile, password, addresses, newsletter. Passwords are
// argon2id; emails are stored lower-case and unique; sign-in failures all read the same.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from '../../db/database.ts';
import type { KeyValueStore } from '../../infra/cache/store.ts';
import type { Ctx } from '../../infra/http/context.ts';
import { AppError, fieldError, uniqueFieldError, type FieldErrors } from '../../infra/http/errors.ts';
import { paginate, type PageQuery, type PageResult } from '../../infra/http/pagination.ts';
import * as repo from './accounts.repository.ts';
import { toAddress, toUser } from './accounts.mapper.ts';
import type { Address, AddressInput, PasswordChangeBody, PasswordResetConfirmBody, ProfileChanges, RegisterBody, User } from './accounts.schemas.ts';
import { hashPassword, passwordProblems, verifyPassword } from './passwords.ts';

export const normaliseEmail = (email: string) => email.trim().toLowerCase();

const EMAIL_TAKEN = 'user with this email already exists.';
const USERNAME_TAKEN = 'A user with that username already exists.';
const DATE_FORMAT = 'Date has wrong format. Use one of these formats instead: YYYY-MM-DD.';

const UNIQUE: Record<string, [string, string]> = { users_email_key: ['email', EMAIL_TAKEN], users_username_key: ['username', USERNAME_TAKEN] };

function isRealDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value && value >= '1900-01-01';
}

export async function register(ctx: Ctx, body: RegisterBody): Promise<repo.UserRow> {
  const email = normaliseEmail(body.email);
  const username = body.username.trim();
  const errors: FieldErrors = {};
  const [emailTaken, usernameTaken, problems] = await Promise.all([
    repo.emailTaken(ctx.database.db, email),
    repo.usernameTaken(ctx.database.db, username),
    passwordProblems(body.password, { email, username, first_name: body.first_name, last_name: body.last_name }),
  ]);
  if (emailTaken) errors.email = [EMAIL_TAKEN];
  if (usernameTaken) errors.username = [USERNAME_TAKEN];
  if (problems.length) errors.password = problems;
  if (Object.keys(errors).length) throw new AppError('bad_request', { errors });
  if (body.password !== body.password_confirm) throw new AppError('bad_request', { errors: { non_field_errors: ["Passwords don't match"] } });

  const password = await hashPassword(body.password);
  try {
    const user = await ctx.database.db.transaction().execute(async (trx) => {
      const row = await repo.insertUser(trx, {
        email,
        username,
        first_name: body.first_name.trim(),
        last_name: body.last_name.trim(),
        password,
        phone: body.phone?.trim() ?? '',
        newsletter_subscription: body.newsletter_subscription ?? false,
      });
      if (row.newsletter_subscription) await repo.setNewsletter(trx, email, true, true);
      return row;
    });
    await ctx.events.emit('user.registered', { id: user.id });
    return user;
  } catch (err) {
    throw uniqueFieldError(err, UNIQUE) ?? err;
  }
}

/**
 * The account for these credentials, and when its session starts (`signedInAt`, ms: see
 * repo.confirmLogin; a password change that raced the check ends that session). Unknown email,
 * wrong password and disabled account are one answer.
 */
export async function authenticate(ctx: Ctx, email: string, password: string): Promise<repo.UserRow & { signedInAt: number }> {
  const row = await repo.findLoginByEmail(ctx.database.db, normaliseEmail(email));
  const ok = await verifyPassword(row?.password, password);
  if (!row || !ok || !row.is_active) throw new AppError('authentication_failed');
  // The password may have changed while it was being checked: then it is not the account's any more.
  const signedInAt = await repo.confirmLogin(ctx.database.db, row.id, row.password);
  if (signedInAt === undefined) throw new AppError('authentication_failed');
  const { password: _hash, ...user } = row;
  return { ...user, signedInAt };
}

export async function updateProfile(ctx: Ctx, user: repo.UserRow, changes: ProfileChanges): Promise<User> {
  const errors: FieldErrors = {};
  const set: repo.ProfileChanges = {};
  if (changes.username !== undefined) {
    set.username = changes.username.trim();
    if (await repo.usernameTaken(ctx.database.db, set.username, user.id)) errors.username = [USERNAME_TAKEN];
  }
  if (changes.first_name !== undefined) set.first_name = changes.first_name.trim();
  if (changes.last_name !== undefined) set.last_name = changes.last_name.trim();
  if (changes.phone !== undefined) set.phone = changes.phone.trim();
  if (changes.newsletter_subscription !== undefined) set.newsletter_subscription = changes.newsletter_subscription;
  if (changes.date_of_birth !== undefined) {
    if (changes.date_of_birth !== null && !isRealDate(changes.date_of_birth)) errors.date_of_birth = [DATE_FORMAT];
    else set.date_of_birth = changes.date_of_birth;
  }
  if (Object.keys(errors).length) throw new AppError('bad_request', { errors });
  try {
    const row = await ctx.database.db.transaction().execute(async (trx) => {
      const updated = await repo.updateUser(trx, user.id, set);
      if (updated && set.newsletter_subscription !== undefined) await repo.setNewsletter(trx, updated.email, set.newsletter_subscription, true);
      return updated;
    });
    if (!row) throw new AppError('not_found');
    await ctx.events.emit('user.updated', { id: user.id, fields: Object.keys(set) });
    return toUser(row);
  } catch (err) {
    throw uniqueFieldError(err, UNIQUE) ?? err;
  }
}

/**
 * Changes the password and ends every other session: their refresh and access tokens are refused
 * from now on. The caller's own session (`keepSid`) goes on, so the storefront stays signed in
 * with the tokens it holds.
 */
export async function changePassword(ctx: Ctx, user: repo.UserRow, body: PasswordChangeBody, keepSid: string | null): Promise<void> {
  const stored = await repo.findPassword(ctx.database.db, user.id);
  if (!(await verifyPassword(stored, body.old_password))) throw fieldError('old_password', 'Old password is incorrect');
  if (body.new_password !== body.new_password_confirm) throw new AppError('bad_request', { errors: { non_field_errors: ["New passwords don't match"] } });
  const problems = await passwordProblems(body.new_password, user);
  if (problems.length) throw new AppError('bad_request', { errors: { new_password: problems } });
  // Changed meanwhile (another change or a reset): the old password checked above is no longer it.
  if (!(await repo.setPassword(ctx.database.db, user.id, stored!, await hashPassword(body.new_password), keepSid))) throw fieldError('old_password', 'Old password is incorrect');
}

// Password reset: a single-use token, valid for PASSWORD_RESET_TTL, mailed as a link to the
// storefront. Only its hash is stored (in the `session` store), and the request's answer never
// says whether the email has an account. The stored entry is bound to the password the account
// had when the link was made (an HMAC of its hash, keyed by the token, so the store alone cannot
// check it): once the password changes, by this link, a newer one or a password change, every
// older link is dead. A reset ends every session of the account.

const resetKey = (token: string) => `password_reset:${createHash('sha256').update(token).digest('base64url')}`;
const passwordFingerprint = (token: string, passwordHash: string) => createHmac('sha256', token).update(passwordHash).digest('base64url');

function sameFingerprint(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Makes a reset token for the active account with this email (in the job that mails it, so the
 * token itself is never stored anywhere but in the email). Undefined when there is no such account.
 */
export async function makePasswordResetToken(db: Database['db'], store: KeyValueStore, email: string, ttlSeconds: number): Promise<{ user: repo.UserRow; token: string } | undefined> {
  const user = await repo.findLoginByEmail(db, email.trim());
  if (!user || !user.is_active) return undefined;
  const token = randomBytes(32).toString('base64url');
  await store.set(resetKey(token), JSON.stringify({ u: user.id, f: passwordFingerprint(token, user.password) }), ttlSeconds);
  const { password: _hash, ...row } = user;
  return { user: row, token };
}

export async function finishPasswordReset(ctx: Ctx, store: KeyValueStore, body: PasswordResetConfirmBody): Promise<void> {
  const invalid = () => fieldError('token', 'Invalid or expired token');
  const key = resetKey(body.token);
  const held = await store.get(key);
  let link: { u?: unknown; f?: unknown } = {};
  try {
    link = held ? (JSON.parse(held) as typeof link) : {};
  } catch {
    // not ours: refused below
  }
  const login = typeof link.u === 'number' ? await repo.findLoginById(ctx.database.db, link.u) : undefined;
  // An entry from before links were bound to the password (a bare user id) is refused too: it
  // cannot say which password it was for. Links last PASSWORD_RESET_TTL, so those are soon gone.
  if (!login || !login.is_active || typeof link.f !== 'string' || !sameFingerprint(link.f, passwordFingerprint(body.token, login.password))) throw invalid();
  const { password: current, ...user } = login;
  if (body.new_password !== body.new_password_confirm) throw new AppError('bad_request', { errors: { non_field_errors: ["New passwords don't match"] } });
  const problems = await passwordProblems(body.new_password, user);
  if (problems.length) throw new AppError('bad_request', { errors: { new_password: problems } });
  // Single use, also when two requests bring the token at once: the first to mark it wins.
  if (!(await store.add(`${key}:used`, '1', 3600))) throw invalid();
  await store.delete(key);
  // Two different links used at once: only the first to replace the password they were made for wins.
  if (!(await repo.setPassword(ctx.database.db, user.id, current, await hashPassword(body.new_password)))) throw invalid();
}

// Addresses: a user sees and changes only their own; another's id is simply not found.

export async function listAddresses(ctx: Ctx, userId: number, page: PageQuery): Promise<PageResult<Address>> {
  return paginate(
    page,
    () => repo.countAddresses(ctx.database.db, userId),
    async (limit, offset) => (await repo.listAddresses(ctx.database.db, userId, limit, offset)).map(toAddress),
  );
}

export async function getAddress(ctx: Ctx, userId: number, id: number): Promise<Address> {
  const row = await repo.findAddress(ctx.database.db, userId, id);
  if (!row) throw new AppError('not_found');
  return toAddress(row);
}

function addressFields(input: AddressInput): Partial<repo.AddressFields> {
  const out: Partial<repo.AddressFields> = {};
  if (input.address_type !== undefined) out.address_type = input.address_type as repo.AddressRow['address_type'];
  for (const k of ['street_address', 'apartment', 'city', 'state', 'postal_code', 'country'] as const) {
    const v = input[k];
    if (v !== undefined) out[k] = v.trim();
  }
  if (input.is_default !== undefined) out.is_default = input.is_default;
  return out;
}

/** One default per type: making an address the default takes the flag from the user's other one. */
export async function createAddress(ctx: Ctx, userId: number, input: AddressInput): Promise<Address> {
  const fields = { apartment: '', is_default: false, ...addressFields(input) } as repo.AddressFields;
  const row = await ctx.database.db.transaction().execute(async (trx) => {
    await repo.lockUser(trx, userId);
    if (fields.is_default) await repo.clearDefault(trx, userId, fields.address_type);
    return repo.insertAddress(trx, userId, fields);
  });
  return toAddress(row);
}

export async function updateAddress(ctx: Ctx, userId: number, id: number, input: AddressInput): Promise<Address> {
  const fields = addressFields(input);
  const row = await ctx.database.db.transaction().execute(async (trx) => {
    await repo.lockUser(trx, userId);
    const current = await repo.findAddress(trx, userId, id);
    if (!current) return undefined;
    const type = fields.address_type ?? current.address_type;
    const isDefault = fields.is_default ?? current.is_default;
    if (isDefault) await repo.clearDefault(trx, userId, type, id);
    return repo.updateAddress(trx, userId, id, fields);
  });
  if (!row) throw new AppError('not_found');
  return toAddress(row);
}

export async function deleteAddress(ctx: Ctx, userId: number, id: number): Promise<void> {
  if (!(await repo.deleteAddress(ctx.database.db, userId, id))) throw new AppError('not_found');
}

// Newsletter: by email, with or without an account. Errors are the contract's ad-hoc shape.

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Anyone may unsubscribe an address (an unsubscribe must always work). Subscribing records the
 * address; it turns on an account's own flag only when that account's holder is the caller, so no
 * one can sign someone else's account up.
 */
export async function setNewsletter(ctx: Ctx, rawEmail: string | undefined, subscribed: boolean, caller: repo.UserRow | null): Promise<void> {
  const email = rawEmail?.trim();
  if (!email) throw new AppError('bad_request', { body: { error: 'Email is required' } });
  if (!EMAIL.test(email) || email.length > 254) throw new AppError('bad_request', { body: { error: 'Enter a valid email address.' } });
  const normal = normaliseEmail(email);
  const account = !subscribed || caller?.email === normal;
  await ctx.database.db.transaction().execute((trx) => repo.setNewsletter(trx, normal, subscribed, account));
}

/** A staff account for the CLI and STAFF_EMAIL (no request, so no ctx). */
export async function createStaff(database: Database, email: string, password: string): Promise<{ created: boolean; user: repo.UserRow }> {
  const normal = normaliseEmail(email);
  const existing = await repo.findLoginByEmail(database.db, normal);
  if (existing) {
    const { password: _hash, ...user } = existing;
    return { created: false, user };
  }
  const problems = await passwordProblems(password, { email: normal });
  if (problems.length) throw new Error(`staff password rejected: ${problems.join(' ')}`);
  const local = normal.split('@')[0]!.replace(/[^\w.@+-]/g, '').slice(0, 100) || 'staff';
  let username = local;
  for (let i = 2; await repo.usernameTaken(database.db, username); i++) username = `${local}${i}`;
  try {
    const user = await repo.insertUser(database.db, { email: normal, username, first_name: 'Staff', last_name: '', password: await hashPassword(password), is_staff: true });
    return { created: true, user };
  } catch (err) {
    // Another instance created it at the same moment: theirs stands, never overwritten.
    const again = (err as { code?: string }).code === '23505' ? await repo.findLoginByEmail(database.db, normal) : undefined;
    if (!again) throw err;
    const { password: _hash, ...user } = again;
    return { created: false, user };
  }
}
