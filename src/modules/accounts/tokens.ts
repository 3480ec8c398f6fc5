// JWT access and refresh tokens as SimpleJWT makes them (API-CONTRACT.md §1.3): HS256 signed with
// SECRET_KEY, payload {token_type, exp, iat, jti, user_id}, plus the sign-in session they belong to
// (`sid`, and `sat`, when it signed in, in ms).
//
// Sessions (issue 20). A sign-in starts a session; every refresh returns a new pair of the same
// session, whose refresh token keeps the sign-in's `exp`: no rotated token outlives the sign-in
// (REFRESH_TOKEN_TTL is an absolute lifetime). By default a refresh token keeps working until its
// session ends, as the original did and the storefront relies on (it keeps only the refresh token
// from sign-in and refreshes with it, several requests at once). A session ends:
// - at its expiry;
// - on logout (one key in the `session` store, read on every refresh, so every instance sees it);
// - when the password changes or is reset, or the account is disabled: the user row's
//   tokens_valid_after, compared with `sat` (the session that changed the password is carried
//   past it: the row's tokens_kept_sid; see `current`);
// - with REFRESH_REUSE_DETECTION, when one of its refresh tokens is used again more than
//   REFRESH_REUSE_GRACE after its first use (parallel refreshes inside the grace all succeed).
// Refreshing in the default mode writes nothing: only a logout or a reuse past the grace does.
import { randomBytes } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { KeyValueStore } from '../../infra/cache/store.ts';

export type TokenType = 'access' | 'refresh';

export interface TokenClaims {
  token_type: TokenType;
  exp: number;
  iat: number;
  jti: string;
  user_id: number;
  /** Staff status when the token was issued: picks the staff rate-limit tier (permissions read the database). */
  is_staff?: boolean;
  /** The sign-in session: its id (a token from before sessions: its own jti). */
  sid: string;
  /** When the session signed in, ms since the epoch (older tokens: their iat). */
  sat: number;
  /** Whether the token came without a session (issued before sessions existed). */
  legacy?: true;
}

/** Whom a token pair is for. */
export interface TokenSubject {
  id: number;
  is_staff: boolean;
}

export interface TokenPair {
  access: string;
  refresh: string;
}

/** A sign-in session, as the tokens carry it. */
export interface Session {
  sid: string;
  /** Signed in at, ms since the epoch. */
  sat: number;
  /** The session's end (the sign-in refresh token's exp), seconds since the epoch. */
  exp: number;
}

/** Why a token was refused, in SimpleJWT's words. */
export type TokenProblem = 'invalid' | 'wrong_type' | 'revoked';

export class TokenError extends Error {
  constructor(readonly problem: TokenProblem) {
    super(problem);
    this.name = 'TokenError';
  }
}

export interface ReusePolicy {
  /** Revoke a session whose refresh token is used again after `graceSeconds`. */
  detect: boolean;
  graceSeconds: number;
}

export interface TokenOptions {
  secret: string;
  accessTtl: number;
  refreshTtl: number;
  /** Holds ended sessions (and, in strict mode, first uses of refresh tokens) until they expire. */
  store: KeyValueStore;
  /** Default: reuse allowed (the contract's behaviour). */
  reuse?: ReusePolicy;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const revokedKey = (sid: string) => `auth_session:${sid}:revoked`;
const usedKey = (jti: string) => `refresh_used:${jti}`;
const graceKey = (jti: string) => `refresh_used:${jti}:grace`;

export class TokenService {
  private readonly key: Uint8Array;
  private reuse: ReusePolicy;

  constructor(private readonly opts: TokenOptions) {
    this.key = new TextEncoder().encode(opts.secret);
    this.reuse = opts.reuse ?? { detect: false, graceSeconds: 10 };
  }

  /** The configured reuse policy, for a service made without one of its own (see registerAuth). */
  configureReuse(policy: ReusePolicy): void {
    if (!this.opts.reuse) this.reuse = policy;
  }

  private sign(type: TokenType, user: TokenSubject, exp: number, session: Session): Promise<string> {
    const now = nowSeconds();
    return new SignJWT({ token_type: type, exp, iat: now, jti: randomBytes(16).toString('hex'), user_id: user.id, ...(user.is_staff ? { is_staff: true } : {}), sid: session.sid, sat: session.sat })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(this.key);
  }

