// The search grammar fuzzed on both databases (issue 20): whatever a shopper or an attacker types
// into the search box (operator soup, runs of dashes, quotes, parentheses, colons, asterisks,
// backslashes, unicode, NUL, text at the length limit), every search endpoint answers 200 with the
// contract's shape (API-CONTRACT.md §2.2), or the wrapped 400 for text over the 200-character limit.
// Never a 5xx: PostgreSQL's tsquery parser has a fixed operator stack ("tsquery stack too small"
// at 33 nested operators), so the text is tokenized by us before it reaches SQL.
// SEARCH_FUZZ_RUNS and SEARCH_FUZZ_SEED widen the property.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { forEachBackend } from '../helpers/db.ts';
import { getJson, testApp } from '../helpers/app.ts';
import * as f from '../helpers/factories.ts';
import { MAX_TERMS, MAX_WORDS, parseSearch } from '../../src/modules/search/search.text.ts';

const RUNS = Number(process.env.SEARCH_FUZZ_RUNS ?? 60);
const SEED = Number(process.env.SEARCH_FUZZ_SEED ?? 20_261_207);
const LIMIT = 200;

// ---------------------------------------------------------------------------------------------
// The contract's shapes.

const CARD_KEYS = ['average_rating', 'category_name', 'id', 'is_featured', 'is_in_stock', 'main_image', 'name', 'price', 'review_count'];

function cardProblem(c: any): string | undefined {
  if (typeof c !== 'object' || c === null) return 'card is not an object';
  const keys = Object.keys(c).sort();
  if (keys.join() !== CARD_KEYS.join()) return `card keys ${keys.join()}`;
  if (!Number.isInteger(c.id) || typeof c.name !== 'string' || !/^\d+\.\d{2}$/.test(c.price) || typeof c.category_name !== 'string') return 'card field types';
  if (!(c.main_image === null || typeof c.main_image === 'string') || typeof c.is_in_stock !== 'boolean' || typeof c.is_featured !== 'boolean') return 'card field types';
  if (typeof c.average_rating !== 'number' || !Number.isInteger(c.review_count)) return 'card rating types';
  return undefined;
}

const cardsProblem = (cards: unknown) => (Array.isArray(cards) ? cards.map(cardProblem).find(Boolean) : 'results is not an array');

function quickProblem(b: any): string | undefined {
  if (Object.keys(b).sort().join() !== 'count,results') return `keys ${Object.keys(b)}`;
  if (b.results.length > 10 || b.count !== b.results.length) return 'count is not the number returned (≤ 10)';
  return cardsProblem(b.results);
}

function listProblem(b: any): string | undefined {
  if (Object.keys(b).sort().join() !== 'count,next,previous,results') return `keys ${Object.keys(b)}`;
  if (!Number.isInteger(b.count) || !(b.next === null || typeof b.next === 'string') || !(b.previous === null || typeof b.previous === 'string')) return 'page fields';
  return cardsProblem(b.results);
}

function advancedProblem(b: any): string | undefined {
  for (const k of ['results', 'count', 'page', 'per_page', 'total_pages', 'filters']) if (!(k in b)) return `no ${k}`;
  if (![b.count, b.page, b.per_page, b.total_pages].every(Number.isInteger)) return 'counts are not integers';
  const fl = b.filters;
  if (!Array.isArray(fl.categories) || !fl.categories.every((c: any) => Number.isInteger(c.id) && typeof c.name === 'string')) return 'filters.categories';
  if (!Array.isArray(fl.materials) || !fl.materials.every((m: unknown) => typeof m === 'string')) return 'filters.materials';
  for (const r of [fl.price_range, fl.weight_range]) if (typeof r?.min !== 'number' || typeof r?.max !== 'number') return 'filters ranges';
  return cardsProblem(b.results);
}

function wrapped400Problem(b: any): string | undefined {
  return b?.error === true && b.status_code === 400 && typeof b.message === 'string' ? undefined : 'not the wrapped 400';
}

const ENDPOINTS = [
  { name: 'search/', url: (q: string) => `/api/products/search/?q=${q}`, shape: quickProblem },
  { name: 'list ?search=', url: (q: string) => `/api/products/?search=${q}`, shape: listProblem },
  { name: 'advanced-search/', url: (q: string) => `/api/products/advanced-search/?q=${q}`, shape: advancedProblem },
] as const;

