// A PostgreSQL primary and a streaming replica of it, made for one test file from two clusters of
// pg-cluster.ts: the primary set up for replication, the replica a `pg_basebackup -R` standby of
// it; resolved once it streams. `stop()` stops and removes both, as does the process's exit.
import pg from 'pg';
import { startPgCluster, type PgCluster } from './pg-cluster.ts';
import { waitFor } from './net.ts';

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

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

export async function startReplicaPair(): Promise<ReplicaPair> {
  const servers: PgCluster[] = [];
  const clients: pg.Client[] = [];
  const stop = async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    // The replica first, so it does not spend its last moments reconnecting to a gone primary.
    for (const s of [...servers].reverse()) await s.stop();
  };

  try {
    const primaryServer = await startPgCluster({ conf: ['wal_level = replica', 'max_wal_senders = 4', 'hot_standby = on'], hba: ['host replication postgres 127.0.0.1/32 trust'] });
    servers.push(primaryServer);
    const replicaServer = await startPgCluster({ standbyOf: primaryServer });
    servers.push(replicaServer);

    const primary = await connect(primaryServer.url);
    clients.push(primary);
    const replica = await connect(replicaServer.url);
    clients.push(replica);
    const inRecovery = (await replica.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r;
    if (!inRecovery) throw new Error('the replica is not in recovery');
    await waitFor('the replica to stream', async () => (await primary.query("select 1 from pg_stat_replication where state = 'streaming'")).rowCount === 1, 30_000, 50);

    return {
      primaryUrl: primaryServer.url,
      replicaUrl: replicaServer.url,
      primary,
      replica,
      async caughtUp(timeoutMs = 30_000) {
        const lsn = (await primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
        await waitFor(
          'the replica to replay',
          async () => (await replica.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn])).rows[0]!.ok === true,
          timeoutMs,
          50,
        );
      },
      async pauseReplay() {
        await replica.query('select pg_wal_replay_pause()');
        await waitFor('replay to pause', async () => (await replica.query<{ s: string }>('select pg_get_wal_replay_pause_state() as s')).rows[0]!.s === 'paused', 10_000, 50);
      },
      async resumeReplay() {
        await replica.query('select pg_wal_replay_resume()');
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
