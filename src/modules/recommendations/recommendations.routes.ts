// /api/recommendations/ (API-CONTRACT.md §2.8): public plain arrays of product cards, and the
// staff's links between products. Thin: schema, who is asking, one service call.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ResponseKeys, Tags } from '../../infra/cache/keys.ts';
import { cacheResponse } from '../../infra/cache/response-cache.ts';
import { ctxOf } from '../../infra/http/context.ts';
import { markPrivate } from '../../infra/http/hooks.ts';
import { ErrorBody, IdParams, NoContent } from '../../infra/http/schema.ts';
import { staffOnly } from '../accounts/auth.ts';
import { ownerOf } from '../accounts/session.ts';
import { ProductCards, RecommendedProducts, Relationship, RelationshipBody } from './recommendations.schemas.ts';
import * as recommendations from './recommendations.service.ts';

const tags = ['recommendations'];
const security = [{ bearerAuth: [] }];
const refused = { 401: ErrorBody, 403: ErrorBody };

export const recommendationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/recommendations/product/:id/', {
    schema: {
      tags,
      summary: "A product's recommendations, best first; records the view for the user or an existing guest session",
      params: IdParams,
      response: { 200: RecommendedProducts, 404: ErrorBody },
    },
    handler: async (request, reply) => {
      // Never kept by a browser or proxy: every visit of a product page is a view to record.
      markPrivate(reply);
      // Reading the session only: a guest without one is not given one for this.
      return recommendations.forProduct(ctxOf(request), await ownerOf(request, reply, false), request.params.id);
    },
  });

  app.get('/api/recommendations/personalized/', {
    schema: { tags, summary: "From the shopper's recent views, topped up with the most viewed products", response: { 200: ProductCards(8) } },
    handler: async (request, reply) => {
      markPrivate(reply);
      return recommendations.personalized(ctxOf(request), await ownerOf(request, reply, false));
    },
  });

  app.get('/api/recommendations/trending/', {
    config: cacheResponse({ ...ResponseKeys.RECOMMENDATIONS, tags: () => [Tags.PRODUCTS] }),
    schema: { tags, summary: 'Most viewed and ordered in the last 7 days (the same for everyone)', response: { 200: ProductCards(12) } },
    handler: async (request) => recommendations.trending(ctxOf(request)),
  });

  app.post('/api/recommendations/relationships/', {
    schema: {
      tags,
      security,
      summary: 'Link a product to another (staff): 201 new, 200 when the same link only changed strength',
      body: RelationshipBody,
      response: { 200: Relationship, 201: Relationship, 400: ErrorBody, ...refused, 409: ErrorBody },
    },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      const { created, relationship } = await recommendations.linkProducts(ctxOf(request), request.body);
      reply.code(created ? 201 : 200);
      return relationship;
    },
  });

  app.delete('/api/recommendations/relationships/:id/', {
    schema: { tags, security, summary: 'Remove a link (staff)', params: IdParams, response: { 204: NoContent, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      await recommendations.unlinkProducts(ctxOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  });
};
