// Catalog routes (API-CONTRACT.md §2.2): the public reads here, staff management in
// catalog.admin.routes.ts. Thin: schema, one service call, the page body.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ctxOf } from '../../infra/http/context.ts';
import { pageBody } from '../../infra/http/pagination.ts';
import { ErrorBody, IdParams } from '../../infra/http/schema.ts';
import { ResponseKeys, Tags } from '../../infra/cache/keys.ts';
import { cacheResponse } from '../../infra/cache/response-cache.ts';
import { catalogAdminRoutes } from './catalog.admin.routes.ts';
import { Category, CategoryPage, PageOnlyQuery, ProductCardPage, ProductDetail, ProductListQuery } from './catalog.schemas.ts';
import * as catalog from './catalog.service.ts';

const tags = ['catalog'];

export const catalogRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/products/', {
    // Each page names its query's dimensions and its cards as it is made (catalog.tags.ts).
    config: cacheResponse({ ...ResponseKeys.PRODUCT_LIST, tags: () => [Tags.CATEGORY_NAMES] }),
    schema: {
      tags,
      summary: 'Active products, filtered, ordered and paginated',
      querystring: ProductListQuery,
      response: { 200: ProductCardPage, 400: ErrorBody, 404: ErrorBody },
    },
    handler: async (request) => pageBody(request, await catalog.listProducts(ctxOf(request), request.query)),
  });

  app.get('/api/products/featured/', {
    config: cacheResponse({ ...ResponseKeys.FEATURED_PRODUCTS, tags: () => [Tags.CATEGORY_NAMES] }),
    schema: { tags, summary: 'Active featured products, newest first', querystring: PageOnlyQuery, response: { 200: ProductCardPage, 404: ErrorBody } },
    handler: async (request) => pageBody(request, await catalog.listFeatured(ctxOf(request), request.query)),
  });

  app.get('/api/products/categories/', {
    config: cacheResponse({ ...ResponseKeys.CATEGORY_LIST, tags: () => [Tags.CATEGORIES, Tags.CATEGORY_COUNTS] }),
    schema: { tags, summary: 'Active categories', querystring: PageOnlyQuery, response: { 200: CategoryPage, 404: ErrorBody } },
    handler: async (request) => pageBody(request, await catalog.listCategories(ctxOf(request), request.query)),
  });

  app.get('/api/products/categories/:id/', {
    config: cacheResponse({ ...ResponseKeys.CATEGORY_DETAIL, tags: () => [Tags.CATEGORIES, Tags.CATEGORY_COUNTS] }),
    schema: { tags, summary: 'One active category', params: IdParams, response: { 200: Category, 404: ErrorBody } },
    handler: async (request) => catalog.getCategory(ctxOf(request), request.params.id),
  });

  app.get('/api/products/:id/', {
    // The page shows the product, its category (with its product count: named by the service) and
    // its reviewers' names.
    config: cacheResponse({ ...ResponseKeys.PRODUCT_DETAIL, tags: (r) => [Tags.product(Number((r.params as { id: string }).id)), Tags.CATEGORIES, Tags.REVIEWERS] }),
    schema: { tags, summary: 'One active product with category, images and reviews', params: IdParams, response: { 200: ProductDetail, 404: ErrorBody } },
    handler: async (request) => catalog.getProduct(ctxOf(request), request.params.id),
  });

  await app.register(catalogAdminRoutes);
};
