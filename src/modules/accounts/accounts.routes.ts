// /api/users/ (API-CONTRACT.md §2.1): sign-up, sign-in, token refresh and logout, profile,
// password, addresses, newsletter. Signing in (or up) merges the guest cart and wishlist (§4.12).
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ctxOf } from '../../infra/http/context.ts';
import { privateResponses } from '../../infra/http/hooks.ts';
import { AppError } from '../../infra/http/errors.ts';
import { pageBody } from '../../infra/http/pagination.ts';
import { ErrorBody, IdParams, MixedErrorBody, NoContent, ThrottledBody } from '../../infra/http/schema.ts';
import { rateLimit } from '../../infra/limits/plugin.ts';
import { mergeGuestCart } from '../cart/cart.service.ts';
import { mergeGuestWishlist } from '../wishlist/wishlist.service.ts';
import { findUserForToken } from './accounts.repository.ts';
import {
  Address,
  AddressBody,
  AddressPage,
  AddressPatch,
  LoginBody,
  Message,
  NewsletterBody,
  PageQuery,
  PasswordChangeBody,
  PasswordResetBody,
  PasswordResetConfirmBody,
  ProfilePatch,
  ProfilePut,
  RefreshBody,
  RefreshReply,
  RegisterBody,
  RegisterReply,
  TokenPair,
  User,
} from './accounts.schemas.ts';
import { toUser } from './accounts.mapper.ts';
import * as accounts from './accounts.service.ts';
import { bodyCredentials, currentUser, requireUser, signedInOnly } from './auth.ts';
import { TokenError, type TokenProblem } from './tokens.ts';

const tags = ['accounts'];
const security = [{ bearerAuth: [] }];

const REFRESH_REFUSED: Record<TokenProblem, string> = {
  invalid: 'Token is invalid or expired',
  wrong_type: 'Token has wrong type',
  revoked: 'Token is blacklisted',
};

function refused(err: unknown): never {
  if (err instanceof TokenError) throw new AppError('token_not_valid', { message: REFRESH_REFUSED[err.problem] });
  throw err;
}

/**
 * After sign-in: the guest's cart and wishlist (from the sessionid cookie) join the user's, and
 * the guest session is replaced by a fresh one.
 */
async function adoptGuest(request: FastifyRequest, reply: FastifyReply, userId: number): Promise<void> {
  const sessions = request.server.sessions;
  const key = await sessions.current(request, reply);
  if (!key) return;
  const ctx = ctxOf(request);
  await mergeGuestCart(ctx, key, userId);
  await mergeGuestWishlist(ctx, key, userId);
  await sessions.cycle(request, reply, key);
}

