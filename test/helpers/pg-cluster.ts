// One PostgreSQL cluster of a test's own, which the test may stop and start again (the fault
// tests): `initdb` on a free loopback port in a temp folder, sockets in that folder, so the
// machine's server is never touched. As root the binaries run as the `postgres` user, as in
// pg-replica.ts. `stop()` (or the process's exit) shuts it down and removes the folder.
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../chaos/harness.ts';

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
  /** Stops the server: `fast` ends every session at once (what a restart does), `immediate` is a crash. */
  down(mode?: 'fast' | 'immediate'): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPgCluster(): Promise<PgCluster> {
  const root = mkdtempSync(join(tmpdir(), 'pasargad-pg-'));
  if (asRoot) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }));
    chownSync(root, id('-u'), id('-g'));
  }
  const dir = join(root, 'data');
  let running = false;
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
  const port = await freePort();
  const up = async () => {
    await run('pg_ctl', ['-D', dir, '-l', join(root, 'server.log'), '-w', '-t', '60', 'start']);
    running = true;
  };
  try {
    await run('initdb', ['-D', dir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    appendFileSync(join(dir, 'postgresql.conf'), [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${root}'`, 'fsync = off', 'full_page_writes = off', ''].join('\n'));
    await up();
  } catch (err) {
    process.removeListener('exit', stopSync);
    stopSync();
    throw err;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
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
