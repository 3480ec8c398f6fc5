// Two shops in one process, each on its own port: the same built code (dist/), the same data,
// two configurations (a feature on in one, off in the other). Started by bench/paired.ts to
// measure what a feature costs. Two processes differ by more than the feature: on this machine
// two identical server processes were seen 15% apart in CPU per request (JIT decisions, memory
// layout), which drowns a cost of a few percent. In one process both shops share that luck.
//
// Env: PAIRED_ENVS, a JSON array of two objects laid over this process's env (one per shop);
// PAIRED_PORTS, two ports. Answers IPC `{type:'stats'}` with the process's CPU time: the bench
// loads one shop at a time, so a slice's CPU is that shop's.
import type { FastifyInstance } from 'fastify';

const dist = (path: string) => import(new URL(`../dist/${path}`, import.meta.url).href);
const { buildApp } = (await dist('app.js')) as typeof import('../src/app.ts');
const { loadConfig } = (await dist('config.js')) as typeof import('../src/config.ts');
const { openDatabase } = (await dist('db/database.js')) as typeof import('../src/db/database.ts');

const envs = JSON.parse(process.env.PAIRED_ENVS ?? '[]') as Record<string, string>[];
const ports = (process.env.PAIRED_PORTS ?? '').split(',').map(Number);
if (envs.length !== 2 || ports.length !== 2) throw new Error('PAIRED_ENVS (two objects) and PAIRED_PORTS (two ports) are required');

const apps: FastifyInstance[] = [];
for (const [i, overlay] of envs.entries()) {
  const config = loadConfig({ ...process.env, ...overlay });
  const database = await openDatabase(config);
  const app = await buildApp(config, { database });
  app.addHook('onClose', async () => database.close());
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
