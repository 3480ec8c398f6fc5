// Staff catalog management and the low-stock report (API-CONTRACT.md §2.2). The staff check runs
// before the body is validated, as DRF checks permissions first: a caller who may not write
// learns nothing about the body.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { markPrivate } from '../../infra/http/hooks.ts';
import { ctxOf } from '../../infra/http/context.ts';
import { AppError } from '../../infra/http/errors.ts';
import { AdHocError, ErrorBody, IdParams, NoContent } from '../../infra/http/schema.ts';
import { currentUser, staffOnly } from '../accounts/auth.ts';
import * as admin from './catalog.admin.service.ts';
import { Category, CategoryBody, CategoryPatch, LowStockResult, ProductBody, ProductDetail, ProductPatch } from './catalog.schemas.ts';

const tags = ['catalog'];
const security = [{ bearerAuth: [] }];
const refused = { 401: ErrorBody, 403: ErrorBody };

/** The contract's low-stock refusal: 403 `{"error":"Permission denied"}`, anonymous callers included. */
async function staffOrDenied(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  markPrivate(reply);
  const user = await currentUser(request);
  if (!user?.is_staff) throw new AppError('permission_denied', { body: { error: 'Permission denied' } });
}

/** `category_id` is accepted for `category`. */
async function categoryAlias(request: FastifyRequest): Promise<void> {
  const body = request.body as Record<string, unknown> | null;
  if (body && typeof body === 'object' && body.category === undefined && body.category_id !== undefined) body.category = body.category_id;
}

export const catalogAdminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/api/products/', {
    schema: { tags, security, summary: 'Create a product (staff)', body: ProductBody, response: { 201: ProductDetail, 400: ErrorBody, ...refused } },
    onRequest: staffOnly,
    preValidation: categoryAlias,
    handler: async (request, reply) => {
      reply.code(201);
      return admin.createProduct(ctxOf(request), request.body);
    },
  });

  app.put('/api/products/:id/', {
    schema: { tags, security, summary: 'Replace a product, active or not (staff)', params: IdParams, body: ProductBody, response: { 200: ProductDetail, 400: ErrorBody, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    preValidation: categoryAlias,
    handler: async (request) => admin.updateProduct(ctxOf(request), request.params.id, request.body),
  });

  app.patch('/api/products/:id/', {
    schema: { tags, security, summary: 'Change some fields of a product, active or not (staff)', params: IdParams, body: ProductPatch, response: { 200: ProductDetail, 400: ErrorBody, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    preValidation: categoryAlias,
    handler: async (request) => admin.updateProduct(ctxOf(request), request.params.id, request.body),
  });

  app.delete('/api/products/:id/', {
    schema: { tags, security, summary: 'Deactivate a product; its order history stays (staff)', params: IdParams, response: { 204: NoContent, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      await admin.deactivateProduct(ctxOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  });

  app.post('/api/products/categories/', {
    schema: { tags, security, summary: 'Create a category (staff)', body: CategoryBody, response: { 201: Category, 400: ErrorBody, ...refused } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      reply.code(201);
      return admin.createCategory(ctxOf(request), request.body);
    },
  });

  app.put('/api/products/categories/:id/', {
    schema: { tags, security, summary: 'Replace a category, active or not (staff)', params: IdParams, body: CategoryBody, response: { 200: Category, 400: ErrorBody, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => admin.updateCategory(ctxOf(request), request.params.id, request.body),
  });

  app.patch('/api/products/categories/:id/', {
    schema: { tags, security, summary: 'Change some fields of a category, active or not (staff)', params: IdParams, body: CategoryPatch, response: { 200: Category, 400: ErrorBody, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => admin.updateCategory(ctxOf(request), request.params.id, request.body),
  });

  app.delete('/api/products/categories/:id/', {
    schema: { tags, security, summary: 'Deactivate a category; its products stay as they are (staff)', params: IdParams, response: { 204: NoContent, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      await admin.deactivateCategory(ctxOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  });

  app.get('/api/products/low-stock/', {
    schema: {
      tags,
      security,
      summary: 'Active products with 0 < stock ≤ their low-stock threshold, lowest stock first (staff)',
      response: { 200: LowStockResult, 401: ErrorBody, 403: AdHocError },
    },
    onRequest: staffOrDenied,
    handler: async (request) => admin.lowStock(ctxOf(request)),
  });
};
