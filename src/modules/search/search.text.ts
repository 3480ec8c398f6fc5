// Free-text search input: our own tokenizer for the shopper's search syntax, and the tsquery
// text it makes. No shopper text ever reaches PostgreSQL's query parsers (websearch_to_tsquery,
// to_tsquery): those keep a fixed operator stack, and 33 dashes ('-'.repeat(33)) or '- - - …'
// overflow it ("tsquery stack too small", a 500). What reaches SQL is built here from words
// alone, with a bounded shape: at most MAX_TERMS terms and MAX_WORDS words, one negation each,
// phrases of at most MAX_PHRASE_WORDS words, words of at most MAX_WORD characters. A word of
// one character is matched whole, not as a prefix (a prefix of one letter is most of the index).

/** Search text is read up to this many characters (the route schemas refuse more, 400). */
export const MAX_TEXT = 200;
/** Words and phrases kept, across every OR branch; the rest is dropped. */
export const MAX_TERMS = 16;
export const MAX_PHRASE_WORDS = 8;
/** Words in all (each is a prefix scan of the index); the rest is dropped. */
export const MAX_WORDS = 32;
export const MAX_WORD = 50;

/** A search the SQL can run: the prefix tsquery and the positive words for the typo fallback. */
export interface ParsedSearch {
  /** For `to_tsquery('english', …)`: quoted words only (letters, marks, digits), `:*`, `!`, `&`, `|`, `<->`, parentheses. */
  tsquery: string;
  /** The positive words, space-separated, for trigram similarity (may be empty). */
  plain: string;
  /** Words and phrases kept. */
  terms: number;
  /** Words kept, in all. */
  words: number;
}

interface Term {
  words: string[];
  negated: boolean;
}

// A word is letters, combining marks and digits (so accents written as combining marks and "3d"
// stay one word). Everything else separates words.
const WORD = /[\p{L}\p{M}\p{N}]+/gu;
const wordsOf = (text: string) => (text.match(WORD) ?? []).map((w) => [...w].slice(0, MAX_WORD).join(''));
/** Whether a word character (a whole code point, astral ones too) starts at `i`. */
const wordAt = (text: string, i: number) => /^[\p{L}\p{M}\p{N}]/u.test(text.slice(i, i + 2));

/**
 * The shopper's syntax, as websearch_to_tsquery reads it, from a bounded grammar:
 *   "quoted phrase"    the words in order (an unclosed quote runs to the end)
 *   -word, -"phrase"   excluded (a run of dashes is one exclusion; a lone dash is dropped)
 *   a or b             either side (any case; a leading or trailing `or` is a word)
 *   word-word          the parts as a phrase (t-shirt)
 * Every other character (operators of either tsquery syntax, colons, asterisks, backslashes,
 * NUL, punctuation) only separates words. Returns undefined when no word is left.
 */
export function parseSearch(q: string | undefined): ParsedSearch | undefined {
  if (!q) return undefined;
  const text = [...q.slice(0, 2 * MAX_TEXT)].slice(0, MAX_TEXT).join('');
  const groups: Term[][] = [[]];
  let terms = 0;
  let words = 0;
  let orPending = false;
  let i = 0;
  const add = (found: string[], negated: boolean) => {
    const kept = found.slice(0, Math.min(MAX_PHRASE_WORDS, MAX_WORDS - words));
    if (kept.length === 0 || terms >= MAX_TERMS) return;
    if (orPending && groups[groups.length - 1]!.length) groups.push([]);
    orPending = false;
    groups[groups.length - 1]!.push({ words: kept, negated });
    terms++;
    words += kept.length;
  };
  while (i < text.length && terms < MAX_TERMS && words < MAX_WORDS) {
    const ch = text[i]!;
    // A term starts at a dash run, a quote or a word character; anything else separates.
    if (!(ch === '-' || ch === '"' || wordAt(text, i))) {
      i++;
      continue;
    }
    let negated = false;
    if (ch === '-') {
      while (text[i] === '-') i++;
      if (!(text[i] === '"' || wordAt(text, i))) continue; // a stray dash
      negated = true;
    }
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      const inner = end === -1 ? text.slice(i + 1) : text.slice(i + 1, end);
      i = end === -1 ? text.length : end + 1;
      add(wordsOf(inner), negated);
      continue;
    }
    // A bare token: word characters joined by single dashes (t-shirt).
    const m = /^[\p{L}\p{M}\p{N}]+(?:-[\p{L}\p{M}\p{N}]+)*/u.exec(text.slice(i, i + MAX_TEXT))!;
    i += m[0].length;
    const bare = wordsOf(m[0]);
    if (!negated && bare.length === 1 && bare[0]!.toLowerCase() === 'or') {
      // An OR between two terms; one that ends the text, or starts it, is just a word.
      if (terms > 0 && /[\p{L}\p{M}\p{N}"]/u.test(text.slice(i))) {
        orPending = true;
        continue;
      }
    }
    add(bare, negated);
  }
  const kept = groups.filter((g) => g.length > 0);
  if (kept.length === 0) return undefined;
  const lexeme = (w: string) => ([...w].length > 1 ? `'${w}':*` : `'${w}'`);
  const term = (t: Term) => `${t.negated ? '!' : ''}${t.words.length > 1 ? `(${t.words.map(lexeme).join(' <-> ')})` : lexeme(t.words[0]!)}`;
  const tsquery = kept.map((g) => `(${g.map(term).join(' & ')})`).join(' | ');
  const plain = kept
    .flat()
    .filter((t) => !t.negated)
    .flatMap((t) => t.words)
    .join(' ');
  return { tsquery, plain, terms, words };
}
