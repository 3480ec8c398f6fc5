// A shopper with a browser's cookie jar (the guest session), signed in when headers say so: the
// cart, the checkout and the built-in test provider's page, through HTTP.
import type { FastifyInstance } from 'fastify';
import { getJson } from './app.ts';

export function shopper(app: FastifyInstance, headers: Record<string, string> = {}) {
  let cookie = '';
  const call = async (method: string, url: string, payload?: unknown, extra: Record<string, string> = {}) => {
    const r = await getJson(app, url, {
      method: method as 'GET',
      headers: { ...(cookie ? { cookie } : {}), ...headers, ...extra },
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    const set = r.headers['set-cookie'];
    if (set) cookie = String(Array.isArray(set) ? set[0] : set).split(';')[0]!;
    return r;
  };
  return {
    call,
    add: (productId: number, quantity: number) => call('POST', '/api/cart/add/', { product_id: productId, quantity }),
    checkout: (body: object = {}, extra: Record<string, string> = {}) => call('POST', '/api/payments/create-checkout-session/', body, extra),
    page: (sessionId: string) => app.inject({ method: 'GET', url: `/api/payments/test-checkout/${sessionId}/`, headers: { host: 'shop.test' } }),
    /** The test provider's Pay / Decline buttons, with the form sent (the page asks a guest who gave no email for one). */
    pay: (sessionId: string, form = 'outcome=paid') =>
      app.inject({ method: 'POST', url: `/api/payments/test-checkout/${sessionId}/`, headers: { host: 'shop.test', 'content-type': 'application/x-www-form-urlencoded' }, payload: form }),
    verify: (sessionId: string) => call('GET', `/api/payments/verify-checkout-session/?session_id=${encodeURIComponent(sessionId)}`),
  };
}
