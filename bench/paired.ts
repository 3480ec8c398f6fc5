// What a feature on the hot path costs (rate limiting, request monitoring): the cached product
// list from two shops, the feature on in one and off in the other, as a throughput ratio.
//
// On this shared 2-core machine throughput drifts by ±20% from second to second, and two server
// processes have their own luck (JIT, memory layout: two identical ones were seen 15% apart). So
// both shops run in one process (bench/paired-server.ts), are loaded in turns of short slices
// whose order alternates, and the figure is the median of the pairs' ratios, over several fresh
// processes (which shop is built first alternates between them). A slice's CPU time is the process's, since only one shop is loaded at a time.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { ask, freePort, stop } from './children.ts';

export interface Slices {
  rps: number;
  requests: number;
  errors: number;
}

export interface PairedCost {
  on: Slices;
  off: Slices;
  /** Median over adjacent on/off slice pairs of on ÷ off throughput. */
  ratio: number;
  /** Server CPU per request, µs, feature on and off. */
  cpuOn: number;
  cpuOff: number;
  pairs: number;
}

export interface PairedOptions {
  /** Seconds of load per slice. */
  slice: number;
  connections: number;
  rounds: number;
  pairsPerRound: number;
  say: (msg: string) => void;
}

type Cpu = { user: number; system: number };

const cpuOf = async (child: ChildProcess) => (await ask<{ cpu: Cpu }>(child)).cpu;

async function startPair(env: NodeJS.ProcessEnv, overlays: [NodeJS.ProcessEnv, NodeJS.ProcessEnv], ports: [number, number]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/paired-server.ts'], {
    env: { ...env, PAIRED_ENVS: JSON.stringify(overlays), PAIRED_PORTS: ports.join(',') },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    // Opening two shops (PGlite, migrations, a seed) takes seconds; two minutes means it is stuck.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the paired server did not report ready within 120 s'));
    }, 120_000);
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`paired server exited ${code}`))));
    child.on('message', (m: { type?: string }) => m?.type === 'ready' && (clearTimeout(timer), resolve()));
  });
  child.removeAllListeners('exit');
  return child;
}

/** `onEnv` and `offEnv` are laid over `env` for the two shops. */
export async function pairedCost(env: NodeJS.ProcessEnv, onEnv: NodeJS.ProcessEnv, offEnv: NodeJS.ProcessEnv, label: string, o: PairedOptions): Promise<PairedCost> {
  // Embedded mode: PGlite is one process's files, so the second shop gets a copy.
  const copy = env.DATA_DIR ? mkdtempSync(join(tmpdir(), 'pasargad-bench-')) : undefined;
  if (copy) cpSync(env.DATA_DIR!, copy, { recursive: true });
  const totals = [
    { rps: 0, requests: 0, errors: 0, cpu: 0, slices: 0 },
    { rps: 0, requests: 0, errors: 0, cpu: 0, slices: 0 },
  ];
  const ratios: number[] = [];
  o.say(`${label}: cached product list, on and off in one process, ${o.rounds} fresh processes, ${o.pairsPerRound} pairs of ${o.slice.toFixed(1)} s slices each`);
  try {
    for (let round = 0; round < o.rounds; round++) {
      const ports: [number, number] = [await freePort(), await freePort()];
      const off = { ...offEnv, ...(copy ? { DATA_DIR: copy } : {}) };
      // Which shop the process builds first alternates too: a null run (both the same) showed the
      // first one up to 3% ahead.
      const swap = round % 2 === 1;
      const child = await startPair(env, swap ? [off, onEnv] : [onEnv, off], ports);
      try {
        const urls = (swap ? [ports[1], ports[0]] : ports).map((p) => `http://127.0.0.1:${p}/api/products/`);
        for (const url of urls) await autocannon({ url, connections: o.connections, duration: 2 });
        for (let i = 0; i < o.pairsPerRound; i++) {
          const rps: number[] = [];
          for (const t of (round + i) % 2 === 0 ? [0, 1] : [1, 0]) {
            const before = await cpuOf(child);
            const r = await autocannon({ url: urls[t]!, connections: o.connections, duration: o.slice });
            const after = await cpuOf(child);
            const total = totals[t]!;
            total.rps += r.requests.average;
            total.requests += r.requests.total;
            total.errors += r.errors + r.timeouts + r.non2xx;
            total.cpu += after.user + after.system - before.user - before.system;
            total.slices++;
            rps[t] = r.requests.average;
          }
          ratios.push(rps[0]! / rps[1]!);
        }
        o.say(`${label}: round ${round + 1}/${o.rounds} done`);
      } finally {
        await stop(child);
      }
    }
  } finally {
    if (copy) rmSync(copy, { recursive: true, force: true });
  }
  ratios.sort((x, y) => x - y);
  const mid = ratios.length >> 1;
  const median = ratios.length % 2 ? ratios[mid]! : (ratios[mid - 1]! + ratios[mid]!) / 2;
  const [on, off] = totals.map((t) => ({ rps: t.rps / t.slices, requests: t.requests, errors: t.errors })) as [Slices, Slices];
  return { on, off, ratio: median, cpuOn: totals[0]!.cpu / totals[0]!.requests, cpuOff: totals[1]!.cpu / totals[1]!.requests, pairs: ratios.length };
}
