import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ctxOf } from '../../infra/http/context.ts';
import { ErrorBody, ThrottledBody } from '../../infra/http/schema.ts';
import { ResponseKeys, Tags } from '../../infra/cache/keys.ts';
import { cacheResponse } from '../../infra/cache/response-cache.ts';
import { AdvancedSearchQuery, AdvancedSearchResult, QuickSearchQuery, QuickSearchResult } from './search.schemas.ts';
import { advancedSearch, quickSearch } from './search.service.ts';
import { rateLimit } from '../../infra/limits/plugin.ts';

const tags = ['search'];

export const searchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/products/search/', {
    config: { ...cacheResponse({ ...ResponseKeys.SEARCH, tags: () => [Tags.CATEGORY_NAMES] }), ...rateLimit('search', '30/minute') },
    schema: {
      tags,
      summary: 'Search box: up to 10 ranked matches (full text with prefixes, typo-tolerant)',
      querystring: QuickSearchQuery,
      response: { 200: QuickSearchResult, 400: ErrorBody, 429: ThrottledBody },
    },
    handler: async (request) => quickSearch(ctxOf(request), request.query.q),
  });

  app.get('/api/products/advanced-search/', {
    config: { ...cacheResponse({ ...ResponseKeys.ADVANCED_SEARCH, tags: () => [Tags.CATEGORIES] }), ...rateLimit('search', '30/minute') },
    schema: {
      tags,
      summary: 'Filtered, sorted search with facet counts',
      querystring: AdvancedSearchQuery,
      response: { 200: AdvancedSearchResult, 400: ErrorBody, 429: ThrottledBody },
    },
    handler: async (request) => advancedSearch(ctxOf(request), request.query),
  });
};
