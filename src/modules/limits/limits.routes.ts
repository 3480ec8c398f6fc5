// Staff view of the IP blocks (issue 5): the blocked addresses with reason and expiry, and unblocking one.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isIP } from 'node:net';
import { Type } from 'typebox';
import { AppError } from '../../infra/http/errors.ts';
import { AdHocError, ErrorBody } from '../../infra/http/schema.ts';
import { normalIp } from '../../infra/limits/ip.ts';
import { staffOnly } from '../accounts/auth.ts';

const tags = ['rate limits'];
const security = [{ bearerAuth: [] }];
const BlockedIp = Type.Object({ ip: Type.String(), reason: Type.String(), blocked_at: Type.String({ format: 'date-time' }), expires_at: Type.String({ format: 'date-time' }) });
const IpParams = Type.Object({ ip: Type.String({ maxLength: 64 }) });

export const limitRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/utils/rate-limits/blocked/', {
    schema: { tags, security, summary: 'Blocked client addresses, oldest first (staff)', response: { 200: Type.Object({ count: Type.Integer(), results: Type.Array(BlockedIp) }), 401: ErrorBody, 403: ErrorBody } },
    onRequest: staffOnly,
    handler: async () => {
      const results = app.limits ? await app.limits.blocks.list() : [];
      return { count: results.length, results };
    },
  });

  app.delete('/api/utils/rate-limits/blocked/:ip/', {
    schema: { tags, security, summary: 'Unblock a client address and forget its violations (staff)', params: IpParams, response: { 200: Type.Object({ message: Type.String() }), 400: AdHocError, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      const ip = normalIp(request.params.ip);
      if (!isIP(ip)) return reply.code(400).send({ error: 'Not an IP address' });
      if (!app.limits || !(await app.limits.unblock(ip))) throw new AppError('not_found', { message: 'This IP address is not blocked.' });
      request.log.info({ ip, staff_user_id: request.auth?.user_id }, 'IP unblocked by staff');
      return { message: `${ip} unblocked` };
    },
  });
};