/** Percent-encodes every UTF-8 byte (a lone surrogate becomes U+FFFD, as a browser sends it). */
const pct = (text: string) => [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
/** Characters as the schema counts them (code points). */
const length = (text: string) => [...Buffer.from(text, 'utf8').toString('utf8')].length;

// ---------------------------------------------------------------------------------------------
// The grammar's alphabet: websearch's and to_tsquery's operators, quotes, dashes, parentheses,
// colons, asterisks, backslashes, words that are operators, unicode, NUL; in runs of any length.

const tokens = fc.constantFrom(
  '-', '!', '|', '&', '<->', '<2>', '(', ')', '"', "'", ':', ':*', '*', '\\', '\\\\', ' ', '  ', '\t', '\n', ',', '.', '+', '~', '%', '_',
  'or', 'OR', 'and', 'not', 'a', 'the', 'drag', 'dragon', 'vase', 'lamp', 'x', '3d', "it's", 'a:*', "'x':*", 'Dragon', 'minia', 'moon',
  '\u0000', '\ud800', '\uffff', 'é', 'ß', 'İ', '日本', 'پاسارگاد', '\u200c', '\u0301', '🐉', '‮', '١٢٣',
);
const run = fc.tuple(tokens, fc.integer({ min: 1, max: 120 }), fc.constantFrom('', ' ')).map(([t, n, sep]) => (t + sep).repeat(n));
const grammarText = fc
  .array(fc.oneof({ weight: 3, arbitrary: tokens }, { weight: 2, arbitrary: run }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) }), { minLength: 1, maxLength: 12 })
  .map((parts) => parts.join(''));

/** Text cut to the limit (most cases), so it reaches the search itself rather than validation. */
const underLimit = grammarText.map((t) => [...t].slice(0, LIMIT).join(''));

// Deterministic members of the class, found by hand and by the attackers of issue 20.
const KNOWN = [
  '- '.repeat(99).trim(),
  '-'.repeat(199),
  '-'.repeat(33) + 'x',
  '- '.repeat(40) + 'dragon',
  '!'.repeat(100),
  '|'.repeat(100),
  '<->'.repeat(60),
  '('.repeat(150),
  '"a" '.repeat(50),
  '"-" '.repeat(50),
  '" '.repeat(100),
  'or '.repeat(66),
  'dragon or '.repeat(20),
  'x -'.repeat(66),
  ':*'.repeat(100),
  'a:* b:* c:* ' + 'd:*'.repeat(40),
  "'dragon':* | 'vase':*",
  '\\'.repeat(200),
  'dragon\u0000vase',
  '\u0000'.repeat(50),
  'drag '.repeat(40),
  'd r a g o n '.repeat(16),
  'x'.repeat(200),
  '"' + 'dragon '.repeat(28) + '"',
  '-"' + 'moon lamp '.repeat(10) + '"',
];

test('the tokenizer: words, phrases, OR, one negation per term; every other character separates; within its caps', () => {
  assert.deepEqual(parseSearch('--vase "moon lamp" or t-shirt :* a'), {
    tsquery: "(!'vase':* & ('moon':* <-> 'lamp':*)) | (('t' <-> 'shirt':*) & 'a')",
    plain: 'moon lamp t shirt a',
    terms: 4,
    words: 6,
  });
  assert.equal(parseSearch("'dragon':* | !vase & (x <-> y)")!.tsquery, "('dragon':* & 'vase':* & 'x' & 'y')");
  assert.equal(parseSearch('- - - -'), undefined);
  assert.equal(parseSearch('!|&()<->:*\\\u0000'), undefined);
  assert.equal(parseSearch('or')!.tsquery, "('or':*)", 'a lone or is a word');
  assert.equal(parseSearch('lamp or')!.tsquery, "('lamp':* & 'or':*)", 'so is a trailing one');
  assert.equal(parseSearch('x '.repeat(100))!.terms, MAX_TERMS);
  assert.equal(parseSearch('"' + 'ab '.repeat(60) + '"')!.words, 8);
  assert.equal(parseSearch(`"${'ab '.repeat(8)}" `.repeat(10))!.words, MAX_WORDS);
});

