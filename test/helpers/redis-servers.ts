// Real Redis topologies for tests, made from Debian's `redis-server` on loopback ports: a Cluster
// (masters created with `redis-cli --cluster create`) and a master with a replica watched by a
// Sentinel. Each server runs without persistence in a temp folder; `stop()` kills them and removes
// the folders, and so does the process's exit if a test run dies first.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor, within } from './net.ts';

const run = promisify(execFile);

export interface RedisServers {
  /** `host:port` of each server (cluster nodes, or the sentinels). */
  readonly addresses: string[];
  readonly ports: number[];
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
      .once('error', () => resolve(false))
      .listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Free loopback ports whose cluster-bus twin (port + 10000) is free too. */
async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let tries = 0; out.length < n; tries++) {
    if (tries >= 1_000) throw new Error(`no ${n} free loopback ports (with their cluster-bus twins) found in 1000 tries`);
    const p = 20_000 + Math.floor(Math.random() * 10_000);
    if (!out.includes(p) && (await portFree(p)) && (await portFree(p + 10_000))) out.push(p);
  }
  return out;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

/** Starts one server (from a configuration file, when given) and waits for it to answer PING. */
async function server(dir: string, port: number, args: string[], conf?: string): Promise<ChildProcess> {
  const child = spawn('redis-server', [...(conf ? [conf] : []), '--port', String(port), ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let err = '';
  child.stderr!.on('data', (b) => (err += b));
  try {
    await waitFor(`redis-server on ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}`);
      return (await cli(port, 'PING')).trim() === 'PONG';
    }, 10_000);
  } catch (e) {
    // Not yet in the caller's list of children: stopped here, or it would outlive the test.
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}${err ? `\n${err}` : ''}`);
  }
  return child;
}

function stopper(children: ChildProcess[], dir: string): () => Promise<void> {
  return async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  };
}

const BASE = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];

/** A Redis Cluster of `masters` nodes (no replicas), every slot served, state ok on every node. */
export async function startRedisCluster(masters = 3): Promise<RedisServers> {
  const dir = mkdtempSync(join(tmpdir(), 'pasargad-redis-cluster-'));
  dirs.add(dir);
  const ports = await freePorts(masters);
  const children: ChildProcess[] = [];
  const stop = stopper(children, dir);
  try {
    for (const port of ports) {
      const own = join(dir, String(port));
      mkdirSync(own);
      children.push(await server(own, port, [...BASE, '--dir', own, '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']));
    }
    const addresses = ports.map((p) => `127.0.0.1:${p}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    for (const port of ports) await waitFor(`cluster_state:ok on ${port}`, async () => (await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'));
    return { addresses, ports, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A master, one replica and one Sentinel (quorum 1) watching them as `name`. `ports` lists the
 * master, the replica and the sentinel; `addresses` the sentinel.
 */
export async function startRedisSentinel(name = 'mymaster'): Promise<RedisServers> {
  const dir = mkdtempSync(join(tmpdir(), 'pasargad-redis-sentinel-'));
  dirs.add(dir);
  const [master, replica, sentinel] = await freePorts(3);
  const children: ChildProcess[] = [];
  const stop = stopper(children, dir);
  try {
    children.push(await server(dir, master!, [...BASE, '--dir', dir, '--dbfilename', `m.rdb`]));
    children.push(await server(dir, replica!, [...BASE, '--dir', dir, '--dbfilename', `r.rdb`, '--replicaof', '127.0.0.1', String(master)]));
    await waitFor('the replica in sync', async () => (await cli(replica!, 'INFO', 'replication')).includes('master_link_status:up'));
    // Sentinel rewrites its configuration file, so it gets a writable one of its own.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        'bind 127.0.0.1',
        'protected-mode no',
        `logfile ${join(dir, 'sentinel.log')}`,
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        '',
      ].join('\n'),
    );
    children.push(await server(dir, sentinel!, ['--sentinel'], conf));
    await waitFor('the sentinel to know the replica', async () => /^num-slaves\n1$/m.test(await cli(sentinel!, 'SENTINEL', 'MASTER', name)));
    return { addresses: [`127.0.0.1:${sentinel}`], ports: [master!, replica!, sentinel!], stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Asks the Sentinel to fail over now and waits until it names the former replica as master. */
export async function failover(sentinelPort: number, replicaPort: number, name = 'mymaster'): Promise<void> {
  await cli(sentinelPort, 'SENTINEL', 'FAILOVER', name);
  await waitFor('the failover', async () => (await cli(sentinelPort, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)).includes(String(replicaPort)));
  await waitFor('the new master to accept writes', async () => (await cli(replicaPort, 'INFO', 'replication')).includes('role:master'));
}

export interface RestartableRedis {
  readonly port: number;
  /** `redis://127.0.0.1:port` (database 0). */
  readonly url: string;
  /** Stops the server as an operator's shutdown does (SHUTDOWN: the append-only file is flushed). */
  down(): Promise<void>;
  /** Starts it again on the same port with the same data folder. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * One server that can be stopped and restarted (the fault tests). It keeps an append-only file, as
 * a production Redis holding job queues does, so what was queued survives the restart.
 */
export async function startRestartableRedis(): Promise<RestartableRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'pasargad-redis-restart-'));
  dirs.add(dir);
  const [port] = await freePorts(1);
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no', '--dir', dir, '--maxmemory-policy', 'noeviction'];
  let child: ChildProcess | undefined = await server(dir, port!, args);
  const down = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    const exited = new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : c.once('exit', () => resolve())));
    await cli(port!, 'SHUTDOWN').catch(() => undefined);
    // A server that did not take the SHUTDOWN (busy, stopped) is killed; its exit then follows.
    await within(`redis-server on ${port} to exit after SHUTDOWN`, exited, 15_000).catch(async () => {
      c.kill('SIGKILL');
      await within(`redis-server on ${port} to exit after SIGKILL`, exited, 5_000);
    });
  };
  return {
    port: port!,
    url: `redis://127.0.0.1:${port}`,
    down,
    async up() {
      if (!child) child = await server(dir, port!, args);
    },
    async stop() {
      child?.kill('SIGKILL');
      child = undefined;
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}

export interface PausableRedis {
  readonly port: number;
  /** `redis://127.0.0.1:port` (database 0). */
  readonly url: string;
  /** SIGSTOP: connections stay open, commands wait unanswered (a Redis busy with a slow command or a fork). */
  pause(): void;
  /** SIGCONT: it runs what it was sent meanwhile, in order. */
  resume(): void;
  stop(): Promise<void>;
}

/** One server a test can make busy without closing a connection (the slow-Redis tests). */
export async function startPausableRedis(): Promise<PausableRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'pasargad-redis-pause-'));
  dirs.add(dir);
  const [port] = await freePorts(1);
  const children = [await server(dir, port!, [...BASE, '--dir', dir])];
  const child = children[0]!;
  const stop = stopper(children, dir);
  return {
    port: port!,
    url: `redis://127.0.0.1:${port}`,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      child.kill('SIGCONT');
      await stop();
    },
  };
}
