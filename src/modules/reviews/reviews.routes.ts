// Reviews (API-CONTRACT.md §2.2): a product's reviews are public; writing one, and reading or
// changing your own, needs a signed-in user (checked before the body is validated, as DRF does).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ctxOf } from '../../infra/http/context.ts';
import { pageBody } from '../../infra/http/pagination.ts';
import { ErrorBody, IdParams, NoContent, ThrottledBody } from '../../infra/http/schema.ts';
import { ResponseKeys, Tags } from '../../infra/cache/keys.ts';
import { cacheResponse } from '../../infra/cache/response-cache.ts';
import { requireUser, signedInOnly } from '../accounts/auth.ts';
import { Review, ReviewBody, ReviewListQuery, ReviewPage, ReviewPatch, ReviewPut } from './reviews.schemas.ts';
import * as reviews from './reviews.service.ts';
import { rateLimit } from '../../infra/limits/plugin.ts';

const tags = ['reviews'];
const security = [{ bearerAuth: [] }];

export const reviewRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/products/:id/reviews/', {
    config: cacheResponse({ ...ResponseKeys.REVIEW_LIST, tags: (r) => [Tags.product(Number((r.params as { id: string }).id)), Tags.REVIEWERS] }),
    schema: {
      tags,
      summary: "A product's reviews, newest first",
      params: IdParams,
      querystring: ReviewListQuery,
      response: { 200: ReviewPage, 404: ErrorBody },
    },
    handler: async (request) => pageBody(request, await reviews.listReviews(ctxOf(request), request.params.id, request.query)),
  });

  app.post('/api/products/:id/reviews/', {
    schema: {
      tags,
      security,
      summary: 'Review a product (one review per user and product; an unknown or inactive product is 409)',
      params: IdParams,
      body: ReviewBody,
      response: { 201: Review, 400: ErrorBody, 401: ErrorBody, 409: ErrorBody, 429: ThrottledBody },
    },
    config: rateLimit('review_create', '10/day'),
    onRequest: signedInOnly,
    handler: async (request, reply) => {
      reply.code(201);
      return reviews.createReview(ctxOf(request), await requireUser(request), request.params.id, request.body);
    },
  });

  app.get('/api/products/reviews/:id/', {
    schema: { tags, security, summary: 'One of your reviews', params: IdParams, response: { 200: Review, 401: ErrorBody, 404: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => reviews.getOwnReview(ctxOf(request), await requireUser(request), request.params.id),
  });

  app.put('/api/products/reviews/:id/', {
    schema: { tags, security, summary: 'Replace the rating and text of one of your reviews', params: IdParams, body: ReviewPut, response: { 200: Review, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => reviews.updateOwnReview(ctxOf(request), await requireUser(request), request.params.id, request.body),
  });

  app.patch('/api/products/reviews/:id/', {
    schema: { tags, security, summary: 'Change the rating or text of one of your reviews', params: IdParams, body: ReviewPatch, response: { 200: Review, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request) => reviews.updateOwnReview(ctxOf(request), await requireUser(request), request.params.id, request.body),
  });

  app.delete('/api/products/reviews/:id/', {
    schema: { tags, security, summary: 'Delete one of your reviews', params: IdParams, response: { 204: NoContent, 401: ErrorBody, 404: ErrorBody } },
    onRequest: signedInOnly,
    handler: async (request, reply) => {
      await reviews.deleteOwnReview(ctxOf(request), await requireUser(request), request.params.id);
      return reply.code(204).send(null);
    },
  });
};
