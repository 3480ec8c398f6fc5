// Schema helpers shared by every module's route schemas.
import { Type, type Static, type TSchema } from 'typebox';

/** `T | null` as a JSON-schema type list: fast-json-stringify serialises it without anyOf. */
export function Nullable<T extends TSchema & { type?: string }>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type ?? 'string', 'null'] });
}

/** Money and weight on the wire: a decimal string with exactly two places, e.g. "19.99". */
export const Decimal2 = Type.String({ description: 'Decimal with two places, e.g. "19.99"', examples: ['19.99'] });

/** ISO-8601 UTC with microseconds and Z, e.g. "2026-11-25T20:45:21.097845Z". */
export const DateTime = Type.String({ description: 'ISO-8601 UTC timestamp' });

export function Paginated<T extends TSchema>(item: T) {
  return Type.Object({
    count: Type.Integer(),
    next: Nullable(Type.String()),
    previous: Nullable(Type.String()),
    results: Type.Array(item),
  });
}

export const PageQuerySchema = {
  page: Type.Optional(Type.String({ description: 'Page number (1-based) or `last`' })),
  page_size: Type.Optional(Type.String({ description: 'Items per page, 1-100 (default 20)' })),
};

/** Accepts `?x=1` and `?x=1&x=2` alike. */
export function OneOrMany<T extends TSchema>(item: T) {
  return Type.Array(item, { maxItems: 50 });
}

export const ErrorBody = Type.Object({
  error: Type.Literal(true),
  message: Type.String(),
  status_code: Type.Integer(),
  code: Type.String(),
  errors: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

/** 429: the wrapped error plus which limit refused the request and when it resets. */
export const ThrottledBody = Type.Object({
  error: Type.Literal(true),
  message: Type.String(),
  status_code: Type.Integer(),
  code: Type.String(),
  limit: Type.String({ description: 'The window that refused: anonymous, user, burst, sustained, staff, login_failures or a route limit (search, login…)' }),
  rate: Type.Optional(Type.String({ examples: ['100/hour'] })),
  retry_after: Type.Integer({ description: 'Seconds until it resets (also the Retry-After header)' }),
});

/**
 * A 4xx whose body takes more than one of the contract's shapes (wrapped for bad JSON, raw field
 * errors or `{"error": …}` from the route): left untyped so each is serialised as it is.
 */
export function MixedErrorBody(description: string) {
  return Type.Unsafe<unknown>({ description });
}

/** `{id}` in a path: a positive integer (anything else names no resource: 404). */
export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2147483647 }) });

/** The contract's ad-hoc error body: `{"error": "…"}`. */
export const AdHocError = Type.Object({ error: Type.String() });

/** 204: no body. */
export const NoContent = Type.Null({ description: 'No content' });
