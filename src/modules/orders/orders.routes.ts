// /api/orders/ (API-CONTRACT.md §2.4, with §4.2–3). Every answer is one person's (or staff's)
// data: never cached by anyone else.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ctxOf } from '../../infra/http/context.ts';
import { markPrivate, privateResponses } from '../../infra/http/hooks.ts';
import { pageBody } from '../../infra/http/pagination.ts';
import { AdHocError, ErrorBody, IdParams } from '../../infra/http/schema.ts';
import { currentUser, requireStaff, requireUser, signedInOnly, staffOnly } from '../accounts/auth.ts';
import { GuestTrackBody, OrderDetail, OrderListQuery, OrderPage, OrderTracking, Statistics, StatisticsQuery, StatusBody, TrackingParams } from './orders.schemas.ts';
import * as orders from './orders.service.ts';

const tags = ['orders'];
const security = [{ bearerAuth: [] }];

export const orderRoutes: FastifyPluginAsyncTypebox = async (app) => {
  privateResponses(app);

  app.get('/api/orders/', {
    onRequest: signedInOnly,
    schema: { tags, security, summary: 'Your orders, newest first (staff: every order), filtered and paginated', querystring: OrderListQuery, response: { 200: OrderPage, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody } },
    handler: async (request) => {
      const page = await orders.listOrders(ctxOf(request), await requireUser(request), request.query);
      return { ...pageBody(request, page), page_size: page.size, total_pages: Math.max(1, Math.ceil(page.count / page.size)) };
    },
  });

  app.get('/api/orders/statistics/', {
    onRequest: staffOnly,
    schema: { tags, security, summary: 'Order counts and revenue over the last `days` days (staff)', querystring: StatisticsQuery, response: { 200: Statistics, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody } },
    handler: async (request) => orders.statistics(ctxOf(request), request.query.days ?? 30),
  });

  app.get('/api/orders/:id/', {
    onRequest: signedInOnly,
    schema: { tags, security, summary: 'One order with items and status history (owner or staff)', params: IdParams, response: { 200: OrderDetail, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody } },
    handler: async (request) => orders.getOrder(ctxOf(request), await requireUser(request), request.params.id),
  });

  for (const method of ['PATCH', 'PUT'] as const) {
    app.route({
      method,
      url: '/api/orders/:id/status/',
      onRequest: staffOnly,
      schema: {
        tags,
        security,
        summary: 'Move an order along its allowed transitions, optionally setting the tracking number (staff)',
        params: IdParams,
        body: StatusBody,
        response: { 200: OrderDetail, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody },
      },
      handler: async (request) => orders.changeStatus(ctxOf(request), await requireStaff(request), request.params.id, request.body ?? {}),
    });
  }

  app.post('/api/orders/track/guest/', {
    schema: { tags, summary: 'Track an order by its number and the email it was placed with', body: GuestTrackBody, response: { 200: OrderTracking, 400: AdHocError, 404: AdHocError } },
    handler: async (request) => orders.trackGuest(ctxOf(request), request.body?.order_number, request.body?.email),
  });

  app.get('/api/orders/track/id/:id/', {
    schema: { tags, summary: 'Track one of your orders by id (owner or staff; 404 for anyone else)', params: IdParams, response: { 200: OrderTracking, 401: ErrorBody, 404: ErrorBody } },
    handler: async (request, reply) => {
      markPrivate(reply);
      return orders.trackById(ctxOf(request), await currentUser(request), request.params.id);
    },
  });

  app.get('/api/orders/track/:tracking_number/', {
    schema: { tags, summary: 'Track an order by its tracking number (public)', params: TrackingParams, response: { 200: OrderTracking, 404: ErrorBody } },
    handler: async (request) => orders.trackByNumber(ctxOf(request), request.params.tracking_number),
  });
};
