// /api/promotions/ (API-CONTRACT.md §2.7, with §4.6): the public list of active codes, validate/
// and apply/ for anyone (a signed-in caller's own uses and orders count), and staff management
// of codes and campaigns with usage analytics. Staff checks run before the body is validated.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ResponseKeys, Tags } from '../../infra/cache/keys.ts';
import { cacheResponse } from '../../infra/cache/response-cache.ts';
import { ctxOf } from '../../infra/http/context.ts';
import { markPrivate } from '../../infra/http/hooks.ts';
import { pageBody } from '../../infra/http/pagination.ts';
import { ErrorBody, IdParams, MixedErrorBody, NoContent } from '../../infra/http/schema.ts';
import { rateLimit } from '../../infra/limits/plugin.ts';
import { currentUser, staffOnly } from '../accounts/auth.ts';
import {
  Analytics,
  AnalyticsQuery,
  ApplyBody,
  ApplyResult,
  Campaign,
  CampaignBody,
  CampaignPage,
  CampaignPatch,
  PageQuery,
  Promotion,
  PromotionBody,
  PromotionPage,
  PromotionPatch,
  ValidateBody,
  ValidateResult,
} from './promotions.schemas.ts';
import * as promotions from './promotions.service.ts';

const tags = ['promotions'];
const security = [{ bearerAuth: [] }];
const refused = { 401: ErrorBody, 403: ErrorBody };
const AdHoc = MixedErrorBody('{"error": "…"}, or the wrapped error for a body that is not JSON');

/** The answer depends on who asks (their uses, their orders): never kept by a shared cache. */
async function personal(_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  markPrivate(reply);
}

/** No body at all is a body without a code: the contract's `{"error": …}`, not a schema error. */
async function bodyOrEmpty(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

async function callerId(request: FastifyRequest): Promise<number | null> {
  return (await currentUser(request))?.id ?? null;
}

export const promotionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/promotions/active/', {
    // Each code shows its products' cards and its categories, so their writes drop the list too.
    config: cacheResponse({ ...ResponseKeys.ACTIVE_PROMOTIONS, tags: () => [Tags.PROMOTIONS, Tags.PRODUCTS, Tags.CATEGORIES] }),
    schema: { tags, summary: 'Active codes within their validity window, except those for signed-in customers only', querystring: PageQuery, response: { 200: PromotionPage, 404: ErrorBody } },
    handler: async (request) => pageBody(request, await promotions.listActive(ctxOf(request), request.query)),
  });

  app.post('/api/promotions/validate/', {
    // Codes are secrets of a kind: trying them is limited, with apply/ (one count).
    config: rateLimit('promotion', '30/minute'),
    schema: {
      tags,
      summary: 'Whether a code can be used on an order amount, and the discount it gives (200 either way; a missing code is 400)',
      body: ValidateBody,
      response: { 200: ValidateResult, 400: AdHoc, 401: ErrorBody },
    },
    onRequest: personal,
    preValidation: bodyOrEmpty,
    handler: async (request) => promotions.validateCode(ctxOf(request), await callerId(request), request.body),
  });

  app.post('/api/promotions/apply/', {
    config: rateLimit('promotion', '30/minute'),
    schema: {
      tags,
      summary: 'The discount a code gives on a subtotal and cart; nothing is redeemed (the checkout does that)',
      body: ApplyBody,
      response: { 200: ApplyResult, 400: AdHoc, 401: ErrorBody, 404: AdHoc },
    },
    onRequest: personal,
    preValidation: bodyOrEmpty,
    handler: async (request) => promotions.applyCode(ctxOf(request), await callerId(request), request.body),
  });

  app.get('/api/promotions/codes/', {
    schema: { tags, security, summary: 'Every code, newest first (staff)', querystring: PageQuery, response: { 200: PromotionPage, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => pageBody(request, await promotions.listPromotions(ctxOf(request), request.query)),
  });

  app.post('/api/promotions/codes/', {
    schema: { tags, security, summary: 'Create a code; an empty code gets a random one (staff)', body: PromotionBody, response: { 201: Promotion, 400: ErrorBody, ...refused } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      reply.code(201);
      return promotions.createPromotion(ctxOf(request), request.body);
    },
  });

  app.get('/api/promotions/codes/:id/', {
    schema: { tags, security, summary: 'One code (staff)', params: IdParams, response: { 200: Promotion, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => promotions.getPromotion(ctxOf(request), request.params.id),
  });

  app.put('/api/promotions/codes/:id/', {
    schema: { tags, security, summary: 'Replace a code (staff)', params: IdParams, body: PromotionBody, response: { 200: Promotion, 400: ErrorBody, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => promotions.updatePromotion(ctxOf(request), request.params.id, request.body),
  });

  app.patch('/api/promotions/codes/:id/', {
    schema: { tags, security, summary: 'Change some fields of a code (staff)', params: IdParams, body: PromotionPatch, response: { 200: Promotion, 400: ErrorBody, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => promotions.updatePromotion(ctxOf(request), request.params.id, request.body),
  });

  app.delete('/api/promotions/codes/:id/', {
    schema: { tags, security, summary: 'Delete a code and its usage history (staff)', params: IdParams, response: { 204: NoContent, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      await promotions.deletePromotion(ctxOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  });

  app.get('/api/promotions/campaigns/', {
    schema: { tags, security, summary: 'Every campaign, newest first (staff)', querystring: PageQuery, response: { 200: CampaignPage, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => pageBody(request, await promotions.listCampaigns(ctxOf(request), request.query)),
  });

  app.post('/api/promotions/campaigns/', {
    schema: { tags, security, summary: 'Create a campaign (staff)', body: CampaignBody, response: { 201: Campaign, 400: ErrorBody, ...refused } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      reply.code(201);
      return promotions.createCampaign(ctxOf(request), request.body);
    },
  });

  app.get('/api/promotions/campaigns/:id/', {
    schema: { tags, security, summary: 'One campaign (staff)', params: IdParams, response: { 200: Campaign, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => promotions.getCampaign(ctxOf(request), request.params.id),
  });

  app.put('/api/promotions/campaigns/:id/', {
    schema: { tags, security, summary: 'Replace a campaign (staff)', params: IdParams, body: CampaignBody, response: { 200: Campaign, 400: ErrorBody, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => promotions.updateCampaign(ctxOf(request), request.params.id, request.body),
  });

  app.patch('/api/promotions/campaigns/:id/', {
    schema: { tags, security, summary: 'Change some fields of a campaign (staff)', params: IdParams, body: CampaignPatch, response: { 200: Campaign, 400: ErrorBody, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => promotions.updateCampaign(ctxOf(request), request.params.id, request.body),
  });

  app.delete('/api/promotions/campaigns/:id/', {
    schema: { tags, security, summary: 'Delete a campaign; its codes stay (staff)', params: IdParams, response: { 204: NoContent, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      await promotions.deleteCampaign(ctxOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  });

  app.get('/api/promotions/analytics/', {
    schema: { tags, security, summary: 'Per code: orders placed with it in the date range, discount given, customers (staff)', querystring: AnalyticsQuery, response: { 200: Analytics, 400: ErrorBody, ...refused } },
    onRequest: staffOnly,
    handler: async (request) => promotions.promotionAnalytics(ctxOf(request), request.query),
  });
};
