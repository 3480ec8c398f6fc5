// Limits on the request path (DESIGN.md): IP resolution and the block check before anything else,
// then — once the Bearer token says who is calling — the windows that apply, all in `onRequest`
// and so before the response cache, which a limited caller never reaches.
//
// Every limited response carries the draft IETF headers (RateLimit-Limit, -Remaining, -Reset and
// -Policy) for the window closest to running out; a 429 names the window and when it resets.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, RouteOptions } from 'fastify';
import { formatRate, parseRate } from '../../config.ts';
import { AppError, wrappedBody } from '../http/errors.ts';
import { IpRanges, normalIp } from './ip.ts';
import type { BlockEntry } from './blocks.ts';
import type { Limits, RouteLimit, Verdict } from './limits.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A per-route limit (`rateLimit(name, rate)`), or false for routes exempt from limits. */
    rateLimit?: RouteLimit | false;
  }
  interface FastifyInstance {
    /** Sent as `x-pasargad-internal` by the server's own requests (cache warming): never limited. */
    readonly internalToken: string;
  }
  interface FastifyRequest {
    /** The normalised client address the limits and blocks use. */
    clientIp: string;
    limitsExempt: boolean;
    /** The route's own limit, read once by the IP guard for the limits hook. */
    routeLimit: RouteLimit | undefined;
  }
}

/** The seed's `@rate_limit('checkout', limit=10, period=3600)`, as route config: `rateLimit('checkout', '10/hour')`. RATE_LIMIT_ROUTES overrides by name. */
export function rateLimit(name: string, rate: string): { rateLimit: RouteLimit } {
  return { rateLimit: { name, rate: parseRate(rate) } };
}

/** Route config for what is never limited: health checks, static assets. */
export const unlimited = { rateLimit: false } as const;

const INTERNAL_HEADER = 'x-pasargad-internal';

export function blockedError(block: BlockEntry): AppError {
  const seconds = Math.max(1, Math.ceil((Date.parse(block.expires_at) - Date.now()) / 1000));
  const message = `Your IP address is blocked until ${block.expires_at}.`;
  return new AppError('ip_blocked', {
    message,
    headers: { 'retry-after': String(seconds) },
    body: { ...wrappedBody('ip_blocked', message, 403), blocked_until: block.expires_at },
  });
}

function throttledError(v: Verdict): AppError {
  const seconds = Math.max(1, Math.ceil(v.resetMs / 1000));
  const message = `Request was throttled. Expected available in ${seconds} seconds.`;
  return new AppError('throttled', {
    message,
    headers: { 'retry-after': String(seconds) },
    body: { ...wrappedBody('throttled', message, 429), limit: v.name, rate: formatRate(v.rate), retry_after: seconds },
  });
}

function rateHeaders(reply: FastifyReply, v: Verdict): void {
  reply.header('ratelimit-limit', v.tier.limitText);
  reply.header('ratelimit-remaining', String(v.remaining));
  reply.header('ratelimit-reset', String(Math.ceil(v.resetMs / 1000)));
  reply.header('ratelimit-policy', v.tier.policy);
}

/** Of the windows a request counted against, the one to report: the rejecting one that lasts longest, else the nearest to empty. */
export function reported(verdicts: Verdict[]): Verdict {
  let shown = verdicts[0]!;
  for (const v of verdicts) {
    if (!v.allowed) {
      if (shown.allowed || v.resetMs > shown.resetMs) shown = v;
    } else if (shown.allowed && (v.remaining / v.rate.points < shown.remaining / shown.rate.points || (v.remaining === shown.remaining && v.resetMs > shown.resetMs))) {
      shown = v;
    }
  }
  return shown;
}

/** Before the Bearer check: the client address, the allow-list and the block list (no round trip). */
export function registerIpGuard(app: FastifyInstance, limits: Limits | undefined, allowlist: readonly string[]): void {
  const allowed = new IpRanges(allowlist);
  app.decorate('internalToken', randomBytes(24).toString('base64url'));
  app.decorateRequest('clientIp', '');
  app.decorateRequest('limitsExempt', false);
  app.decorateRequest('routeLimit', undefined);
  // The API docs, static files and robots.txt: never limited.
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url.startsWith('/api/docs') || route.url.startsWith('/static/') || route.url === '/robots.txt') route.config = { ...(route.config as object), ...unlimited };
  });
  app.addHook('onRequest', (request, _reply, done) => {
    request.clientIp = normalIp(request.ip);
    // routeOptions builds a new object on every read: once per request is enough.
    const own = limits ? request.routeOptions.config?.rateLimit : undefined;
    request.routeLimit = own || undefined;
    if (!limits || own === false || request.headers[INTERNAL_HEADER] === app.internalToken || allowed.has(request.clientIp)) {
      request.limitsExempt = true;
      return done();
    }
    const block = limits.blocks.get(request.clientIp);
    done(block ? blockedError(block) : undefined);
  });
}

/** After the Bearer check: every window that applies to who is calling, and the route's own. */
export function registerRateLimits(app: FastifyInstance, limits: Limits): void {
  app.addHook('onRequest', (request, reply, done) => {
    if (request.limitsExempt) return done();
    const route = request.routeLimit;
    const caller = { ip: request.clientIp, userId: request.auth?.user_id ?? null, staff: request.auth?.is_staff === true };
    const answer = (verdicts: Verdict[]) => {
      const shown = reported(verdicts);
      rateHeaders(reply, shown);
      if (shown.allowed) return done();
      limits.violation(caller.ip, shown.name).then(
        () => done(throttledError(shown)),
        () => done(throttledError(shown)),
      );
    };
    const counted = limits.check(caller, route);
    if (Array.isArray(counted)) return answer(counted);
    counted.then(answer, (err: unknown) => {
      // The insurance counters make this unreachable; if it happens, serve rather than fail.
      request.log.error({ err }, 'rate limit check failed; request let through');
      done();
    });
  });
}

/** Headers the server's own requests carry (cache warming) so they are never limited. */
export function internalHeaders(app: FastifyInstance): Record<string, string> {
  return { [INTERNAL_HEADER]: app.internalToken };
}
