// Password hashing (argon2id) and the password rules Django's validators enforce, with their
// messages: minimum length, not a common password, not all digits, not too like the user's
// own name or email.
import { hash, verify, type Algorithm } from '@node-rs/argon2';

// OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~50 ms per hash on this machine kind.
// `Algorithm` is a const enum, which this build cannot read at run time: 2 is Argon2id.
const ARGON2 = { algorithm: 2 as Algorithm, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 128;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2);
}

// Compared against when there is no usable hash (unknown email, unusable password), so the
// answer takes as long as a real check and does not tell which emails have accounts.
let dummy: Promise<string> | undefined;

/** True when `password` matches `stored`. argon2's own comparison is constant-time. */
export async function verifyPassword(stored: string | null | undefined, password: string): Promise<boolean> {
  if (!stored || stored.startsWith('!')) {
    dummy ??= hashPassword('not a password of anyone');
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  return verify(stored, password).catch(() => false);
}

let common: Promise<Set<string>> | undefined;

/** 49k common passwords (zxcvbn's list), loaded on first use. */
function commonPasswords(): Promise<Set<string>> {
  common ??= import('@zxcvbn-ts/language-common').then((m) => new Set(m.dictionary['passwords-common'] as string[]));
  return common;
}

/**
 * Python's SequenceMatcher ratio (Ratcliff/Obershelp): twice the characters in matching blocks
 * over the total length. Written here because Django's similarity rule is defined by it and the
 * strings are short (the input is capped at 128 characters).
 */
export function similarity(a: string, b: string): number {
  const matches = (s: string, t: string): number => {
    if (!s || !t) return 0;
    let best = 0;
    let bi = 0;
    let bj = 0;
    for (let i = 0; i < s.length; i++) {
      for (let j = 0; j < t.length; j++) {
        let k = 0;
        while (i + k < s.length && j + k < t.length && s[i + k] === t[j + k]) k++;
        if (k > best) [best, bi, bj] = [k, i, j];
      }
    }
    if (best === 0) return 0;
    return best + matches(s.slice(0, bi), t.slice(0, bj)) + matches(s.slice(bi + best), t.slice(bj + best));
  };
  const total = a.length + b.length;
  return total === 0 ? 1 : (2 * matches(a, b)) / total;
}

export interface PasswordOwner {
  username?: string;
  first_name?: string;
  last_name?: string;
  email?: string;
}

const ATTRIBUTES: [keyof PasswordOwner, string][] = [
  ['username', 'username'],
  ['first_name', 'first name'],
  ['last_name', 'last name'],
  ['email', 'email address'],
];

/** Every rule the password breaks, in Django's words; empty when it is acceptable. */
export async function passwordProblems(password: string, owner: PasswordOwner = {}): Promise<string[]> {
  const problems: string[] = [];
  const lower = password.toLowerCase();
  for (const [field, label] of ATTRIBUTES) {
    const value = owner[field]?.toLowerCase();
    if (!value) continue;
    const parts = [value, ...value.split(/\W+/)].filter((p) => p.length >= 3);
    if (parts.some((p) => similarity(lower, p) >= 0.7)) {
      problems.push(`The password is too similar to the ${label}.`);
      break;
    }
  }
  if (password.length < MIN_PASSWORD_LENGTH) problems.push(`This password is too short. It must contain at least ${MIN_PASSWORD_LENGTH} characters.`);
  if ((await commonPasswords()).has(lower.trim())) problems.push('This password is too common.');
  if (/^\d+$/.test(password)) problems.push('This password is entirely numeric.');
  return problems;
}
