// The one registry of API errors, and the Fastify handlers that turn every failure into the
// contract's body shapes (API-CONTRACT.md §1.6):
//   wrapped  {"error":true,"message":…,"status_code":…,"code":…[,"errors":{field:[msg]}]}
//   raw      a body given by the thrower, e.g. {"quantity":["This field is required."]}
// `code` is our addition (a superset of the contract): a stable name clients can act on.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isConnectionError } from '../../db/database.ts';
import { StoreUnavailableError } from '../cache/store.ts';
import { diskFault } from '../disk.ts';

interface ErrorDef {
  readonly status: number;
  readonly message: string;
}

export const ERRORS = {
  bad_request: { status: 400, message: 'Bad request. Please check your input.' },
  parse_error: { status: 400, message: 'JSON parse error' },
  not_authenticated: { status: 401, message: 'Authentication credentials were not provided.' },
  token_not_valid: { status: 401, message: 'Given token not valid for any token type' },
  authentication_failed: { status: 401, message: 'No active account found with the given credentials' },
  permission_denied: { status: 403, message: 'You do not have permission to perform this action.' },
  not_found: { status: 404, message: 'Not found.' },
  invalid_page: { status: 404, message: 'Invalid page.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  request_timeout: { status: 408, message: 'The request took too long to arrive.' },
  conflict: { status: 409, message: 'Database integrity error. This operation would violate data constraints.' },
  idempotency_key_reused: { status: 422, message: 'This Idempotency-Key was already used for a different request. Use a new key for a new checkout.' },
  payload_too_large: { status: 413, message: 'Request body is too large.' },
  unsupported_media_type: { status: 415, message: 'Unsupported media type in request.' },
  throttled: { status: 429, message: 'Request was throttled.' },
  headers_too_large: { status: 431, message: 'The request headers are too large.' },
  ip_blocked: { status: 403, message: 'Your IP address is blocked.' },
  internal: { status: 500, message: 'An unexpected error occurred. Please try again later.' },
  service_unavailable: { status: 503, message: 'The service is temporarily unavailable. Please try again shortly.' },
  storage_read_only: { status: 503, message: 'The server cannot save anything right now: its storage is read-only. Please try again later.' },
  insufficient_storage: { status: 507, message: 'The server is out of storage space, so this change was not saved. Please try again later.' },
} as const satisfies Record<string, ErrorDef>;

export type ErrorCode = keyof typeof ERRORS;
export type FieldErrors = Record<string, string[]>;

export class AppError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: ErrorCode,
    readonly options: { message?: string; errors?: FieldErrors; status?: number; body?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(options.message ?? ERRORS[code].message);
    this.name = 'AppError';
    this.statusCode = options.status ?? ERRORS[code].status;
  }
}

/** 400 with DRF-style field errors: `{"field": ["message"]}`. */
export function fieldError(field: string, message: string): AppError {
  return new AppError('bad_request', { errors: { [field]: [message] } });
}

/**
 * A unique violation (23505) that raced past a service's own check, as the field error the check
 * gives: `constraints` maps a constraint name to its field and message. Undefined for other errors.
 */
export function uniqueFieldError(err: unknown, constraints: Record<string, [field: string, message: string]>): AppError | undefined {
  const e = err as { code?: string; constraint?: string; message?: string } | undefined;
  if (e?.code !== '23505') return undefined;
  const what = `${e.constraint ?? ''} ${e.message ?? ''}`;
  const hit = Object.entries(constraints).find(([name]) => what.includes(name));
  return hit ? fieldError(hit[1][0], hit[1][1]) : undefined;
}

export function wrappedBody(code: ErrorCode, message: string, status: number, errors?: FieldErrors) {
  return errors ? { error: true, message, status_code: status, code, errors } : { error: true, message, status_code: status, code };
}

// DRF's wording for the checks our JSON schemas make, so validation errors read as the
// storefront expects.
function validationMessage(e: { keyword: string; params: Record<string, unknown>; data?: unknown; message?: string; parentSchema?: { 'x-message'?: string } }): string {
  const p = e.params;
  // A schema may name the message its own rule breaks (e.g. the username pattern).
  if (e.keyword === 'pattern' && e.parentSchema?.['x-message']) return e.parentSchema['x-message'];
  switch (e.keyword) {
    case 'required':
      return 'This field is required.';
    case 'type': {
      const types = [p.type].flat();
      const t = types.includes('number') ? 'number' : types[0];
      if (t === 'integer') return 'A valid integer is required.';
      if (t === 'number') return 'A valid number is required.';
      if (t === 'boolean') return 'Must be a valid boolean.';
      if (t === 'array') return 'Expected a list of items.';
      if (t === 'object') return 'Invalid data. Expected a dictionary.';
      return 'Not a valid string.';
    }
    case 'minimum':
      return `Ensure this value is greater than or equal to ${p.limit}.`;
    case 'maximum':
      return `Ensure this value is less than or equal to ${p.limit}.`;
    case 'exclusiveMinimum':
      return `Ensure this value is greater than ${p.limit}.`;
    case 'minLength':
      return p.limit === 1 ? 'This field may not be blank.' : `Ensure this field has at least ${p.limit} characters.`;
    case 'maxLength':
      return `Ensure this field has no more than ${p.limit} characters.`;
    case 'maxItems':
      return `Ensure this field has no more than ${p.limit} elements.`;
    case 'enum':
      return `"${String(e.data)}" is not a valid choice.`;
    case 'format':
      return p.format === 'email' ? 'Enter a valid email address.' : `Enter a valid ${String(p.format)}.`;
    case 'pattern':
      return 'Enter a valid value.';
    default:
      return e.message ?? 'Invalid value.';
  }
}

