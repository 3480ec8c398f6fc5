import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildApp, type AppDeps } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { Database } from '../../src/db/database.ts';

export async function testApp(database: Database, env: Record<string, string> = {}, deps: Omit<AppDeps, 'database'> = {}): Promise<FastifyInstance> {
  const app = await buildApp(loadConfig({ LOG_LEVEL: 'silent', SECRET_KEY: 'test-secret-key-that-is-long-enough-000', ...env }), { database, ...deps });
  await Promise.all([app.caches.api.ready(), app.caches.default.ready()]);
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