forEachBackend('search grammar fuzzed', ({ db, backend }) => {
  let app: FastifyInstance;

  before(async () => {
    const d = db().db;
    const minis = (await f.category(d, { name: 'Miniatures' })).id;
    await f.product(d, { name: 'Articulated Dragon', description: 'A flexible 3D printed toy', category_id: minis, material: 'PLA' });
    await f.product(d, { name: 'Spiral Vase', description: 'Decor piece with a dragon motif', material: 'Silk PLA' });
    await f.product(d, { name: 'Moon Lamp', description: 'Lithophane lamp', material: 'PETG' });
    await f.product(d, { name: 'Tür Schild für Pasargad پاسارگاد', description: 'Ünïcödé 日本', material: 'Resin' });
    app = await testApp(db());
  });
  after(() => app.close());

  async function problem(text: string): Promise<string | undefined> {
    for (const e of ENDPOINTS) {
      const r = await getJson(app, e.url(pct(text)));
      const tooLong = length(text) > LIMIT;
      const p = tooLong ? (r.status === 400 ? wrapped400Problem(r.body) : `status ${r.status}`) : r.status === 200 ? e.shape(r.body) : `status ${r.status}`;
      if (p) return `${e.name} [${backend}] ${JSON.stringify(text).slice(0, 120)} (${text.length} chars) → ${r.status} ${p}: ${JSON.stringify(r.body).slice(0, 200)}`;
    }
    return undefined;
  }

  test('operator soup found by the attackers of issue 20: 200 and the contract shape on all three endpoints', async () => {
    const failures: string[] = [];
    for (const text of KNOWN) {
      const p = await problem(text);
      if (p) failures.push(p);
    }
    assert.deepEqual(failures, []);
  });

  test('property: any text built from the grammar alphabet (runs, quotes, NUL, unicode, at the limit) is 200 with the shape', async () => {
    await fc.assert(
      fc.asyncProperty(underLimit, async (text) => {
        const p = await problem(text);
        if (p) throw new Error(p);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  test('property: over the 200-character limit is the wrapped 400, never a 5xx', async () => {
    const over = fc.tuple(grammarText, fc.integer({ min: LIMIT + 1, max: 2_000 })).map(([t, n]) => (t.length ? t : '-').repeat(Math.ceil(n / Math.max(t.length, 1))).slice(0, n));
    await fc.assert(
      fc.asyncProperty(over.filter((t) => length(t) > LIMIT), async (text) => {
        const p = await problem(text);
        if (p) throw new Error(p);
      }),
      { seed: SEED, numRuns: Math.max(5, Math.floor(RUNS / 4)) },
    );
  });

  test('property: the tokenizer keeps words, phrases, OR and negation, within its caps, and PostgreSQL always parses what it makes', async () => {
    await fc.assert(
      fc.asyncProperty(grammarText, async (text) => {
        const parsed = parseSearch(text);
        if (!parsed) return;
        assert.ok(parsed.terms <= MAX_TERMS, `${parsed.terms} terms`);
        assert.ok(parsed.words <= MAX_WORDS && (parsed.tsquery.match(/:\*/g) ?? []).length <= MAX_WORDS, `${parsed.words} words`);
        assert.match(parsed.tsquery, /^[\p{L}\p{M}\p{N}'!:*|&()<> -]+$/u);
        assert.ok(!parsed.plain.includes('\u0000'));
        await sql`select to_tsquery('english', ${parsed.tsquery})::text as q, word_similarity(${parsed.plain}, 'dragon') as s`.execute(db().db);
      }),
      { seed: SEED, numRuns: RUNS * 4 },
    );
  });

  test('the grammar still means what a shopper means', async () => {
    const ids = async (q: string) => ((await getJson(app, `/api/products/search/?q=${encodeURIComponent(q)}`)).body.results as { name: string }[]).map((p) => p.name).sort();
    assert.deepEqual(await ids('dragon -vase'), ['Articulated Dragon']);
    assert.deepEqual(await ids('--vase dragon'), ['Articulated Dragon'], 'a run of dashes is one negation');
    assert.deepEqual(await ids('"moon lamp"'), ['Moon Lamp']);
    assert.deepEqual(await ids('vase or lamp'), ['Moon Lamp', 'Spiral Vase']);
    assert.deepEqual(await ids('vase OR lamp'), ['Moon Lamp', 'Spiral Vase']);
    assert.deepEqual(await ids('- - - - dragon'), ['Articulated Dragon', 'Spiral Vase'], 'stray dashes are dropped');
    assert.deepEqual(await ids('dragon:* | vase'), ['Spiral Vase'], 'operators are separators, not syntax: dragon and vase');
    assert.deepEqual(await ids('پاسارگاد'), ['Tür Schild für Pasargad پاسارگاد']);
    assert.deepEqual(await ids('Tür'), ['Tür Schild für Pasargad پاسارگاد']);
  });
});
