// JWT access and refresh tokens as SimpleJWT makes them (API-CONTRACT.md §1.3): HS256 signed with
// SECRET_KEY, payload {token_type, exp, iat, jti, user_id}. Refresh tokens rotate; a used or
// logged-out refresh token is revoked in the `session` store until it would have expired.
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

/** Why a token was refused, in SimpleJWT's words. */
export type TokenProblem = 'invalid' | 'wrong_type' | 'revoked';

export class TokenError extends Error {
  constructor(readonly problem: TokenProblem) {
    super(problem);
    this.name = 'TokenError';
  }
}

export interface TokenOptions {
  secret: string;
  accessTtl: number;
  refreshTtl: number;
  /** Holds revoked refresh token ids until they expire. */
  store: KeyValueStore;
}

export class TokenService {
  private readonly key: Uint8Array;

  constructor(private readonly opts: TokenOptions) {
    this.key = new TextEncoder().encode(opts.secret);
  }

  private sign(type: TokenType, user: TokenSubject, ttl: number): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ token_type: type, exp: now + ttl, iat: now, jti: randomBytes(16).toString('hex'), user_id: user.id, ...(user.is_staff ? { is_staff: true } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(this.key);
  }

  async issue(user: TokenSubject): Promise<TokenPair> {
    const [access, refresh] = await Promise.all([this.sign('access', user, this.opts.accessTtl), this.sign('refresh', user, this.opts.refreshTtl)]);
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
    const { token_type, user_id, jti, exp, iat, is_staff } = payload;
    if (typeof user_id !== 'number' || !Number.isSafeInteger(user_id) || typeof jti !== 'string' || typeof exp !== 'number') throw new TokenError('invalid');
    if (token_type !== type) throw new TokenError('wrong_type');
    return { token_type: type, exp, iat: typeof iat === 'number' ? iat : 0, jti, user_id, ...(is_staff === true ? { is_staff: true } : {}) };
  }

  /**
   * Revokes a verified refresh token until its expiry. Returns false when it was already revoked:
   * of two concurrent uses of one token, exactly one gets true.
   */
  revoke(claims: TokenClaims): Promise<boolean> {
    const ttl = Math.max(1, claims.exp - Math.floor(Date.now() / 1000));
    return this.opts.store.add(`revoked:${claims.jti}`, '1', ttl);
  }

  /** Rotation, first half: the refresh token is verified and revoked (once); the caller issues the new pair. */
  async rotate(refreshToken: string): Promise<TokenClaims> {
    const claims = await this.verify(refreshToken, 'refresh');
    if (!(await this.revoke(claims))) throw new TokenError('revoked');
    return claims;
  }
}
