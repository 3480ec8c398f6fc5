// The yardstick: a bare Fastify route answering fixed JSON bytes of a given size, the fastest a
// Node HTTP server can answer. The benchmark reports the shop's throughput as a ratio of this.
import Fastify from 'fastify';

const size = Number(process.env.BODY_BYTES ?? 4096);
const body = Buffer.from(JSON.stringify({ padding: 'x'.repeat(Math.max(0, size - 14)) }));
const app = Fastify({ logger: false });
app.get('/*', (_req, reply) => {
  reply.header('content-type', 'application/json').send(body);
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.send?.({ type: 'ready' });
