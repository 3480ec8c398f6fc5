// DRF PageNumberPagination, as the storefront knows it (API-CONTRACT.md §1.5): `page` (1-based or
// `last`; anything else or out of range is 404 "Invalid page."), `page_size` 1-100 on catalog
// lists (§4.1), and absolute next/previous links.
import type { FastifyRequest } from 'fastify';
import { AppError } from './errors.ts';
import { requestOrigin } from './urls.ts';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

export interface PageQuery {
  page?: string;
  page_size?: string;
}

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

/** `page_size` as DRF treats it: invalid or below 1 → default, above the maximum → the maximum. */
export function pageSize(raw: string | undefined): number {
  if (raw === undefined || !/^\d+$/.test(raw)) return DEFAULT_PAGE_SIZE;
  const n = raw.length > 6 ? MAX_PAGE_SIZE + 1 : Number(raw);
  return n < 1 ? DEFAULT_PAGE_SIZE : Math.min(n, MAX_PAGE_SIZE);
}

/** The requested page as a number, or 'last'. Throws 404 "Invalid page." for anything else. */
export function requestedPage(raw: string | undefined): number | 'last' {
  if (raw === undefined || raw === '') return 1;
  if (raw === 'last') return 'last';
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new AppError('invalid_page');
  return Number(raw);
}

/** Resolves 'last' and checks the page exists for `count` rows (page 1 always does). */
export function resolvePage(page: number | 'last', size: number, count: number): number {
  const pages = Math.max(1, Math.ceil(count / size));
  const n = page === 'last' ? pages : page;
  if (n > pages) throw new AppError('invalid_page');
  return n;
}

function pageUrl(request: FastifyRequest, page: number): string {
  const url = request.url;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const params = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  if (page === 1) params.delete('page');
  else params.set('page', String(page));
  params.sort();
  const query = params.toString();
  return `${requestOrigin(request)}${path}${query ? `?${query}` : ''}`;
}

export interface PageResult<T> {
  results: T[];
  count: number;
  page: number;
  size: number;
}

/** The contract's paginated body, with absolute next/previous links for this request. */
export function pageBody<T>(request: FastifyRequest, r: PageResult<T>): Page<T> {
  const pages = Math.max(1, Math.ceil(r.count / r.size));
  return {
    count: r.count,
    next: r.page < pages ? pageUrl(request, r.page + 1) : null,
    previous: r.page > 1 ? pageUrl(request, r.page - 1) : null,
    results: r.results,
  };
}

/**
 * Runs a paginated read with a fixed number of statements: the count and the page together when
 * the page number is known (a page past the end is then discarded), the count first for `last`.
 */
export async function paginate<T>(
  query: PageQuery,
  count: () => Promise<number>,
  rows: (limit: number, offset: number) => Promise<T[]>,
  size = pageSize(query.page_size),
): Promise<PageResult<T>> {
  const wanted = requestedPage(query.page);
  if (wanted === 'last') {
    const total = await count();
    const page = resolvePage(wanted, size, total);
    return { results: await rows(size, (page - 1) * size), count: total, page, size };
  }
  const [total, results] = await Promise.all([count(), rows(size, (wanted - 1) * size)]);
  return { results, count: total, page: resolvePage(wanted, size, total), size };
}
