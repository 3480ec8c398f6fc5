// Chaos: every route of the OpenAPI document fuzzed with generated malformed input (issue 11,
// "Every route fuzzed"). The routes come from `app.swagger()`, so a new route is fuzzed without
// touching this file; fast-check generates the input from each route's declared parameters and
// body schema. Whatever is sent, as anonymous, a customer or staff:
//   - no response is a 5xx;
//   - every 4xx body is in one of the contract's error shapes (API-CONTRACT.md §1.6);
//   - the shop's data (products, orders, payments, users, reviews, carts…) is exactly as before.
// Fixed seed, bounded runs: FUZZ_RUNS (runs per route and kind of input) and FUZZ_SEED widen it,
// e.g. `FUZZ_RUNS=200 node scripts/test.mjs test/chaos/fuzz.test.ts`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { reportRow } from './report.ts';
import { testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { openTestDatabase } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import type { Database } from '../../src/db/database.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 12);
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_125);
const BODY_LIMIT = 1_048_576;
const UPLOAD_LIMIT_MB = 1;
/** Ids 1..3 exist in every table the fixture fills, so "a valid id" needs no per-route knowledge. */
const EXISTING_ID = fc.integer({ min: 1, max: 3 });

// ---------------------------------------------------------------------------------------------
// The contract's error shapes (§1.6), one checker for every 4xx.

type Body = Record<string, unknown>;
const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringList = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((m) => typeof m === 'string');

/** Why `text` is not one of the contract's error bodies for `status`; undefined when it is. */
export function errorShapeProblem(status: number, text: string): string | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (!isObject(body)) return 'not a JSON object';
  // 1. Wrapped: {"error":true,"message","status_code"[,"code"][,"errors":{field:[msg]}]}. The
  //    Django ValidationError form carries `errors.detail` as one string.
  if (body.error === true) {
    if (typeof body.message !== 'string' || !body.message) return 'wrapped error without a message';
    if (body.status_code !== status) return `wrapped status_code ${String(body.status_code)} on a ${status}`;
    if (body.code !== undefined && typeof body.code !== 'string') return 'wrapped code is not a string';
    if (body.errors !== undefined) {
      if (!isObject(body.errors) || Object.keys(body.errors).length === 0) return 'wrapped errors is not a field map';
      const bad = Object.entries(body.errors).find(([, v]) => !isStringList(v) && typeof v !== 'string');
      if (bad) return `wrapped errors.${bad[0]} is not a list of messages`;
    }
    return undefined;
  }
  // 3. Ad hoc: {"error":"text"}, {"valid":false,"message"}, {"status":"failed","message"}.
  if (typeof body.error === 'string') return undefined;
  if (body.valid === false && typeof body.message === 'string') return undefined;
  if (body.status === 'failed' && typeof body.message === 'string') return undefined;
  // 2. Raw serializer errors: {"field":["msg"]} or {"non_field_errors":["msg"]}.
  const entries = Object.entries(body);
  if (entries.length > 0 && entries.every(([, v]) => isStringList(v))) return undefined;
  return 'none of the contract error shapes';
}

// ---------------------------------------------------------------------------------------------
// The routes, read from the OpenAPI document.

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  items?: Schema;
  $ref?: string;
  maxLength?: number;
}

interface Param {
  name: string;
  in: 'path' | 'query';
  schema: Schema;
}

interface Operation {
  method: string;
  /** OpenAPI template, e.g. /api/products/{id}/ */
  path: string;
  params: Param[];
  body?: Schema;
  /** The route takes multipart/form-data uploads (its description says so). */
  upload: boolean;
}

/** Where the contract itself answers a 4xx with no body: the webhook's bad signature (§2.5). */
const EMPTY_BODY_ALLOWED: Record<string, number[]> = { 'POST /api/payments/stripe-webhook/': [400] };

interface OpenApiOperation {
  parameters?: { name: string; in: string; schema: Schema }[];
  requestBody?: { content?: Record<string, { schema: Schema }> };
  description?: string;
}

function operationsOf(doc: { paths: Record<string, Record<string, OpenApiOperation>>; components?: { schemas?: Record<string, Schema> } }): Operation[] {
  const resolve = (s: Schema): Schema => (s.$ref ? resolve(doc.components?.schemas?.[s.$ref.split('/').pop()!] ?? {}) : s);
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      // HEAD is GET without a body; OPTIONS is the CORS preflight, with no input of its own.
      if (method === 'head' || method === 'options') continue;
      const json = op.requestBody?.content?.['application/json']?.schema;
      ops.push({
        method: method.toUpperCase(),
        path,
        params: (op.parameters ?? []).filter((p) => p.in === 'path' || p.in === 'query').map((p) => ({ name: p.name, in: p.in as 'path' | 'query', schema: resolve(p.schema) })),
        body: json ? resolve(json) : undefined,
        upload: /multipart\/form-data/.test(op.description ?? ''),
      });
    }
  }
  return ops;
}

function typesOf(s: Schema): Set<string> | undefined {
  const branches = s.anyOf ?? s.oneOf;
  if (branches) {
    const all = new Set<string>();
    for (const b of branches) {
      const t = typesOf(b);
      if (!t) return undefined;
      for (const x of t) all.add(x);
    }
    return all;
  }
  if (s.type) return new Set([s.type].flat());
  if (s.const !== undefined) return new Set([typeof s.const]);
  if (s.enum) return new Set(s.enum.map((v) => typeof v));
  return undefined;
}

