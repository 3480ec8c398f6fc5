// The yardstick: a bare Fastify route answering fixed JSON bytes of a given size, the fastest a
// Node HTTP server can answer. The benchmark reports the shop's throughput as a ratio of this.
// It sends the same response headers a cached shop answer carries (security headers, request id,
// ETag, Cache-Control, Vary, X-Cache; the load generator is allow-listed, so no RateLimit-*), so both put the same bytes on the wire and the load
// generator, which shares the machine, parses the same amount for each.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { SECURITY_HEADERS } from '../src/infra/http/hooks.ts';

const size = Number(process.env.BODY_BYTES ?? 4096);
const body = Buffer.from(JSON.stringify({ padding: 'x'.repeat(Math.max(0, size - 14)) }));
const headers = {
  'content-type': 'application/json; charset=utf-8',
  ...SECURITY_HEADERS,
  'x-cache': 'HIT',
  etag: '"0123456789abcdefghijklmnopq"',
  'cache-control': 'public, max-age=30, stale-while-revalidate=60',
  vary: 'Accept-Encoding',
};
const app = Fastify({ logger: false });
app.get('/*', (_req, reply) => {
  reply.headers(headers).header('x-request-id', randomUUID()).send(body);
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'stats') process.send?.({ type: 'stats', cpu: process.cpuUsage(), memory: { rss: process.memoryUsage.rss(), peakRss: process.resourceUsage().maxRSS * 1024 } });
});
process.send?.({ type: 'ready' });