  /**
   * A new pair: for a new session (a sign-in, which started at `signedInAt`, ms, by default now)
   * or, with `session`, the next pair of that session. Neither token outlives the session.
   */
  async issue(user: TokenSubject, session?: Session, signedInAt?: number): Promise<TokenPair> {
    const now = nowSeconds();
    const s = session ?? { sid: randomBytes(16).toString('hex'), sat: signedInAt ?? Date.now(), exp: now + this.opts.refreshTtl };
    const [access, refresh] = await Promise.all([this.sign('access', user, Math.min(now + this.opts.accessTtl, s.exp), s), this.sign('refresh', user, s.exp, s)]);
    return { access, refresh };
  }

  /** Verifies signature, algorithm (HS256 only: never `none`), expiry and type. */
  async verify(token: string, type: TokenType): Promise<TokenClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], requiredClaims: ['exp', 'jti'] }));
    } catch (err) {
      if (err instanceof joseErrors.JOSEError || err instanceof TypeError) throw new TokenError('invalid');
      throw err;
    }
    const { token_type, user_id, jti, exp, iat, is_staff, sid, sat } = payload;
    if (typeof user_id !== 'number' || !Number.isSafeInteger(user_id) || typeof jti !== 'string' || typeof exp !== 'number') throw new TokenError('invalid');
    if (token_type !== type) throw new TokenError('wrong_type');
    const issuedAt = typeof iat === 'number' ? iat : 0;
    const hasSession = typeof sid === 'string' && /^[0-9a-f]{32}$/.test(sid) && typeof sat === 'number' && Number.isFinite(sat);
    return {
      token_type: type,
      exp,
      iat: issuedAt,
      jti,
      user_id,
      ...(is_staff === true ? { is_staff: true } : {}),
      ...(hasSession ? { sid, sat } : { sid: jti, sat: issuedAt * 1000, legacy: true as const }),
    };
  }

  /** The session a verified token belongs to. */
  sessionOf(claims: TokenClaims): Session {
    return { sid: claims.sid, sat: claims.sat, exp: claims.exp };
  }

  /** Ends a session (logout): every refresh token of it is refused from now on, on every instance. */
  async endSession(claims: TokenClaims): Promise<void> {
    const ttl = Math.max(1, claims.exp - nowSeconds());
    await this.opts.store.set(revokedKey(claims.sid), '1', ttl);
  }

  private async ended(claims: TokenClaims): Promise<boolean> {
    const store = this.opts.store;
    // A token from before sessions was revoked by its own id (the older `revoked:<jti>` key).
    const [ended, legacy] = await Promise.all([store.get(revokedKey(claims.sid)), claims.legacy ? store.get(`revoked:${claims.jti}`) : null]);
    return ended !== null || legacy !== null;
  }

  /**
   * Refresh, first half: the refresh token is verified and its session checked (not ended; in
   * strict mode, not reused past the grace, which ends the session). The caller checks the account
   * (`current`) and issues the next pair of the session.
   */
  async rotate(refreshToken: string): Promise<TokenClaims> {
    const claims = await this.verify(refreshToken, 'refresh');
    if (await this.ended(claims)) throw new TokenError('revoked');
    if (this.reuse.detect) {
      // The grace is a key of the shared store that expires with it: no instance's clock is
      // compared with another's (a clock some seconds fast took a parallel refresh for a reuse
      // past the grace and ended the session). The first use of a token in a grace window
      // takes the window; only a use that opens a new window after an earlier one is a reuse.
      const store = this.opts.store;
      const ttl = Math.max(1, claims.exp - nowSeconds());
      const grace = Math.min(ttl, Math.floor(this.reuse.graceSeconds));
      const opensWindow = grace <= 0 || (await store.add(graceKey(claims.jti), '1', grace));
      if (opensWindow && !(await store.add(usedKey(claims.jti), '1', ttl))) {
        await this.endSession(claims);
        throw new TokenError('revoked');
      }
    }
    return claims;
  }

  /**
   * Whether a token's session is still good for the account's credentials: it signed in after
   * they last changed (`tokens_valid_after_ms`, the user row's tokens_valid_after), or it is the
   * session that changed the password (`tokens_kept_sid`). Reads nothing: the caller has the row.
   */
  current(claims: TokenClaims, credentials: { tokens_valid_after_ms: number | null; tokens_kept_sid: string | null }): boolean {
    const validAfter = credentials.tokens_valid_after_ms;
    return validAfter === null || claims.sat >= validAfter || (credentials.tokens_kept_sid !== null && claims.sid === credentials.tokens_kept_sid);
  }
}