const choicesOf = (s: Schema): unknown[] | undefined => {
  if (s.enum) return s.enum;
  if (s.const !== undefined) return [s.const];
  const branches = s.anyOf ?? s.oneOf;
  if (branches?.every((b) => choicesOf(b))) return branches.flatMap((b) => choicesOf(b)!);
  return undefined;
};

/**
 * Values the property's schema refuses whatever the server coerces (AJV coerceTypes 'array',
 * the input guards' number check): an object where no object is allowed, a two-item array where
 * no array is, text for numbers and booleans, an unknown choice. Undefined when the property
 * takes anything.
 */
function wrongValues(s: Schema): fc.Arbitrary<unknown> | undefined {
  const types = typesOf(s);
  if (!types) return undefined;
  const out: fc.Arbitrary<unknown>[] = [];
  if (!types.has('object')) out.push(fc.constantFrom<unknown>({ nested: { deep: true } }, {}, { $gt: '' }));
  if (!types.has('array')) out.push(fc.constantFrom<unknown>([1, 2], ['a', 'b'], [[], {}]));
  const scalar = [...types].filter((t) => t !== 'null' && t !== 'object' && t !== 'array');
  if (scalar.length > 0 && scalar.every((t) => t === 'integer' || t === 'number')) out.push(fc.constantFrom<unknown>('abc', '0x10', 'Infinity', ' 7 ', true, '1e999'));
  if (scalar.length > 0 && scalar.every((t) => t === 'integer')) out.push(fc.constantFrom<unknown>(1.5, '1.5', -0.5));
  if (scalar.length > 0 && scalar.every((t) => t === 'boolean')) out.push(fc.constantFrom<unknown>('maybe', 42, 'yes please'));
  const choices = choicesOf(s);
  if (choices) out.push(fc.constantFrom<unknown>('zzz-not-a-choice', '☃', '').filter((v) => !choices.includes(v)));
  return out.length ? fc.oneof(...out) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Malformed values.

const deepObject = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
const deepArray = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

const oddStrings = fc.constantFrom(
  '', ' ', '\u0000', 'a\u0000b', '\ud800', '\uffff', '😀'.repeat(50), '‮evil', '../../../etc/passwd', '..\\..\\boot.ini', '%00', '%2e%2e%2f',
  "Robert'); DROP TABLE users;--", '<script>alert(1)</script>', '{{7*7}}', '${jndi:ldap://x}', 'null', 'NaN', '-0', '1e309',
);
const longStrings = fc.constantFrom(1_000, 10_000, 100_000).chain((n) => fc.constantFrom('x'.repeat(n), 'é'.repeat(n), '9'.repeat(n)));
const hugeNumbers = fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308, 5e-324, -1, 0, -2147483649);

/** Any value, malformed or not: the company the definite violations keep. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  hugeNumbers,
  fc.double(),
  oddStrings,
  longStrings,
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 3 }),
);

const oddNames = fc.constantFrom('__proto__', 'constructor', 'prototype', '', ' ', 'a[b]', 'a[]', 'a.b', '$where', 'x'.repeat(2_000), 'ü', '\u0000', 'id', 'user_id', 'is_staff', 'price');

/** Percent-encodes every UTF-8 byte (a lone surrogate, which encodeURIComponent refuses, becomes U+FFFD). */
const pct = (text: string) => [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');

/** A path parameter that names nothing: wrong type, out of range, traversal, bad encoding. */
const badPathValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('0', '-1', '-2147483649', '2147483648', '9007199254740993', '99999999999999999999999999', '1e3', '1.5', '0x10', '%207', 'NaN', 'Infinity', 'null', 'true', '[]', '{}'),
  fc.constantFrom('..%2f..', '..%2F..%2F..%2Fetc%2Fpasswd', '%2e%2e', '..', '.', '%00', '1%00', '%00.png', '..%5c..%5cwindows', '%c0%ae%c0%ae', '%ff%fe', '%', '%zz', '%2', '%E2%82'),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.integer({ max: 0 }).map(String),
  fc.constantFrom(2_000, 20_000).map((n) => 'a'.repeat(n)),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
).filter((v) => !namesARow(v));

/** True for text the server would read as an id in range ("2", "0003", "%33"): not malformed, and a DELETE would delete. */
function namesARow(v: string): boolean {
  let text = v;
  try {
    text = decodeURIComponent(v);
  } catch {
    // bad percent-encoding names nothing
  }
  return /^\s*[+-]?\d+\s*$/.test(text) && Number(text) >= 1 && Number(text) <= 2 ** 53;
}

/** A query value of the wrong type, too long, or not valid percent-encoding. Sent as is. */
const badQueryValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('abc', '-1', '0', '-0', '1.5', '1e309', '99999999999999999999999', 'NaN', 'Infinity', '0x1F', '%20', '', 'true', '[]', '{}', 'null', 'last', '-last'),
  fc.constantFrom('%zz', '%', '%E2%82', '%ff%fe%fd', '%00', 'a%00b', '%2e%2e%2f%2e%2e%2f', '%C0%AE'),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.constantFrom(10_000, 60_000).map((n) => 'q'.repeat(n)),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.string({ unit: 'grapheme', maxLength: 30 }).map(encodeURIComponent),
);

