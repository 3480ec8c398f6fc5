// Headers by which a proxy names the client it forwards for. Fastify resolves the client's address
// from X-Forwarded-For alone (and only from TRUSTED_PROXIES); nginx's X-Real-IP and RFC 7239's
// Forwarded say the same thing, so whatever must not take a forwarded request for its peer's own
// (the metrics allow-list) asks here rather than looking for one header.
import type { IncomingHttpHeaders } from 'node:http';

/** Whether a proxy says this request came from someone else. */
export function isForwarded(headers: IncomingHttpHeaders): boolean {
  return headers['x-forwarded-for'] !== undefined || headers['x-real-ip'] !== undefined || headers.forwarded !== undefined;
}
