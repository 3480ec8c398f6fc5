// /api/wishlist/ (API-CONTRACT.md §2.6): public; a signed-in user's wishlist, else the guest
// session's. Also the storefront's own paths (§4.7): POST items/, DELETE items/{id}/, DELETE ``.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ctxOf } from '../../infra/http/context.ts';
import { privateResponses } from '../../infra/http/hooks.ts';
import { ErrorBody, MixedErrorBody, NoContent } from '../../infra/http/schema.ts';
import { ownerOf } from '../accounts/session.ts';
import { Cart } from '../cart/cart.schemas.ts';
import { Added, ItemParams, Message, MoveBody, ProductIdBody, ProductParams, Wishlist, WishlistItem } from './wishlist.schemas.ts';
import * as wishlist from './wishlist.service.ts';

const tags = ['wishlist'];
const Refused = MixedErrorBody('{"error":"…"}');

export const wishlistRoutes: FastifyPluginAsyncTypebox = async (app) => {
  privateResponses(app);
  app.get('/api/wishlist/', {
    schema: { tags, summary: 'The current wishlist (created on first use)', response: { 200: Wishlist, 401: ErrorBody } },
    handler: async (request, reply) => wishlist.getWishlist(ctxOf(request), (await ownerOf(request, reply, true))!),
  });

  app.post('/api/wishlist/add/', {
    schema: { tags, summary: 'Add a product: 201 with the item, 200 when already there', body: ProductIdBody, response: { 200: Added, 201: Added, 400: Refused, 401: ErrorBody, 404: Refused } },
    handler: async (request, reply) => {
      const productId = wishlist.productIdFrom(request.body?.product_id);
      const { created, item } = await wishlist.addToWishlist(ctxOf(request), (await ownerOf(request, reply, true))!, productId);
      if (!created) return { message: 'Product already in wishlist' };
      reply.code(201);
      return { message: 'Product added to wishlist', item };
    },
  });

  app.delete('/api/wishlist/remove/:product_id/', {
    schema: { tags, summary: 'Remove a product (by product id)', params: ProductParams, response: { 200: Message, 401: ErrorBody, 404: Refused } },
    handler: async (request, reply) => {
      await wishlist.removeProduct(ctxOf(request), (await ownerOf(request, reply, true))!, request.params.product_id);
      return { message: 'Product removed from wishlist' };
    },
  });

  app.post('/api/wishlist/clear/', {
    schema: { tags, summary: 'Empty the wishlist', response: { 200: Message, 401: ErrorBody } },
    handler: async (request, reply) => {
      await wishlist.clearWishlist(ctxOf(request), (await ownerOf(request, reply, true))!);
      return { message: 'Wishlist cleared' };
    },
  });

  app.post('/api/wishlist/move-to-cart/:product_id/', {
    config: { rawErrors: true },
    schema: {
      tags,
      summary: 'Add the product to the cart (quantity defaults to 1) and take it off the wishlist',
      params: ProductParams,
      body: MoveBody,
      response: { 200: Cart, 400: Refused, 401: ErrorBody },
    },
    handler: async (request, reply) => {
      const owner = (await ownerOf(request, reply, true))!;
      return wishlist.moveToCart(ctxOf(request), owner, request.params.product_id, request.body?.quantity ?? 1);
    },
  });

  // The storefront's paths (§4.7).
  app.post('/api/wishlist/items/', {
    schema: { tags, summary: 'Add a product; answers with the item (201 new, 200 already there)', body: ProductIdBody, response: { 200: WishlistItem, 201: WishlistItem, 400: Refused, 401: ErrorBody, 404: Refused } },
    handler: async (request, reply) => {
      const productId = wishlist.productIdFrom(request.body?.product_id);
      const { created, item } = await wishlist.addToWishlist(ctxOf(request), (await ownerOf(request, reply, true))!, productId);
      reply.code(created ? 201 : 200);
      return item;
    },
  });

  app.delete('/api/wishlist/items/:item_id/', {
    schema: { tags, summary: 'Remove an item (by item id)', params: ItemParams, response: { 204: NoContent, 401: ErrorBody, 404: Refused } },
    handler: async (request, reply) => {
      await wishlist.removeItem(ctxOf(request), (await ownerOf(request, reply, true))!, request.params.item_id);
      return reply.code(204).send(null);
    },
  });

  app.delete('/api/wishlist/', {
    schema: { tags, summary: 'Empty the wishlist', response: { 200: Message, 401: ErrorBody } },
    handler: async (request, reply) => {
      await wishlist.clearWishlist(ctxOf(request), (await ownerOf(request, reply, true))!);
      return { message: 'Wishlist cleared' };
    },
  });
};
