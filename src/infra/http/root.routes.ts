// The API index, the liveness check and robots.txt (API-CONTRACT.md §1.1, §2.9).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { unlimited } from '../limits/plugin.ts';

const INDEX = {
  message: 'Welcome to Pasargad Prints API',
  version: '1.0',
  endpoints: {
    users: '/api/users/',
    products: '/api/products/',
    cart: '/api/cart/',
    orders: '/api/orders/',
    payments: '/api/payments/',
    wishlist: '/api/wishlist/',
    recommendations: '/api/recommendations/',
    promotions: '/api/promotions/',
    analytics: '/api/analytics/',
    admin: '/admin/',
    health: '/health/',
  },
};

const ROBOTS = 'User-agent: *\nDisallow: /api/\nDisallow: /admin/\nDisallow: /media/\nAllow: /\n';

export const rootRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/', {
    schema: {
      tags: ['meta'],
      summary: 'API index',
      response: { 200: Type.Object({ message: Type.String(), version: Type.String(), endpoints: Type.Record(Type.String(), Type.String()) }) },
    },
    handler: async () => INDEX,
  });

  app.get('/health/', {
    // Load balancers poll it: never limited.
    config: unlimited,
    schema: {
      tags: ['meta'],
      summary: 'Liveness: the process answers',
      response: { 200: Type.Object({ status: Type.String(), service: Type.String(), version: Type.String() }) },
    },
    handler: async () => ({ status: 'healthy', service: 'Pasargad Prints API', version: '1.0.0' }),
  });

  app.get('/robots.txt', { schema: { hide: true } }, async (_request, reply) => reply.type('text/plain').send(ROBOTS));
};
