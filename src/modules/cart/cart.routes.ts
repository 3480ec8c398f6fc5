// /api/cart/ (API-CONTRACT.md §2.3): public; a signed-in user's cart, else the guest session's
// (the session starts on first use).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ctxOf } from '../../infra/http/context.ts';
import { privateResponses } from '../../infra/http/hooks.ts';
import { ErrorBody, MixedErrorBody } from '../../infra/http/schema.ts';
import { requireUser, signedInOnly } from '../accounts/auth.ts';
import { ownerOf } from '../accounts/session.ts';
import { AddBody, Cart, ItemParams, MergeBody, UpdateBody } from './cart.schemas.ts';
import * as cart from './cart.service.ts';

const tags = ['cart'];
const raw = { rawErrors: true };
const Refused = MixedErrorBody('Raw field errors, e.g. {"quantity":["This field is required."]}, or {"error": "…"}');

export const cartRoutes: FastifyPluginAsyncTypebox = async (app) => {
  privateResponses(app);
  app.get('/api/cart/', {
    schema: { tags, summary: 'The current cart (created on first use)', response: { 200: Cart, 401: ErrorBody } },
    handler: async (request, reply) => cart.getCart(ctxOf(request), (await ownerOf(request, reply, true))!),
  });

  app.post('/api/cart/add/', {
    config: raw,
    schema: { tags, summary: 'Add a product (more of it if already in the cart), within stock', body: AddBody, response: { 200: Cart, 400: Refused, 401: ErrorBody } },
    handler: async (request, reply) => cart.addToCart(ctxOf(request), (await ownerOf(request, reply, true))!, request.body.product_id, request.body.quantity),
  });

  app.put('/api/cart/items/:item_id/', {
    config: raw,
    schema: { tags, summary: "Set a line's quantity (0 removes it)", params: ItemParams, body: UpdateBody, response: { 200: Cart, 400: Refused, 401: ErrorBody, 404: ErrorBody } },
    handler: async (request, reply) => cart.updateItem(ctxOf(request), (await ownerOf(request, reply, true))!, request.params.item_id, request.body.quantity),
  });

  app.delete('/api/cart/items/:item_id/remove/', {
    schema: { tags, summary: 'Remove a line', params: ItemParams, response: { 200: Cart, 401: ErrorBody, 404: ErrorBody } },
    handler: async (request, reply) => cart.removeItem(ctxOf(request), (await ownerOf(request, reply, true))!, request.params.item_id),
  });

  app.delete('/api/cart/clear/', {
    schema: { tags, summary: 'Empty the cart (idempotent)', response: { 200: Cart, 401: ErrorBody } },
    handler: async (request, reply) => cart.clearCart(ctxOf(request), (await ownerOf(request, reply, true))!),
  });

  app.post('/api/cart/merge/', {
    schema: {
      tags,
      security: [{ bearerAuth: [] }],
      summary: "Merge a guest session's cart into the signed-in user's (signing in already does this)",
      body: MergeBody,
      response: { 200: Cart, 400: MixedErrorBody('{"error":"Session key required"}'), 401: ErrorBody },
    },
    onRequest: signedInOnly,
    handler: async (request) => {
      const user = await requireUser(request);
      return cart.mergeCart(ctxOf(request), user.id, request.body?.session_key, (key) => app.sessions.exists(key));
    },
  });
};
