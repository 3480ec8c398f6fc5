// A PostgreSQL primary and a streaming replica of it, made for one test file: `initdb` a cluster on
// a free loopback port, `pg_basebackup -R` a standby from it, start both, wait until it streams.
// Both live in a temp folder and are stopped and removed by `stop()`, or when the process exits.
// PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` user.
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface ReplicaPair {
  primaryUrl: string;
  replicaUrl: string;
  /** Superuser connections that the app's statement counts never see. */
  primary: pg.Client;
  replica: pg.Client;
  /** Resolves once the replica has replayed everything the primary had written when called. */
  caughtUp(timeoutMs?: number): Promise<void>;
  /** Stops WAL replay on the replica (it keeps answering, from the moment it stopped). */
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;

function run(cmd: string, args: string[]): Promise<string> {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(BIN, cmd), ...args]] : [join(BIN, cmd), args];
  return new Promise((resolve, reject) =>
    execFile(file, argv, { timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`)) : resolve(stdout))),
  );
}

function ownedByPostgres(dir: string): void {
  if (!asRoot) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
  chownSync(dir, uid, gid);
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startReplicaPair(): Promise<ReplicaPair> {
  const root = mkdtempSync(join(tmpdir(), 'pasargad-replica-'));
  ownedByPostgres(root);
  const primaryDir = join(root, 'primary');
  const replicaDir = join(root, 'replica');
  const started: string[] = [];
  const clients: pg.Client[] = [];
  let stopped = false;

  // Immediate shutdown: nothing here is worth a checkpoint, and the folder goes next.
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    for (const dir of [...started].reverse()) {
      try {
        const args = ['-D', dir, '-m', 'immediate', '-w', 'stop'];
        if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', join(BIN, 'pg_ctl'), ...args], { stdio: 'ignore' });
        else execFileSync(join(BIN, 'pg_ctl'), args, { stdio: 'ignore' });
      } catch {
        // already down
      }
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', stopSync);

  try {
    const [primaryPort, replicaPort] = [await freePort(), await freePort()];
    await run('initdb', ['-D', primaryDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    // Sockets in our own folder, so the machine's server and its /var/run/postgresql are untouched.
    appendFileSync(
      join(primaryDir, 'postgresql.conf'),
      [
        `port = ${primaryPort}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${root}'`,
        'wal_level = replica',
        'max_wal_senders = 4',
        'hot_standby = on',
        'fsync = off',
        'full_page_writes = off',
        '',
      ].join('\n'),
    );
    appendFileSync(join(primaryDir, 'pg_hba.conf'), 'host replication postgres 127.0.0.1/32 trust\n');
    await run('pg_ctl', ['-D', primaryDir, '-l', join(root, 'primary.log'), '-w', '-t', '60', 'start']);
    started.push(primaryDir);

    await run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres', '-D', replicaDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    // The copied configuration names the primary's port; the last setting in the file wins.
    appendFileSync(join(replicaDir, 'postgresql.conf'), `port = ${replicaPort}\n`);
    await run('pg_ctl', ['-D', replicaDir, '-l', join(root, 'replica.log'), '-w', '-t', '60', 'start']);
    started.push(replicaDir);

    const primaryUrl = `postgres://postgres@127.0.0.1:${primaryPort}/postgres`;
    const replicaUrl = `postgres://postgres@127.0.0.1:${replicaPort}/postgres`;
    const primary = await connect(primaryUrl);
    clients.push(primary);
    const replica = await connect(replicaUrl);
    clients.push(replica);
    const inRecovery = (await replica.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r;
    if (!inRecovery) throw new Error('the replica is not in recovery');
    await until('the replica to stream', 30_000, async () => (await primary.query("select 1 from pg_stat_replication where state = 'streaming'")).rowCount === 1);

    return {
      primaryUrl,
      replicaUrl,
      primary,
      replica,
      async caughtUp(timeoutMs = 30_000) {
        const lsn = (await primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
        await until('the replica to replay', timeoutMs, async () => {
          const r = await replica.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn]);
          return r.rows[0]!.ok === true;
        });
      },
      async pauseReplay() {
        await replica.query('select pg_wal_replay_pause()');
        await until('replay to pause', 10_000, async () => (await replica.query<{ s: string }>('select pg_get_wal_replay_pause_state() as s')).rows[0]!.s === 'paused');
      },
      async resumeReplay() {
        await replica.query('select pg_wal_replay_resume()');
      },
      async stop() {
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
        process.removeListener('exit', stopSync);
        stopSync();
      },
    };
  } catch (err) {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    process.removeListener('exit', stopSync);
    stopSync();
    throw err;
  }
}