/** `?a=1&a=2&[odd]=…`: the route's own names (each maybe twice) and odd ones. */
function badQuery(op: Operation): fc.Arbitrary<string> {
  const own = op.params.filter((p) => p.in === 'query').map((p) => p.name);
  const name = own.length ? fc.oneof(fc.constantFrom(...own), fc.constantFrom(...own).map((n) => `${n}[]`), oddNames.map(encodeURIComponent)) : oddNames.map(encodeURIComponent);
  return fc
    .array(fc.tuple(name, badQueryValue, fc.nat(2)), { minLength: 1, maxLength: 6 })
    .map((pairs) => pairs.flatMap(([n, v, times]) => Array.from({ length: times + 1 }, () => `${n}=${v}`)).join('&'));
}

// ---------------------------------------------------------------------------------------------
// Bodies.

/** The JSON text of an object given as entries (so `__proto__` and duplicate keys survive). */
const objectText = (entries: [string, unknown][]) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${typeof v === 'string' && v.startsWith('\u0001raw:') ? v.slice(5) : JSON.stringify(v)}`).join(',')}}`;
const raw = (jsonText: string) => `\u0001raw:${jsonText}`;

/** One property set to a value its schema refuses, or a required property left out. */
function violations(schema: Schema | undefined): fc.Arbitrary<{ set?: [string, unknown]; omit?: string }> | undefined {
  if (!schema) return undefined;
  const props = Object.entries(schema.properties ?? {});
  const options: fc.Arbitrary<{ set?: [string, unknown]; omit?: string }>[] = [];
  for (const [name, s] of props) {
    const wrong = wrongValues(s);
    if (wrong) options.push(wrong.map((v) => ({ set: [name, v] as [string, unknown] })));
  }
  for (const name of schema.required ?? []) options.push(fc.constant({ omit: name }));
  return options.length ? fc.oneof(...options) : undefined;
}

/** A JSON object the route's body schema refuses: junk in its fields, extra fields, one definite violation. */
function badObject(schema: Schema | undefined, violation: fc.Arbitrary<{ set?: [string, unknown]; omit?: string }> | undefined): fc.Arbitrary<[string, unknown][]> {
  const props = Object.keys(schema?.properties ?? {});
  const own = props.length ? fc.array(fc.tuple(fc.constantFrom(...props), junk), { maxLength: props.length }) : fc.constant([] as [string, unknown][]);
  const extra = fc.array(fc.tuple(fc.oneof(oddNames, fc.string({ maxLength: 10 })), junk), { maxLength: 3 });
  return fc.tuple(own, extra, violation ?? fc.constant(undefined)).map(([o, e, v]) => {
    let entries = [...e, ...o];
    if (v?.omit) entries = entries.filter(([k]) => k !== v.omit);
    // Last, so a duplicate key earlier in the text is overridden by it (JSON.parse keeps the last).
    if (v?.set) entries.push(v.set);
    return entries;
  });
}

/** A form-encoded body the schema refuses: a number or choice as text it is not, a field twice, or a required field missing. */
function badForm(schema: Schema | undefined): fc.Arbitrary<string> | undefined {
  if (!schema) return undefined;
  const options: fc.Arbitrary<string>[] = [];
  for (const [name, s] of Object.entries(schema.properties ?? {})) {
    const types = typesOf(s);
    if (!types || types.has('array')) continue;
    const k = encodeURIComponent(name);
    // Two values for one field arrive as an array, which no scalar field takes.
    options.push(fc.tuple(badQueryValue, badQueryValue).map(([a, b]) => `${k}=${a}&${k}=${b}`));
    if ([...types].every((t) => t === 'integer' || t === 'number')) options.push(fc.constantFrom('abc', '0x10', '1e999').map((v) => `${k}=${v}`));
    if ([...types].every((t) => t === 'boolean')) options.push(fc.constant(`${k}=maybe`));
  }
  for (const name of schema.required ?? []) options.push(fc.constant(`x=1&${encodeURIComponent(name)}_not=1`));
  return options.length ? fc.oneof(...options) : undefined;
}

interface Payload {
  kind: string;
  contentType?: string;
  payload?: string | Buffer;
  headers?: Record<string, string>;
}

const NON_UTF8 = Buffer.from([0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf8, 0x88, 0x80, 0x80, 0x80, 0xc3, 0x28]);
const MARK = '__not_utf8__';

