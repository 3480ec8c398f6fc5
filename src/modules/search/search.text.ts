// Free-text input as the search SQL expects it.

/**
 * Keeps letters, digits, spaces, double quotes (phrases) and hyphens (exclusions): everything
 * websearch syntax needs, and nothing that could end up inside a lexeme as a quote.
 */
export function normaliseSearch(q: string | undefined): string {
  if (!q) return '';
  return q
    .replace(/[^\p{L}\p{N}\s"-]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
}
