// A PostgreSQL cluster of a test's own, which the test may stop and start again (the fault
// tests), or a streaming standby of another one (the replica tests, see pg-replica.ts): `initdb`
// (or `pg_basebackup -R`) on a free loopback port in a temp folder, sockets in that folder, so the
// machine's server is never touched. PostgreSQL refuses to run as root, so as root the binaries
// run as the `postgres` user. `stop()` (or the process's exit) shuts it down and removes the folder.
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const asRoot = process.getuid?.() === 0;

function argv(cmd: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', join(BIN, cmd), ...args]] : [join(BIN, cmd), args];
}

function run(cmd: string, args: string[]): Promise<string> {
  const [file, a] = argv(cmd, args);
  return new Promise((resolve, reject) => execFile(file, a, { timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`)) : resolve(stdout))));
}

export interface PgCluster {
  /** postgres://postgres@127.0.0.1:port/postgres */
  url: string;
  port: number;
  /** Stops the server: `fast` ends every session at once (what a restart does), `immediate` is a crash. */
  down(mode?: 'fast' | 'immediate'): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

export interface PgClusterOptions {
  /** Settings appended to postgresql.conf (the last setting of a name wins). */
  conf?: string[];
  /** Lines appended to pg_hba.conf. */
  hba?: string[];
  /** Makes a streaming standby of this cluster (`pg_basebackup -R`) instead of a new one; its settings and pg_hba.conf are copied. */
  standbyOf?: PgCluster;
}

export async function startPgCluster(o: PgClusterOptions = {}): Promise<PgCluster> {
  const root = mkdtempSync(join(tmpdir(), 'pasargad-pg-'));
  if (asRoot) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }));
    chownSync(root, id('-u'), id('-g'));
  }
  const dir = join(root, 'data');
  let running = false;
  // Immediate shutdown: nothing here is worth a checkpoint, and the folder goes next.
  const stopSync = () => {
    if (running) {
      try {
        const [file, a] = argv('pg_ctl', ['-D', dir, '-m', 'immediate', '-w', 'stop']);
        execFileSync(file, a, { stdio: 'ignore' });
      } catch {
        // already down
      }
      running = false;
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', stopSync);
  const up = async () => {
    await run('pg_ctl', ['-D', dir, '-l', join(root, 'server.log'), '-w', '-t', '60', 'start']);
    running = true;
  };
  let port = 0;
  try {
    port = await freePort();
    if (o.standbyOf) await run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(o.standbyOf.port), '-U', 'postgres', '-D', dir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    else await run('initdb', ['-D', dir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    appendFileSync(join(dir, 'postgresql.conf'), [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${root}'`, 'fsync = off', 'full_page_writes = off', ...(o.conf ?? []), ''].join('\n'));
    if (o.hba?.length) appendFileSync(join(dir, 'pg_hba.conf'), [...o.hba, ''].join('\n'));
    await up();
  } catch (err) {
    process.removeListener('exit', stopSync);
    stopSync();
    throw err;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async down(mode = 'fast') {
      await run('pg_ctl', ['-D', dir, '-m', mode, '-w', 'stop']);
      running = false;
    },
    up,
    async stop() {
      process.removeListener('exit', stopSync);
      stopSync();
    },
  };
}