type AjvError = { instancePath: string; keyword: string; params: Record<string, unknown>; data?: unknown; message?: string; parentSchema?: { 'x-message'?: string } };

export function toFieldErrors(validation: AjvError[]): FieldErrors {
  const errors: FieldErrors = {};
  for (const e of validation) {
    let field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    if (e.keyword === 'required') field = field ? `${field}.${String(e.params.missingProperty)}` : String(e.params.missingProperty);
    field ||= 'non_field_errors';
    const msg = validationMessage(e);
    const list = (errors[field] ??= []);
    if (!list.includes(msg)) list.push(msg);
  }
  return errors;
}

function send(reply: FastifyReply, code: ErrorCode, message: string, status: number, errors?: FieldErrors) {
  return reply.code(status).type('application/json').send(wrappedBody(code, message, status, errors));
}

/**
 * An error that says a part the server needs is away (the database, a store, a disk that is full
 * or read-only), not that this request failed: the error handler answers it 503/507, so routes
 * that turn their own failures into a message of their own let it through.
 */
export function isOutage(err: unknown): boolean {
  return isConnectionError(err) || err instanceof StoreUnavailableError || diskFault(err) !== undefined;
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError & { validation?: AjvError[]; validationContext?: string }, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof AppError) {
      if (err.options.headers) reply.headers(err.options.headers);
      // Every 401 names the scheme to sign in with (RFC 9110 §15.5.2), as SimpleJWT's token views
      // do too: sign-in and refresh refusals, not only the Bearer check's.
      if (err.statusCode === 401 && !reply.hasHeader('www-authenticate')) reply.header('www-authenticate', 'Bearer realm="api"');
      if (err.options.body !== undefined) return reply.code(err.statusCode).type('application/json').send(err.options.body);
      return send(reply, err.code, err.message, err.statusCode, err.options.errors);
    }
    if (err.validation) {
      // A path parameter of the wrong type means no such resource, as Django's URL patterns do.
      if (err.validationContext === 'params') return send(reply, 'not_found', ERRORS.not_found.message, 404);
      // Routes whose serializer errors the contract shows unwrapped (cart add/update, §1.6 shape 2).
      if (err.validationContext === 'body' && (request.routeOptions.config as { rawErrors?: boolean } | undefined)?.rawErrors) {
        return reply.code(400).type('application/json').send(toFieldErrors(err.validation));
      }
      return send(reply, 'bad_request', ERRORS.bad_request.message, 400, toFieldErrors(err.validation));
    }
    switch (err.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return send(reply, 'parse_error', `JSON parse error - ${err.message}`, 400);
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return send(reply, 'payload_too_large', ERRORS.payload_too_large.message, 413);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return send(reply, 'unsupported_media_type', `Unsupported media type "${request.headers['content-type'] ?? ''}" in request.`, 415);
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return send(reply, 'bad_request', 'Request body size did not match Content-Length.', 400);
    }
    if (err instanceof SyntaxError && err.statusCode === 400) return send(reply, 'parse_error', `JSON parse error - ${err.message}`, 400);
    // PostgreSQL: integrity violations are the client's conflict, bad values its bad request.
    const sqlState = typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) ? err.code : '';
    if (sqlState.startsWith('23')) return send(reply, 'conflict', ERRORS.conflict.message, 409);
    if (sqlState.startsWith('22')) return send(reply, 'bad_request', ERRORS.bad_request.message, 400);
    // A full or read-only disk (the database's, the media folder's): nothing was saved, and
    // trying again once someone has made room works.
    const disk = diskFault(err);
    if (disk) {
      request.log.error({ err }, disk === 'full' ? 'disk full' : 'disk read-only');
      reply.header('Retry-After', '30');
      const code = disk === 'full' ? 'insufficient_storage' : 'storage_read_only';
      return send(reply, code, ERRORS[code].message, ERRORS[code].status);
    }
    if (isConnectionError(err) || err instanceof StoreUnavailableError) {
      request.log.error({ err }, err instanceof StoreUnavailableError ? err.message : 'database unavailable');
      reply.header('Retry-After', '5');
      return send(reply, 'service_unavailable', ERRORS.service_unavailable.message, 503);
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return send(reply, 'bad_request', err.message, status);
    request.log.error({ err }, 'unhandled error');
    return reply
      .code(500)
      .type('application/json')
      .send({ ...wrappedBody('internal', ERRORS.internal.message, 500), request_id: request.id });
  });

}

type OnRequestHook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void;
type OnSendHook = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => void;

/**
 * The contract's 404 for paths no route matches, with hooks that run for those requests only
 * (the rate limits, the monitoring's `unmatched` label). An app-wide hook asking `request.is404`
 * would run on every request instead. Fastify gives the not-found route every lifecycle hook its
 * options name (four-oh-four.js concatenates `opts[hook]` for each), although its types list only
 * preValidation and preHandler; test/limits and test/monitoring fail if that ever changes.
 */
export function registerNotFound(app: FastifyInstance, hooks: { onRequest: OnRequestHook[]; onSend: OnSendHook[] }): void {
  app.setNotFoundHandler(hooks as object, (_request, reply) => send(reply, 'not_found', ERRORS.not_found.message, 404));
}
