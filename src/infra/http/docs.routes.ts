// The API docs: the OpenAPI document @fastify/swagger builds from the route schemas, and the
// Swagger UI page that reads it (template public/docs/index.html, its assets under /static/).
import type { FastifyPluginAsync } from 'fastify';
import { htmlPage, sendAsset } from './static.ts';

export const docsRoutes: FastifyPluginAsync = async (app) => {
  const page = htmlPage(app.renderTemplate('docs/index.html'));
  app.get('/api/docs/', { schema: { hide: true } }, (request, reply) => sendAsset(request, reply, page));
  app.get('/api/docs/json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/api/docs/yaml', { schema: { hide: true } }, async (_request, reply) => reply.type('application/x-yaml').send(app.swagger({ yaml: true })));
};