export const accountRoutes: FastifyPluginAsyncTypebox = async (app) => {
  privateResponses(app);
  app.post('/api/users/auth/login/', {
    schema: { tags, summary: 'Sign in with email and password: a JWT pair', body: LoginBody, response: { 200: TokenPair, 400: ErrorBody, 401: ErrorBody, 429: ThrottledBody } },
    config: { ...bodyCredentials, ...rateLimit('login', '10/hour', { anonymous: true }) },
    handler: async (request, reply) => {
      const { email, password } = request.body;
      // Failed sign-ins back off exponentially per account and address together, per address, and
      // past a far higher ceiling per account (see Limits.loginAttempt): a stranger cannot lock it.
      // The attempt is counted before the password is checked, so a burst cannot outrun the wait.
      const limits = request.limitsExempt ? undefined : app.limits;
      const attempt = await limits?.loginAttempt(request.clientIp, email);
      if (attempt && attempt.wait > 0) {
        const wait = attempt.wait;
        const message = `Too many failed sign-in attempts. Expected available in ${wait} seconds.`;
        throw new AppError('throttled', { message, headers: { 'retry-after': String(wait) }, body: { error: true, message, status_code: 429, code: 'throttled', limit: 'login_failures', retry_after: wait } });
      }
      let user;
      try {
        user = await accounts.authenticate(ctxOf(request), email, password);
      } catch (err) {
        if (attempt) await (err instanceof AppError && err.code === 'authentication_failed' ? limits!.loginFailed(attempt) : limits!.loginAbandoned(attempt));
        throw err;
      }
      if (attempt) await limits!.loginSucceeded(attempt);
      await adoptGuest(request, reply, user.id);
      return app.tokens.issue(user, undefined, user.signedInAt);
    },
  });

  app.post('/api/users/auth/refresh/', {
    schema: { tags, summary: 'A new pair of the same session (the refresh token keeps working until its session ends)', body: RefreshBody, response: { 200: RefreshReply, 400: ErrorBody, 401: ErrorBody } },
    config: bodyCredentials,
    handler: async (request) => {
      const claims = await app.tokens.rotate(request.body.refresh).catch(refused);
      const user = await findUserForToken(ctxOf(request).database.db, claims.user_id);
      if (!user?.is_active) throw new AppError('authentication_failed', { message: 'No active account found for the given token.' });
      // Signed in before the password changed or was reset, or the account was disabled.
      if (!app.tokens.current(claims, user)) refused(new TokenError('revoked'));
      return app.tokens.issue(user, app.tokens.sessionOf(claims));
    },
  });

  app.post('/api/users/auth/logout/', {
    schema: { tags, summary: 'End the session of a refresh token: it and every token rotated from its sign-in (idempotent)', body: RefreshBody, response: { 200: Message, 400: ErrorBody, 401: ErrorBody } },
    config: bodyCredentials,
    handler: async (request) => {
      const claims = await app.tokens.verify(request.body.refresh, 'refresh').catch(refused);
      await app.tokens.endSession(claims);
      return { message: 'Successfully logged out' };
    },
  });

  app.post('/api/users/auth/register/', {
    schema: { tags, summary: 'Create a customer account; answers with the user and a JWT pair', body: RegisterBody, response: { 201: RegisterReply, 400: ErrorBody, 429: ThrottledBody } },
    config: { ...bodyCredentials, ...rateLimit('register', '5/hour', { anonymous: true, perEmail: true }) },
    handler: async (request, reply) => {
      const user = await accounts.register(ctxOf(request), request.body);
      await adoptGuest(request, reply, user.id);
      reply.code(201);
      return { message: 'User created successfully', user: toUser(user), tokens: await app.tokens.issue(user) };
    },
  });

  app.get('/api/users/profile/', {
    schema: { tags, security, summary: 'The signed-in user', response: { 200: User, 401: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => toUser(await requireUser(request)),
  });

  app.put('/api/users/profile/', {
    schema: { tags, security, summary: 'Replace the profile (email is read-only)', body: ProfilePut, response: { 200: User, 400: ErrorBody, 401: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => accounts.updateProfile(ctxOf(request), await requireUser(request), request.body),
  });

  app.patch('/api/users/profile/', {
    schema: { tags, security, summary: 'Change some profile fields (email is read-only)', body: ProfilePatch, response: { 200: User, 400: ErrorBody, 401: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => accounts.updateProfile(ctxOf(request), await requireUser(request), request.body),
  });

  for (const method of ['put', 'patch'] as const) {
    app[method]('/api/users/password/change/', {
      schema: { tags, security, summary: "Change the password: every other session ends; the caller's goes on", body: PasswordChangeBody, response: { 200: Message, 400: ErrorBody, 401: ErrorBody, 429: ThrottledBody } },
      config: rateLimit('password_change', '5/hour'),
      onRequest: signedInOnly,
      handler: async (request) => {
        await accounts.changePassword(ctxOf(request), await requireUser(request), request.body, request.auth!.sid);
        return { message: 'Password updated successfully' };
      },
    });
  }

  // Reset by email: the same answer whether or not the address has an account.
  app.post('/api/users/password/reset/', {
    schema: { tags, summary: 'Email a password reset link (the answer is the same for any address)', body: PasswordResetBody, response: { 200: Message, 400: ErrorBody, 429: ThrottledBody } },
    // Per email silently: past the email's window (which anyone can spend) the answer is the same
    // and nothing more is mailed; the owner still has the links mailed in that window.
    config: { ...bodyCredentials, ...rateLimit('password_reset', '5/hour', { anonymous: true, perEmail: 'silent' }) },
    handler: async (request) => {
      // Always a job, whether or not the address has an account: the answer and its timing
      // tell nothing, and the token is made (and only its hash stored) by the job that mails it.
      if (!request.emailThrottled) await app.jobs.add('send_password_reset', { email: request.body.email.trim().toLowerCase(), ref: randomUUID() });
      return { message: 'If an account exists for this email, a reset link has been sent.' };
    },
  });

  app.post('/api/users/password/reset/confirm/', {
    schema: { tags, summary: 'Set a new password with the token from the reset email (single use; every session ends)', body: PasswordResetConfirmBody, response: { 200: Message, 400: ErrorBody, 429: ThrottledBody } },
    config: { ...bodyCredentials, ...rateLimit('password_reset', '5/hour', { anonymous: true }) },
    handler: async (request) => {
      await accounts.finishPasswordReset(ctxOf(request), app.sessions.store, request.body);
      return { message: 'Password has been reset' };
    },
  });

  app.get('/api/users/addresses/', {
    schema: { tags, security, summary: "The signed-in user's addresses", querystring: PageQuery, response: { 200: AddressPage, 401: ErrorBody, 404: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => {
      const user = await requireUser(request);
      return pageBody(request, await accounts.listAddresses(ctxOf(request), user.id, request.query));
    },
  });

  app.post('/api/users/addresses/', {
    schema: { tags, security, summary: 'Add an address; is_default takes the default flag from the previous one of its type', body: AddressBody, response: { 201: Address, 400: ErrorBody, 401: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request, reply) => {
      const user = await requireUser(request);
      reply.code(201);
      return accounts.createAddress(ctxOf(request), user.id, request.body);
    },
  });

  app.get('/api/users/addresses/:id/', {
    schema: { tags, security, summary: 'One of your addresses', params: IdParams, response: { 200: Address, 401: ErrorBody, 404: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => accounts.getAddress(ctxOf(request), (await requireUser(request)).id, request.params.id),
  });

  app.put('/api/users/addresses/:id/', {
    schema: { tags, security, summary: 'Replace one of your addresses', params: IdParams, body: AddressBody, response: { 200: Address, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => accounts.updateAddress(ctxOf(request), (await requireUser(request)).id, request.params.id, request.body),
  });

  app.patch('/api/users/addresses/:id/', {
    schema: { tags, security, summary: 'Change one of your addresses', params: IdParams, body: AddressPatch, response: { 200: Address, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => accounts.updateAddress(ctxOf(request), (await requireUser(request)).id, request.params.id, request.body),
  });

  app.delete('/api/users/addresses/:id/', {
    schema: { tags, security, summary: 'Delete one of your addresses', params: IdParams, response: { 204: NoContent, 401: ErrorBody, 404: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request, reply) => {
      await accounts.deleteAddress(ctxOf(request), (await requireUser(request)).id, request.params.id);
      return reply.code(204).send(null);
    },
  });

  app.post('/api/users/newsletter/subscribe/', {
    schema: { tags, summary: 'Subscribe an email to the newsletter', body: NewsletterBody, response: { 200: Message, 400: MixedErrorBody('{"error":"Email is required"}') } },
    handler: async (request) => {
      await accounts.setNewsletter(ctxOf(request), request.body?.email, true, await currentUser(request));
      return { message: 'Successfully subscribed to newsletter' };
    },
  });

  app.post('/api/users/newsletter/unsubscribe/', {
    schema: { tags, summary: 'Unsubscribe an email from the newsletter', body: NewsletterBody, response: { 200: Message, 400: MixedErrorBody('{"error":"Email is required"}') } },
    handler: async (request) => {
      await accounts.setNewsletter(ctxOf(request), request.body?.email, false, await currentUser(request));
      return { message: 'Successfully unsubscribed from newsletter' };
    },
  });
};
