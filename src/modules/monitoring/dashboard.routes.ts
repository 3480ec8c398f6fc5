// The staff dashboard page (issue 9): charts of the monitoring endpoints, polled by the page's own
// script. The page is public HTML holding no data (template public/dashboard/index.html, its
// assets under /static/); every number comes from the staff-only JSON endpoints, called with the
// Bearer token the page's sign-in form gets.
import type { FastifyPluginAsync } from 'fastify';
import { helmetHeaders } from '../../infra/http/hooks.ts';
import { htmlPage, sendAsset } from '../../infra/http/static.ts';
import { unlimited } from '../../infra/limits/plugin.ts';

/**
 * The page runs only its own files (here or on the CDN): no inline script or style, and it talks
 * to this origin only. Stricter than the docs page, which needs inline styles for Swagger UI.
 */
export function dashboardHeaders(cdnUrl: string | undefined): Record<string, string> {
  const cdn = cdnUrl ? [new URL(cdnUrl).origin] : [];
  return helmetHeaders({
    defaultSrc: ["'self'", ...cdn],
    imgSrc: ["'self'", 'data:', ...cdn],
    styleSrc: ["'self'", ...cdn],
    scriptSrc: ["'self'", ...cdn],
    connectSrc: ["'self'"],
    frameAncestors: ["'none'"],
  }, true);
}

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const page = htmlPage(app.renderTemplate('dashboard/index.html'));
  const headers = dashboardHeaders(app.config.cdnUrl);
  // Set in the handler, after the app-wide onRequest hook has set the JSON API's CSP
  // (`default-src 'none'`), so these replace it.
  app.get('/dashboard/', { config: unlimited, schema: { hide: true } }, (request, reply) => sendAsset(request, reply.headers(headers), page));
};
