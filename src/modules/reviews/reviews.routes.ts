import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ctxOf } from '../../infra/http/context.ts';
import { pageBody } from '../../infra/http/pagination.ts';
import { ErrorBody } from '../../infra/http/schema.ts';
import { ProductIdParams, ReviewListQuery, ReviewPage } from './reviews.schemas.ts';
import { listReviews } from './reviews.service.ts';

export const reviewRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/products/:id/reviews/', {
    schema: {
      tags: ['reviews'],
      summary: "A product's reviews, newest first",
      params: ProductIdParams,
      querystring: ReviewListQuery,
      response: { 200: ReviewPage, 404: ErrorBody },
    },
    handler: async (request) => pageBody(request, await listReviews(ctxOf(request), request.params.id, request.query)),
  });
};
