// Limits on the request path (DESIGN.md): IP resolution and the block check before anything else,
// then — once the Bearer token says who is calling — the windows that apply, all in `onRequest`
// and so before the response cache, which a limited caller never reaches.
//
// Every limited response carries the draft IETF headers (RateLimit-Limit, -Remaining, -Reset) for
// the window closest to running out; a 429 adds RateLimit-Policy and names the window and when it
// resets.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { addRouteHook } from '../http/hooks.ts';
import { formatRate, parseRate } from '../../config.ts';
import { AppError, wrappedBody } from '../http/errors.ts';
import { isForwarded } from '../http/proxy.ts';
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
    /** Over the per-email window of a route whose limit is `perEmail: 'silent'` (see RouteLimit). */
    emailThrottled: boolean;
  }
}

/**
 * The seed's `@rate_limit('checkout', limit=10, period=3600)`, as route config: `rateLimit('checkout', '10/hour')`.
 * RATE_LIMIT_ROUTES overrides by name. `anonymous`: counted per IP whoever calls (sign-in, sign-up,
 * reset); `perEmail`: also per the email the body names (see RouteLimit).
 */
export function rateLimit(name: string, rate: string, o: { anonymous?: boolean; perEmail?: boolean | 'silent' } = {}): { rateLimit: RouteLimit } {
  return { rateLimit: { name, rate: parseRate(rate), ...(o.anonymous ? { anonymous: true } : {}), ...(o.perEmail ? { perEmail: o.perEmail } : {}) } };
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
  // The policy explains a refusal; on every other answer it would be one more header to write
  // (each costs the server about 2% of a cached answer's throughput).
  if (!v.allowed) reply.header('ratelimit-policy', v.tier.policy);
}

/**
 * A request that names a client of its own (X-Forwarded-For, X-Real-IP, Forwarded) but came from a
 * peer not in TRUSTED_PROXIES: the peer is a proxy we were not told of (on this host, loopback), and
 * the request is someone else's. The allow-list exempts the address's own requests, never those it
 * passes on: an allow-listed loopback would otherwise exempt everyone behind a local proxy.
 */
function forwardedByStranger(request: FastifyRequest): boolean {
  return isForwarded(request.headers) && request.ip === request.socket.remoteAddress;
}

/** Before the Bearer check: the client address, the allow-list and the block list (no round trip). */
export function registerIpGuard(app: FastifyInstance, limits: Limits | undefined, allowlist: readonly string[]): void {
  const allowed = new IpRanges(allowlist);
  app.decorate('internalToken', randomBytes(24).toString('base64url'));
  app.decorateRequest('clientIp', '');
  app.decorateRequest('limitsExempt', false);
  app.decorateRequest('emailThrottled', false);
  // The API docs and robots.txt are static: never limited.
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url.startsWith('/api/docs') || route.url.startsWith('/static/') || route.url === '/robots.txt') route.config = { ...(route.config as object), ...unlimited };
  });
  app.addHook('onRequest', (request, _reply, done) => {
    request.clientIp = normalIp(request.ip);
    if (!limits || request.headers[INTERNAL_HEADER] === app.internalToken || (allowed.has(request.clientIp) && !forwardedByStranger(request))) {
      request.limitsExempt = true;
      return done();
    }
    // A block covers every request, exempt routes included.
    const block = limits.blocks.get(request.clientIp);
    done(block ? blockedError(block) : undefined);
  });
}

type LimitHook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void;

/**
 * After the Bearer check: every window that applies to who is calling, and the route's own. A
 * route-level hook made for each route when it is registered, with the route's limit in hand:
 * reading `request.routeOptions` on every request was seen to cost 5% of a cached answer's
 * throughput. Exempt routes get no hook; unknown paths (404s) count through the one returned for
 * the not-found route, so a scanner's guesses are limited too. Registered before the response
 * cache's lookup hook, which therefore runs after it.
 */
export function registerRateLimits(app: FastifyInstance, limits: Limits, observe?: { refused(limit: string): void; blocked(): void }): { notFound: LimitHook } {
  // Refused: count the violation (it may block the IP), then answer 429.
  const refuse = (ip: string, shown: Verdict, done: (err?: Error) => void) => {
    observe?.refused(shown.name);
    limits.violation(ip, shown.name).then(
      (block) => {
        if (block) observe?.blocked();
        done(throttledError(shown));
      },
      () => done(throttledError(shown)),
    );
  };
  const hookFor = (route: RouteLimit | undefined): LimitHook => (request, reply, done) => {
    if (request.limitsExempt) return done();
    // An anonymous flow is the address's whoever calls (its routes do not read the Bearer either).
    const auth = route?.anonymous ? null : request.auth;
    const counted = limits.check({ ip: request.clientIp, userId: auth?.user_id ?? null, staff: auth?.is_staff === true }, route);
    if (!(counted instanceof Promise)) {
      // The usual path, with leases or in process: no promise, no closure.
      rateHeaders(reply, counted);
      return counted.allowed ? done() : refuse(request.clientIp, counted, done);
    }
    counted.then(
      (shown) => {
        rateHeaders(reply, shown);
        return shown.allowed ? done() : refuse(request.clientIp, shown, done);
      },
      (err: unknown) => {
        // The insurance counters make this unreachable; if it happens, serve rather than fail.
        request.log.error({ err }, 'rate limit check failed; request let through');
        done();
      },
    );
  };
  // Per target email: once the body is parsed (before validation: a malformed body is counted too
  // when it names an email), from every address together. Anyone may spend an email's window, so
  // going over it is no violation of the caller's address (else a stranger spending the window of
  // the owner's email would get the owner's address blocked as the owner retried).
  const emailHookFor = (route: RouteLimit): LimitHook => (request, reply, done) => {
    const email = (request.body as { email?: unknown } | undefined)?.email;
    // Longer than any address (RFC 5321's 254): validation refuses it, and it must not become a
    // counter key of whatever length the body allows.
    if (request.limitsExempt || typeof email !== 'string' || !email.trim() || email.length > 320) return done();
    const answer = (shown: Verdict) => {
      if (shown.allowed) return done();
      if (route.perEmail === 'silent') {
        request.emailThrottled = true;
        return done();
      }
      rateHeaders(reply, shown);
      observe?.refused(shown.name);
      done(throttledError(shown));
    };
    const counted = limits.checkEmail(route, email);
    if (!(counted instanceof Promise)) return answer(counted);
    counted.then(answer, (err: unknown) => {
      request.log.error({ err }, 'rate limit check failed; request let through');
      done();
    });
  };
  app.addHook('onRoute', (route: RouteOptions) => {
    const own = (route.config as { rateLimit?: RouteLimit | false } | undefined)?.rateLimit;
    if (own !== false) addRouteHook(route, 'onRequest', hookFor(own || undefined));
    if (own && own.perEmail) addRouteHook(route, 'preValidation', emailHookFor(own));
  });
  // Unknown paths count too (the app gives this to the not-found route).
  return { notFound: hookFor(undefined) };
}

/** Whether a request is the server's own (cache warming): never limited, never counted as a shopper's cache hit or miss. */
export function isInternal(request: FastifyRequest): boolean {
  return request.headers[INTERNAL_HEADER] === request.server.internalToken;
}

/** Headers the server's own requests carry (cache warming) so they are never limited. */
export function internalHeaders(app: FastifyInstance): Record<string, string> {
  return { [INTERNAL_HEADER]: app.internalToken };
}
