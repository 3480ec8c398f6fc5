// Who is calling: the Bearer token (checked on every route, public ones included, as DRF does,
// except the token endpoints, which answer on their body alone) and the helpers routes use to
// require a user or staff. The user row is loaded once per request, from the primary, and only by
// routes that need it; a token whose session signed in before the account's credentials changed
// (password changed or reset, account disabled) is refused there.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ctxOf } from '../../infra/http/context.ts';
import { markPrivate } from '../../infra/http/hooks.ts';
import { AppError } from '../../infra/http/errors.ts';
import { findUserForToken, type UserRow } from './accounts.repository.ts';
import { TokenError, type TokenClaims, type TokenService } from './tokens.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A token endpoint (sign-in, sign-up, refresh, logout, password reset): it answers on its body
     * alone and never reads the Authorization header, so a stale Bearer the client still sends is
     * not a 401 there, and the caller is anonymous for the limits. See `bodyCredentials`.
     */
    ignoreBearer?: boolean;
  }
  interface FastifyInstance {
    tokens: TokenService;
  }
  interface FastifyRequest {
    /** Claims of a valid access token, or null for an anonymous caller. */
    auth: TokenClaims | null;
    /** The loaded user (see currentUser); undefined until asked for. */
    authUser: UserRow | null | undefined;
  }
}

const CHALLENGE = { 'www-authenticate': 'Bearer realm="api"' };

/** 401 with the challenge header DRF sends; `token_not_valid` when a token was given but refused. */
export function unauthenticated(code: 'not_authenticated' | 'token_not_valid' = 'not_authenticated', message?: string): AppError {
  return new AppError(code, { ...(message ? { message } : {}), headers: CHALLENGE });
}

/** Route config of a token endpoint (see `ignoreBearer`). */
export const bodyCredentials = { ignoreBearer: true } as const;

export function registerAuth(app: FastifyInstance, tokens: TokenService): void {
  // REFRESH_REUSE_DETECTION and its grace, unless the service was made with a policy of its own.
  const { refreshReuseDetection, refreshReuseGrace } = app.config.auth;
  tokens.configureReuse({ detect: refreshReuseDetection, graceSeconds: refreshReuseGrace });
  app.decorate('tokens', tokens);
  app.decorateRequest('auth', null);
  app.decorateRequest('authUser', undefined);
  // Callback style: most requests carry no token, and they pass without a promise or a tick.
  app.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers.authorization;
    // The route's config is read only when a header came: verifying the token costs far more.
    if (!header || request.is404 || request.routeOptions.config.ignoreBearer) return done();
    const parts = header.trim().split(/\s+/);
    // Other schemes (Basic…) are not ours to judge: the caller is anonymous, as in DRF.
    if (parts[0]?.toLowerCase() !== 'bearer') return done();
    if (parts.length !== 2) return done(unauthenticated('token_not_valid', 'Authorization header must contain two space-delimited values'));
    tokens.verify(parts[1]!, 'access').then(
      (claims) => {
        request.auth = claims;
        done();
      },
      (err: unknown) => done(err instanceof TokenError ? unauthenticated('token_not_valid') : (err as Error)),
    );
  });
}

/**
 * The calling user, or null when anonymous. A token for a deleted or disabled account, or of a
 * session that signed in before the password last changed (other than the session that changed
 * it), is a 401.
 */
export async function currentUser(request: FastifyRequest): Promise<UserRow | null> {
  if (request.authUser !== undefined) return request.authUser;
  if (!request.auth) return (request.authUser = null);
  // Through the request's context, so the statement is in its tally (the slow-request log).
  const found = await findUserForToken(ctxOf(request).database.db, request.auth.user_id);
  if (!found) throw unauthenticated('token_not_valid', 'User not found');
  const { tokens_valid_after_ms: _validAfter, tokens_kept_sid: _keptSid, ...user } = found;
  if (!user.is_active) throw unauthenticated('token_not_valid', 'User is inactive');
  if (!request.server.tokens.current(request.auth, found)) throw unauthenticated('token_not_valid');
  return (request.authUser = user);
}

/** 401 unless a user is signed in. */
export async function requireUser(request: FastifyRequest): Promise<UserRow> {
  const user = await currentUser(request);
  if (!user) throw unauthenticated();
  return user;
}

/** 401 when anonymous, 403 for a signed-in customer. */
export async function requireStaff(request: FastifyRequest): Promise<UserRow> {
  const user = await requireUser(request);
  if (!user.is_staff) throw new AppError('permission_denied');
  return user;
}

/**
 * Route `onRequest` hooks: who may call is checked before the body is even parsed, as DRF checks
 * permissions first (a caller who may not write learns nothing about the body, and gets the 401
 * the storefront refreshes on). Their answers are personal, so never cached by anyone else.
 */
export async function signedInOnly(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  markPrivate(reply);
  await requireUser(request);
}

export async function staffOnly(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  markPrivate(reply);
  await requireStaff(request);
}