/** Every kind of malformed body for a route; `refusable` says whether each is certain to be refused. */
function badBodies(op: Operation): fc.Arbitrary<Payload> {
  const violation = violations(op.body);
  const object = badObject(op.body, violation).map(objectText);
  const kinds: fc.Arbitrary<Payload>[] = [
    object.map((text) => ({ kind: 'wrong-typed/missing/extra fields', contentType: 'application/json', payload: text })),
    fc.constantFrom('[]', '[1,2]', '"text"', '42', 'null', 'true', '-1e999').map((text) => ({ kind: 'not an object', contentType: 'application/json', payload: text })),
    fc
      .constantFrom('{', '{"a":', '[1,]', "{'a':1}", '{"a":1}}', 'nul', '{"a":01}', '{"a":"\\x"}', '\u0000', '{"a":1,}', '{"__proto__":{"is_staff":true}}', '{"constructor":{"prototype":{"x":1}}}')
      .map((text) => ({ kind: 'bad JSON', contentType: 'application/json', payload: text })),
    fc.string({ maxLength: 20 }).filter((s) => { try { JSON.parse(s); return false; } catch { return true; } }).map((text) => ({ kind: 'bad JSON', contentType: 'application/json', payload: text })),
    fc.constant({ kind: 'empty JSON', contentType: 'application/json', payload: '' }),
    // 10k levels (parsed, then refused) and 100k (past JSON.parse's recursion): as the body, or as a field beside a violation.
    fc.tuple(fc.constantFrom(10_000, 100_000), fc.boolean(), badObject(op.body, violation)).map(([n, asArray, entries]) => ({
      kind: 'deep JSON',
      contentType: 'application/json',
      payload: asArray ? deepArray(n) : objectText([['deep', raw(deepObject(n))], ...entries]),
    })),
    badObject(op.body, violation).map((entries) => ({
      kind: 'non-UTF-8 bytes',
      contentType: 'application/json',
      payload: Buffer.concat(objectText([['text', MARK], ...entries]).split(MARK).flatMap((part, i) => (i ? [NON_UTF8, Buffer.from(part)] : [Buffer.from(part)]))),
    })),
    // Not form-encoded: JSON text read as a form is one odd field name, which a route with no
    // required field may take as an empty update (form bodies have their own kind, below).
    fc.tuple(object, fc.constantFrom('text/plain', 'application/xml', 'application/octet-stream', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/jsonx', 'json', '*/*', 'multipart/form-data', 'multipart/form-data; boundary=zzz')).map(([text, type]) => ({
      kind: 'wrong Content-Type',
      contentType: type,
      payload: text,
    })),
    fc.tuple(object, fc.constantFrom(BODY_LIMIT + 1, BODY_LIMIT * 3)).map(([text, size]) => ({
      kind: 'oversized',
      contentType: 'application/json',
      payload: `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"pad":"${'x'.repeat(size)}"}`,
    })),
    fc.tuple(object, fc.constantFrom(0, 1, 10_000_000)).map(([text, length]) => ({
      kind: 'Content-Length mismatch',
      contentType: 'application/json',
      payload: text,
      headers: { 'content-length': String(length === 1 ? text.length + 1 : length) },
    })),
  ];
  const form = badForm(op.body) ?? (op.body ? undefined : fc.array(fc.tuple(oddNames.map(encodeURIComponent), badQueryValue), { maxLength: 4 }).map((p) => p.map(([k, v]) => `${k}=${v}`).join('&')));
  if (form) kinds.push(form.map((text) => ({ kind: 'form-encoded', contentType: 'application/x-www-form-urlencoded', payload: text })));
  return fc.oneof(...kinds);
}

/**
 * Text in the grammars the server parses text with (search syntax, tsquery operators, LIKE
 * patterns, JSON paths, dates), in runs long enough to reach a parser's limits. Issue 20: 33
 * dashes overflowed PostgreSQL's tsquery parser (a 500 on every search), and nothing above could
 * make them: random strings are 30 characters with no runs, and the long ones are past any
 * maxLength, so validation refused them before the search ran. So these runs are cut to the
 * schema's maxLength, to reach the handler.
 */
const SOUP = ['-', '- ', '!', '|', '&', '<->', '(', ')', '"', '" ', "'", ':*', '*', '\\', '%', '_', 'or ', 'OR ', '--', '/*', '$.', '[', '{'];
const operatorSoup = (maxLength: number | undefined) =>
  fc
    .array(fc.oneof(fc.constantFrom(...SOUP), fc.tuple(fc.constantFrom(...SOUP), fc.integer({ min: 8, max: 200 })).map(([t, n]) => t.repeat(n)), fc.constantFrom('x', 'dragon', ' ', '\u0000', 'é')), { minLength: 1, maxLength: 6 })
    .map((parts) => [...parts.join('')].slice(0, maxLength ?? 1_000).join(''));

/** Dates as text that parse badly or to extremes, for the many date fields typed as plain strings. */
const oddDates = fc.constantFrom('2026-13-45', '0000-00-00T00:00:00Z', '9999-12-31T23:59:59.999999Z', '+275760-09-13T00:00:00Z', '-000001-01-01T00:00:00Z', '2026-01-01T00:00:00+25:00', 'now', '2026-02-30', '1e10', '');

/**
 * A value the schema accepts, chosen to hurt what comes after validation: NUL and lone surrogates
 * in text, odd dates, numbers at the edge of every range. Such a request may succeed, so it is
 * judged on its answer only (see the last test).
 */
function hostileValid(s: Schema, depth = 0): fc.Arbitrary<unknown> {
  const choices = choicesOf(s);
  if (choices) return fc.constantFrom(...choices);
  const branches = s.anyOf ?? s.oneOf;
  if (branches) return fc.oneof(...branches.map((b) => hostileValid(b, depth)));
  const types = typesOf(s);
  if (!types || depth > 3) return junk;
  return fc.oneof(
    ...[...types].map((t): fc.Arbitrary<unknown> => {
      switch (t) {
        case 'string':
          return fc.oneof(oddStrings, oddDates, fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom(10_000, 100_000).map((n) => 'x'.repeat(n)), operatorSoup(s.maxLength), operatorSoup(s.maxLength));
        case 'integer':
          return fc.oneof(hugeNumbers.filter(Number.isInteger), fc.integer());
        case 'number':
          return fc.oneof(hugeNumbers, fc.double({ noNaN: true, noDefaultInfinity: true }));
        case 'boolean':
          return fc.boolean();
        case 'null':
          return fc.constant(null);
        case 'array':
          return fc.array(s.items ? hostileValid(s.items, depth + 1) : junk, { maxLength: 3 });
        case 'object':
          return hostileObject(s, depth + 1).map((entries) => Object.fromEntries(entries));
        default:
          return junk;
      }
    }),
  );
}

/** Every required property and some optional ones, each hostile but of its declared type. */
function hostileObject(s: Schema | undefined, depth = 0): fc.Arbitrary<[string, unknown][]> {
  const props = Object.entries(s?.properties ?? {});
  const required = new Set(s?.required ?? []);
  return fc.tuple(...props.map(([name, p]) => (required.has(name) ? hostileValid(p, depth).map((v) => [name, v] as const) : fc.option(hostileValid(p, depth).map((v) => [name, v] as const), { nil: undefined })))).map((entries) => entries.filter((e) => e !== undefined).map(([k, v]) => [k, v] as [string, unknown]));
}

// ---------------------------------------------------------------------------------------------
// Uploads.

const PNG = Buffer.from('89504e470d0a1a0a', 'hex');
/** A PNG header claiming 100000 × 100000 pixels and no image data: an image bomb's first bytes. */
const PNG_BOMB = Buffer.concat([PNG, Buffer.from('0000000d49484452000186a0000186a00806000000', 'hex'), Buffer.alloc(4), Buffer.from('0000000049454e44ae426082', 'hex')]);
const fileBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 2_048 }).map((a) => Buffer.from(a)),
  fc.tuple(fc.constantFrom(PNG, Buffer.from('ffd8ffe0', 'hex'), Buffer.from('GIF89a'), Buffer.from('RIFF\0\0\0\0WEBPVP8 '), Buffer.from('\0\0\0\x1cftypavif')), fc.uint8Array({ maxLength: 512 })).map(([magic, rest]) =>
    Buffer.concat([magic, Buffer.from(rest)]),
  ),
  fc.constantFrom(
    PNG_BOMB,
    Buffer.alloc(0),
    Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    Buffer.from('<?php system($_GET["c"]); ?>'),
    Buffer.from('%PDF-1.4\n'),
    Buffer.from('PK\x03\x04'),
    Buffer.alloc(UPLOAD_LIMIT_MB * 1_048_576 + 1, 0xab),
  ),
);
const fileNames = fc.oneof(
  fc.constantFrom('../../../etc/passwd', '..\\..\\boot.ini', '/etc/shadow', 'C:\\Windows\\win.ini', 'a\u0000.png', '', '.', '..', '.htaccess', 'x.png.php', '%2e%2e%2fx.png', 'ü-ñ-😀.png', 'x'.repeat(5_000) + '.png', 'a;b.png', 'CON', 'x.svg'),
  fc.string({ maxLength: 40 }),
);

/** A multipart upload: odd file name, bytes that are no image, and sometimes broken framing. */
const badUpload: fc.Arbitrary<Payload> = fc
  .record({
    fileName: fileNames,
    field: fc.constantFrom('image', 'image', 'file', 'image[]', ''),
    bytes: fileBytes,
    fileType: fc.constantFrom('image/png', 'image/jpeg', 'application/octet-stream', 'text/html', ''),
    fields: fc.array(fc.tuple(fc.constantFrom('alt_text', 'is_main', 'image_url', 'x'), junk.map((v) => (typeof v === 'string' ? v : JSON.stringify(v) ?? ''))), { maxLength: 3 }),
    files: fc.constantFrom(1, 1, 1, 2, 0),
    framing: fc.constantFrom('ok', 'ok', 'ok', 'no boundary', 'truncated', 'other boundary', 'no closing boundary'),
  })
  .map(({ fileName, field, bytes, fileType, fields, files, framing }) => {
    const boundary = '----fuzzBoundary7MA4YWxkTrZu0gW';
    const parts: Buffer[] = [];
    for (const [name, value] of fields) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value.slice(0, 5_000)}\r\n`));
    for (let i = 0; i < files; i++) {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${fileName}"\r\n${fileType ? `Content-Type: ${fileType}\r\n` : ''}\r\n`), bytes, Buffer.from('\r\n'));
    }
    if (framing !== 'no closing boundary') parts.push(Buffer.from(`--${boundary}--\r\n`));
    let payload = Buffer.concat(parts);
    if (framing === 'truncated') payload = payload.subarray(0, Math.floor(payload.length / 2));
    const contentType = framing === 'no boundary' ? 'multipart/form-data' : `multipart/form-data; boundary=${framing === 'other boundary' ? 'elsewhere' : boundary}`;
    return { kind: `multipart (${framing}, ${files} file(s) in "${field}")`, contentType, payload };
  });

