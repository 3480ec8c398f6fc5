// Absolute URLs in responses: built from the request's scheme and host (X-Forwarded-* only from
// trusted proxies, see app.ts), and media URLs rewritten to the CDN when one is configured.
import type { FastifyRequest } from 'fastify';

export function requestOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

/** Builds absolute URLs for stored media paths; `cdnUrl` wins over this server's origin. */
export type MediaUrl = (path: string | null) => string | null;

export function mediaUrlFor(origin: string, cdnUrl: string | undefined): MediaUrl {
  const base = `${cdnUrl ?? origin}/media/`;
  return (path) => {
    if (!path) return null;
    if (/^https?:\/\//.test(path)) return path;
    return base + path.replace(/^\/+/, '');
  };
}
