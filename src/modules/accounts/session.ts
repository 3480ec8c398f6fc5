// Guest identity (API-CONTRACT.md §1.4, §4.12): the `sessionid` cookie, 32 characters [a-z0-9],
// backed by an entry in the `session` store with a sliding TTL (SESSION_TTL, 14 days). Sessions
// are made only when a guest first needs one (cart, wishlist), never for catalog reads, so
// public responses stay cookie-free and cacheable.
import { randomBytes } from 'node:crypto';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { KeyValueStore } from '../../infra/cache/store.ts';
import { currentUser } from './auth.ts';

declare module 'fastify' {
  interface FastifyInstance {
    sessions: GuestSessions;
  }
}

export const SESSION_COOKIE = 'sessionid';
const SESSION_KEY = /^[a-z0-9]{32}$/;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** 32 characters from [a-z0-9], uniformly (rejection sampling keeps the bias out). */
export function newSessionKey(): string {
  let key = '';
  while (key.length < 32) {
    for (const byte of randomBytes(48)) {
      if (byte < 252 && key.length < 32) key += ALPHABET[byte % 36];
    }
  }
  return key;
}

interface SessionValue {
  /** Created, seconds since the epoch. */
  c: number;
  /** Last renewed, seconds since the epoch. */
  r: number;
}

export class GuestSessions {
  // Renewing on every request would be a store write per request; once a day keeps the
  // sliding window within a day of exact.
  private readonly renewAfter: number;

  constructor(
    readonly store: KeyValueStore,
    readonly ttlSeconds: number,
  ) {
    this.renewAfter = Math.min(86_400, Math.floor(ttlSeconds / 14));
  }

  // Cookies are read and written only here, when a guest needs a session; no hook parses them
  // on every request.
  private cookie(request: FastifyRequest, reply: FastifyReply, key: string): void {
    reply.header('set-cookie', stringifySetCookie({ name: SESSION_COOKIE, value: key, httpOnly: true, path: '/', sameSite: 'lax', maxAge: this.ttlSeconds, secure: request.protocol === 'https' }));
  }

  /** The caller's live session key, or null. Renews the session when it is due. */
  async current(request: FastifyRequest, reply: FastifyReply): Promise<string | null> {
    const header = request.headers.cookie;
    const key = header ? parseCookie(header)[SESSION_COOKIE] : undefined;
    if (!key || !SESSION_KEY.test(key)) return null;
    const raw = await this.store.get(`session:${key}`);
    if (!raw) return null;
    const now = Math.floor(Date.now() / 1000);
    let value: SessionValue;
    try {
      value = JSON.parse(raw) as SessionValue;
    } catch {
      return null;
    }
    if (now - value.r >= this.renewAfter) {
      await this.store.set(`session:${key}`, JSON.stringify({ c: value.c, r: now }), this.ttlSeconds);
      this.cookie(request, reply, key);
    }
    return key;
  }

  /** The caller's session key, starting a session (and setting the cookie) when there is none. */
  async ensure(request: FastifyRequest, reply: FastifyReply): Promise<string> {
    const existing = await this.current(request, reply);
    if (existing) return existing;
    const key = newSessionKey();
    const now = Math.floor(Date.now() / 1000);
    await this.store.set(`session:${key}`, JSON.stringify({ c: now, r: now }), this.ttlSeconds);
    this.cookie(request, reply, key);
    return key;
  }

  /**
   * A new key for the caller after sign-in (Django's cycle_key): whoever planted or learned the
   * old cookie cannot follow the shopper past it. The old session ends.
   */
  async cycle(request: FastifyRequest, reply: FastifyReply, oldKey: string): Promise<string> {
    await this.store.delete(`session:${oldKey}`);
    const key = newSessionKey();
    const now = Math.floor(Date.now() / 1000);
    await this.store.set(`session:${key}`, JSON.stringify({ c: now, r: now }), this.ttlSeconds);
    this.cookie(request, reply, key);
    return key;
  }

  /** Whether a session key names a live session (for the explicit cart merge). */
  async exists(key: string): Promise<boolean> {
    return SESSION_KEY.test(key) && (await this.store.get(`session:${key}`)) !== null;
  }
}

/** Whose cart or wishlist a request works on: the signed-in user's, else the guest session's. */
export type Owner = { userId: number; sessionKey?: undefined } | { userId?: undefined; sessionKey: string };

/**
 * The request's owner. With `create`, a guest without a session gets one; without it, a guest
 * with no session has no owner (null) and reads see an empty cart.
 */
export async function ownerOf(request: FastifyRequest, reply: FastifyReply, create: boolean): Promise<Owner | null> {
  const user = await currentUser(request);
  if (user) return { userId: user.id };
  const sessions = request.server.sessions;
  const key = create ? await sessions.ensure(request, reply) : await sessions.current(request, reply);
  return key ? { sessionKey: key } : null;
}