// ---------------------------------------------------------------------------------------------
// The data that must not change.

/** Whole rows of the tables that hold money, stock, people and orders. Guest carts are left out:
 *  an anonymous GET of /api/cart/ makes an empty one by design (§2.3). */
const CHECKED: Record<string, string> = {
  products: 'select * from products',
  categories: 'select * from categories',
  product_images: 'select * from product_images',
  orders: 'select * from orders',
  order_items: 'select * from order_items',
  order_status_history: 'select * from order_status_history',
  payments: 'select * from payments',
  checkouts: 'select * from checkouts',
  stock_reservations: 'select * from stock_reservations',
  users: 'select * from users',
  addresses: 'select * from addresses',
  reviews: 'select * from reviews',
  carts: 'select * from carts where user_id is not null',
  cart_items: 'select * from cart_items',
  promotion_codes: 'select * from promotion_codes',
  campaigns: 'select * from campaigns',
  product_relationships: 'select * from product_relationships',
};

async function snapshot(database: Database): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [table, query] of Object.entries(CHECKED)) {
    const { rows } = await sql<{ n: number; sum: string }>`select count(*)::int as n, md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as sum from (${sql.raw(query)}) t`.execute(database.db);
    out[table] = `${rows[0]!.n} rows, ${rows[0]!.sum}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

type Who = 'anonymous' | 'customer' | 'staff';
const WHO = fc.constantFrom<Who>('anonymous', 'customer', 'staff');

interface FuzzCase {
  who: Who;
  url: string;
  body?: Payload;
}

describe('chaos: every route fuzzed with malformed input', () => {
  let database: Database & { drop(): Promise<void> };
  let app: FastifyInstance;
  let customer: TestUser;
  let staff: TestUser;
  let ops: Operation[];
  let mediaDir: string;
  const SECRET = `secret-${process.pid}-outside-media`;

  before(async () => {
    database = await openTestDatabase('pglite');
    const root = mkdtempSync(join(tmpdir(), 'fuzz-media-'));
    mediaDir = join(root, 'media');
    // A file beside MEDIA_DIR: traversal out of it must never read this.
    writeFileSync(join(root, 'secret.txt'), SECRET);
    app = await testApp(database, { MEDIA_DIR: mediaDir, MEDIA_MAX_UPLOAD_MB: String(UPLOAD_LIMIT_MB) });
    await app.ready();
    ops = operationsOf(app.swagger() as never);
    // Every test below loops over these: none found would fuzz nothing and pass.
    assert.ok(ops.length > 0, 'the OpenAPI document lists the routes to fuzz');
    await fixture();
  });

  after(async () => {
    await app?.close();
    await database?.drop();
    if (mediaDir) rmSync(join(mediaDir, '..'), { recursive: true, force: true });
  });

  /** At least three rows in every table a route's id names; another customer's cart and orders. */
  async function fixture() {
    const d = database.db;
    const products = [];
    for (let i = 0; i < 4; i++) products.push(await f.product(d, { stock_quantity: 50, price: '19.99' }));
    customer = await signedIn(app, database);
    staff = await signedIn(app, database, { staff: true });
    const other = await signedIn(app, database, { first_name: 'Other' });
    const as = (u: TestUser) => ({ host: 'shop.test', ...u.headers });
    for (let i = 0; i < 3; i++) {
      await app.inject({ method: 'POST', url: '/api/cart/add/', headers: as(other), payload: { product_id: products[i]!.id, quantity: 1 } });
      const started = await app.inject({ method: 'POST', url: '/api/payments/create-checkout-session/', headers: as(other), payload: { shipping_address: { name: 'Ada Lovelace', address: '12 St James Sq', city: 'London', postal_code: 'SW1Y', country: 'GB' } } });
      assert.equal(started.statusCode, 200, started.body);
      const paid = await app.inject({ method: 'POST', url: `/api/payments/test-checkout/${started.json().checkout_session_id}/`, headers: { host: 'shop.test', 'content-type': 'application/x-www-form-urlencoded' }, payload: 'outcome=paid' });
      assert.ok(paid.statusCode < 400, paid.body);
    }
    await app.inject({ method: 'POST', url: '/api/cart/add/', headers: as(other), payload: { product_id: products[3]!.id, quantity: 2 } });
    for (const u of [customer, staff, other]) {
      await app.inject({ method: 'GET', url: '/api/cart/', headers: as(u) });
      await app.inject({ method: 'POST', url: '/api/wishlist/add/', headers: as(u), payload: { product_id: products[0]!.id } });
    }
    for (let i = 0; i < 3; i++) {
      await f.review(d, products[i]!.id, other.id, 4);
      await f.image(d, products[i]!.id, { is_main: true });
      await d.insertInto('addresses').values({ user_id: i === 2 ? customer.id : other.id, address_type: 'shipping', street_address: `${i} Main St`, city: 'Springfield', state: 'IL', postal_code: '62701', country: 'US', is_default: i === 0 }).execute();
      const code = await d
        .insertInto('promotion_codes')
        .values({ code: `FUZZ${i}`, discount_type: 'percentage', discount_value: '10.00', usage_type: 'unlimited', valid_from: new Date(Date.now() - 86_400_000).toISOString(), valid_until: new Date(Date.now() + 86_400_000).toISOString() })
        .returning('id')
        .executeTakeFirstOrThrow();
      const campaign = await d.insertInto('campaigns').values({ name: `Campaign ${i}`, start_date: new Date().toISOString(), end_date: new Date(Date.now() + 86_400_000).toISOString() }).returning('id').executeTakeFirstOrThrow();
      await d.insertInto('campaign_codes').values({ campaign_id: campaign.id, promotion_id: code.id }).execute();
      await d.insertInto('product_relationships').values({ product_id: products[i]!.id, related_product_id: products[(i + 1) % 4]!.id, relationship_type: 'similar', strength: '0.50' }).execute();
    }
    const counts = await Promise.all(['orders', 'payments', 'reviews', 'addresses', 'product_images', 'promotion_codes', 'campaigns', 'product_relationships'].map(async (t) => [t, (await sql<{ n: number }>`select count(*)::int as n from ${sql.table(t)}`.execute(d)).rows[0]!.n] as const));
    for (const [t, n] of counts) assert.ok(n >= 3, `fixture: ${t} has ${n} rows`);
  }

  /** Sends one case and says what is wrong with the answer, if anything. */
  const stats = { requests: 0, serverErrors: 0 };
  /** Answers by caller and status, shown under each test: proof that validation behind auth was reached. */
  let tally = new Map<string, number>();
  function showTally(t: { diagnostic(message: string): void }) {
    const rows = [...tally].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}: ${n}`);
    t.diagnostic(`answers by caller and status: ${rows.join(', ')}`);
    tally = new Map();
  }
  async function send(op: Pick<Operation, 'method' | 'path'>, c: FuzzCase): Promise<string | undefined> {
    const headers: Record<string, string> = { host: 'shop.test', ...(c.who === 'customer' ? customer.headers : c.who === 'staff' ? staff.headers : {}) };
    if (c.body?.contentType !== undefined) headers['content-type'] = c.body.contentType;
    Object.assign(headers, c.body?.headers);
    stats.requests++;
    const res = await app.inject({ method: op.method as 'GET', url: c.url, headers, ...(c.body?.payload !== undefined ? { payload: c.body.payload } : {}) });
    const key = `${c.who} ${res.statusCode}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
    const what = () => `${op.method} ${c.url.length > 200 ? `${c.url.slice(0, 200)}…` : c.url} as ${c.who}${c.body ? ` with ${c.body.kind} (${c.body.contentType ?? 'no type'})` : ''} → ${res.statusCode} ${res.body.slice(0, 300)}`;
    if (res.statusCode >= 500) {
      stats.serverErrors++;
      return `5xx: ${what()}`;
    }
    if (res.body.includes(SECRET)) return `read outside MEDIA_DIR: ${what()}`;
    if (res.statusCode >= 400) {
      if (res.body === '' && EMPTY_BODY_ALLOWED[`${op.method} ${op.path}`]?.includes(res.statusCode)) return undefined;
      if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) return `not JSON (${String(res.headers['content-type'])}): ${what()}`;
      const problem = errorShapeProblem(res.statusCode, res.body);
      if (problem) return `${problem}: ${what()}`;
    }
    return undefined;
  }

  /** Runs `arb` against one route with fast-check; a failure (shrunk) is collected, not thrown, so one run shows every bad route. */
  async function fuzz(op: Pick<Operation, 'method' | 'path'>, arb: fc.Arbitrary<FuzzCase>, failures: string[], runs = RUNS) {
    try {
      await fc.assert(
        fc.asyncProperty(arb, async (c) => {
          const problem = await send(op, c);
          if (problem) throw new Error(problem);
        }),
        { seed: SEED, numRuns: runs, endOnFailure: false },
      );
    } catch (err) {
      // fast-check's report names the seed and path to replay it; the problem found is its cause.
      // The counterexample itself can be a megabyte, so it is left out.
      const report = (err as Error).message.split('\n').find((l) => l.includes('seed:')) ?? '';
      const cause = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
      failures.push(`${op.method} ${op.path}: ${cause.slice(0, 1_000)}\n    replay: ${report.trim()}`);
    }
  }

  const isSafe = (op: Operation) => op.method === 'GET';
  const pathParams = (op: Operation) => op.params.filter((p) => p.in === 'path');

  /** The URL with each path parameter either an existing id or malformed; `validIds` false forces at least one malformed. */
  function url(op: Operation, validIds: boolean, query: fc.Arbitrary<string> = fc.constant('')): fc.Arbitrary<string> {
    const params = pathParams(op);
    const values = params.map((p) => (validIds ? fc.oneof(EXISTING_ID.map(String), p.schema.type === 'string' ? fc.constantFrom('TRACK1', '127.0.0.1') : badPathValue) : fc.oneof(EXISTING_ID.map(String), badPathValue)));
    return fc
      .tuple(fc.tuple(...values), fc.nat(Math.max(params.length - 1, 0)), badPathValue, query)
      .map(([vs, forced, bad, q]) => {
        const chosen = [...vs];
        if (!validIds && params.length) chosen[forced] = bad;
        let path = op.path;
        params.forEach((p, i) => (path = path.replace(`{${p.name}}`, chosen[i]!)));
        return q ? `${path}?${q}` : path;
      });
  }

  test('path parameters and query strings: wrong types, huge and negative numbers, traversal, duplicate and odd names, bad encoding', async (t) => {
    const failures: string[] = [];
    const start = { ...stats, data: await snapshot(database) };
    for (const op of ops) {
      // A route with nothing to refuse in its path (no parameters) and a body is sent a body it refuses,
      // so the odd query cannot make a write happen; a write with path parameters gets a malformed one.
      const body = !isSafe(op) && pathParams(op).length === 0 && op.body ? badBodies(op).filter((b) => b.kind !== 'form-encoded' || badForm(op.body) !== undefined) : fc.constant(undefined);
      await fuzz(op, fc.record({ who: WHO, url: url(op, isSafe(op), badQuery(op)), body }), failures);
    }
    // The test provider's payment page is hidden from the document (a page, not API), but takes a
    // session id and a form: named here. Its ids are always malformed, so no checkout is paid.
    for (const method of ['GET', 'POST']) {
      const page: Operation = { method, path: '/api/payments/test-checkout/{id}/', params: [{ name: 'id', in: 'path', schema: { type: 'string' } }], upload: false };
      const form = fc.constantFrom('outcome=paid', 'outcome=failed', 'outcome=%ff', 'outcome=paid&outcome=failed', '', 'outcome[]=paid').map((text): Payload => ({ kind: 'form', contentType: 'application/x-www-form-urlencoded', payload: text }));
      await fuzz(page, fc.record({ who: WHO, url: url(page, false, badQuery(page)), body: method === 'POST' ? form : fc.constant(undefined) }), failures);
    }
    showTally(t);
    await finish('path parameters and query strings of every route', start, failures);
  });

  test('request bodies: wrong types, missing and extra fields, deep and bad JSON, non-UTF-8, wrong Content-Type, oversized', async (t) => {
    const failures: string[] = [];
    const start = { ...stats, data: await snapshot(database) };
    for (const op of ops) {
      if (op.method === 'GET') continue; // GET bodies are never read
      // An existing id only where the body is certain to be refused; otherwise a malformed one,
      // so that a DELETE (no body to refuse) never deletes.
      const refusable = op.body !== undefined && violations(op.body) !== undefined;
      await fuzz(op, fc.record({ who: WHO, url: url(op, refusable), body: badBodies(op) }), failures);
    }
    showTally(t);
    await finish('request bodies of every write route', start, failures);
  });

  test('uploads and media files: odd file names, bytes that are no image, broken multipart, oversized; traversal in /media/ and /static/', async (t) => {
    const failures: string[] = [];
    const start = { ...stats, data: await snapshot(database) };
    const uploads = ops.filter((op) => op.upload);
    assert.ok(uploads.length >= 2, 'the document names the upload routes');
    // Few routes and cheap requests: four times the runs, for the many ways a multipart body can be wrong.
    for (const op of uploads) await fuzz(op, fc.record({ who: WHO, url: url(op, true), body: badUpload }), failures, RUNS * 4);
    // /media/* and /static/* serve files and are hidden from the document (no API of their own), so
    // they are named here: a file name is the one thing that can be fuzzed on them. The other hidden
    // routes (docs pages, /dashboard/, /robots.txt, /metrics, the 405 answers) take no input.
    const mediaPath = fc.oneof(
      fc.constantFrom('../secret.txt', '..%2fsecret.txt', '%2e%2e/secret.txt', '%2e%2e%2fsecret.txt', '..%5csecret.txt', '....//secret.txt', 'private/x.png', 'private%2f..%2f..%2fsecret.txt', '%00', 'a%00.png', '/etc/passwd', '%2fetc%2fpasswd', '%', '%zz', 'x'.repeat(5_000)),
      fc.array(fc.constantFrom('..', '.', '%2e%2e', 'products', 'secret.txt', '%00', '', 'x.webp'), { minLength: 1, maxLength: 6 }).map((s) => s.join('/')),
      fc.string({ maxLength: 30 }).map(encodeURIComponent),
    );
    for (const prefix of ['/media/', '/static/']) await fuzz({ method: 'GET', path: `${prefix}*` }, fc.record({ who: WHO, url: mediaPath.map((p) => `${prefix}${p}`) }), failures, RUNS * 4);
    showTally(t);
    await finish('uploads (multipart, odd names, non-images) and /media/, /static/ traversal', start, failures);
  });

  test('values the schemas accept but that hurt later: NUL and lone surrogates, odd dates, numbers at every edge (answers only)', async (t) => {
    // Every earlier test is refused by validation, so no handler ever sees its values. Here the
    // values pass validation and reach the services and SQL; such a write may succeed, so this test
    // runs last and checks the answers only (no 5xx, contract shapes), not the data.
    const failures: string[] = [];
    const start = { ...stats };
    for (const op of ops) {
      if (!op.body) continue;
      const body = hostileObject(op.body).map((entries): Payload => ({ kind: 'hostile values of the right types', contentType: 'application/json', payload: objectText(entries) }));
      await fuzz(op, fc.record({ who: fc.constantFrom<Who>('customer', 'staff', 'staff'), url: url(op, true), body }), failures);
    }
    const query = ops.filter((op) => op.method === 'GET' && op.params.some((p) => p.in === 'query'));
    for (const op of query) {
      const q = hostileObject({ properties: Object.fromEntries(op.params.filter((p) => p.in === 'query').map((p) => [p.name, p.schema])) }).map((entries) =>
        entries.flatMap(([k, v]) => [v].flat().map((x) => `${pct(k)}=${pct(typeof x === 'string' ? x : JSON.stringify(x) ?? '')}`)).join('&'),
      );
      await fuzz(op, fc.record({ who: WHO, url: url(op, true, q) }), failures);
    }
    showTally(t);
    reportRow({ suite: 'fuzzing', scenario: `schema-valid hostile values reach the services (${RUNS} runs per route; answers checked, writes allowed)`, requests: stats.requests - start.requests, serverErrors: stats.serverErrors - start.serverErrors, checks: 0, checksPassed: 0 });
    assert.deepEqual(failures, [], `\n${failures.join('\n')}`);
  });

  async function finish(scenario: string, start: { requests: number; serverErrors: number; data: Record<string, string> }, failures: string[]) {
    const now = await snapshot(database);
    const changed = Object.keys(CHECKED).filter((t) => now[t] !== start.data[t]);
    const checks = Object.keys(CHECKED).length;
    reportRow({
      suite: 'fuzzing',
      scenario: `${scenario} (${ops.length} operations, ${RUNS} runs each, seed ${SEED})`,
      requests: stats.requests - start.requests,
      serverErrors: stats.serverErrors - start.serverErrors,
      checks,
      checksPassed: checks - changed.length,
    });
    assert.deepEqual(failures, [], `\n${failures.join('\n')}`);
    assert.deepEqual(changed, [], `data changed: ${changed.map((t) => `${t}: ${start.data[t]} → ${now[t]}`).join('; ')}`);
  }
});
