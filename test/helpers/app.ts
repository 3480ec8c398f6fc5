import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildApp, type AppDeps } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { Database } from '../../src/db/database.ts';
import { within } from './net.ts';

export async function testApp(database: Database, env: Record<string, string> = {}, deps: Omit<AppDeps, 'database'> = {}): Promise<FastifyInstance> {
  // Limits are off unless a test turns them on: every suite calls from 127.0.0.1, and the
  // anonymous burst tier alone is 20 requests a minute.
  const app = await buildApp(loadConfig({ LOG_LEVEL: 'silent', SECRET_KEY: 'test-secret-key-that-is-long-enough-000', RATE_LIMIT_ENABLED: 'false', ...env }), { database, ...deps });
  await within('the test app’s caches and limits to be ready (their Redis connections and subscriptions)', Promise.all([app.caches.api.ready(), app.caches.default.ready(), app.limits?.ready]), 30_000);
  return app;
}

/** GET with a fixed Host so absolute URLs in bodies are predictable. Returns status, headers, JSON. */
export async function getJson(app: FastifyInstance, url: string, opts: Partial<InjectOptions> = {}) {
  const res = await app.inject({ method: 'GET', url, ...opts, headers: { host: 'shop.test', ...(opts.headers ?? {}) } });
  let body: any;
  try {
    body = res.json();
  } catch {
    body = res.body;
  }
  return { status: res.statusCode, headers: res.headers, body };
}
