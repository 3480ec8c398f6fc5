// Two shops in one process, each on its own port: the same built code (dist/), the same data,
// two configurations (a feature on in one, off in the other). Started by bench/paired.ts to
// measure what a feature costs. Two processes differ by more than the feature: on this machine
// two identical server processes were seen 15% apart in CPU per request (JIT decisions, memory
// layout), which drowns a cost of a few percent. In one process both shops share that luck.
//
// Env: PAIRED_ENVS, a JSON array of two objects laid over this process's env (one per shop);
// PAIRED_PORTS, two ports. Answers IPC `{type:'stats'}` with the process's CPU time: the bench
// loads one shop at a time, so a slice's CPU is that shop's.
//
// PAIRED_ALS=true in one shop's overlay runs each of its requests inside AsyncLocalStorage.run
// with a fresh per-request record, wrapped around Fastify's own request listener (the outermost
// place, as a context-based tally would), and reads it back in an onSend hook; PAIRED_ALS=false
// gives the other shop the same hook counting into a plain object, so only the context differs:
// what carrying a request context implicitly costs. Only
// meaningful where AsyncLocalStorage costs the requests that use it (Node 24's AsyncContextFrame);
// on Node 20 (or with --no-async-context-frame) its first run() installs promise hooks for the
// whole process, so both shops would pay and the pair would show no difference.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';

const dist = (path: string) => import(new URL(`../dist/${path}`, import.meta.url).href);
const { buildApp } = (await dist('app.js')) as typeof import('../src/app.ts');
const { loadConfig } = (await dist('config.js')) as typeof import('../src/config.ts');
const { openDatabase } = (await dist('db/database.js')) as typeof import('../src/db/database.ts');

const envs = JSON.parse(process.env.PAIRED_ENVS ?? '[]') as Record<string, string>[];
const ports = (process.env.PAIRED_PORTS ?? '').split(',').map(Number);
if (envs.length !== 2 || ports.length !== 2) throw new Error('PAIRED_ENVS (two objects) and PAIRED_PORTS (two ports) are required');

/** With `als`, each request of this shop runs inside its own AsyncLocalStorage context (PAIRED_ALS above). */
function withRequestContext(app: FastifyInstance, als: boolean): void {
  type Work = { sql: number; cacheHits: number };
  const storage = new AsyncLocalStorage<Work>();
  const plain: Work = { sql: 0, cacheHits: 0 };
  if (als) {
    const server = app.server;
    const handlers = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    if (handlers.length !== 1) throw new Error(`PAIRED_ALS: expected Fastify's one request listener, found ${handlers.length}`);
    const handler = handlers[0]!;
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => storage.run({ sql: 0, cacheHits: 0 }, handler, req, res));
  }
  // The context reaches the reply: a tally would read it there (and at each statement and lookup).
  app.addHook('onSend', (_request, _reply, payload, done) => {
    const work = als ? storage.getStore() : plain;
    if (!work) return done(new Error('PAIRED_ALS: no request context in onSend'));
    work.cacheHits++;
    done(null, payload);
  });
}

const apps: FastifyInstance[] = [];
for (const [i, overlay] of envs.entries()) {
  const config = loadConfig({ ...process.env, ...overlay });
  const database = await openDatabase(config);
  const app = await buildApp(config, { database });
  app.addHook('onClose', async () => database.close());
  if (overlay.PAIRED_ALS) withRequestContext(app, overlay.PAIRED_ALS === 'true');
  await app.listen({ port: ports[i]!, host: '127.0.0.1' });
  apps.push(app);
}

process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'stats') process.send?.({ type: 'stats', cpu: process.cpuUsage() });
});
process.once('SIGTERM', () => {
  void Promise.allSettled(apps.map((a) => a.close())).then(() => process.exit(0));
});
process.send?.({ type: 'ready' });
