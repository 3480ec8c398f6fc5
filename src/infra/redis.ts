// Owns every connection to Redis: the one place a client is made, for a plain server, the master
// a set of Sentinels names, or a Redis Cluster (see RedisTarget in config.ts). The cache stores,
// sessions, limits, blocks, queues and the email rate all connect through `openRedis`, so the
// three topologies run the same code above this file. What a Cluster asks of that code (one hash
// slot per multi-key command or script, SCAN on every master) is answered where the commands are
// made; `masters` helps with the latter.
import { Cluster, Redis } from 'ioredis';
import type { RedisTarget } from '../config.ts';

/** A connection to any of the three topologies: the commands are the same. */
export type RedisConnection = Redis | Cluster;

export interface RedisConnectOptions {
  /** Prepended to every key (in a Cluster followed by the store's own prefix, which keeps stores apart: `shop1:api:…`). */
  keyPrefix?: string;
  /** How long a command may take, waiting for a (re)connection included; null: no limit (BullMQ blocks on purpose). Default 2 s. */
  commandTimeoutMs?: number | null;
  /** Retries of a command across reconnections; null: until it succeeds (BullMQ requires that). Default 1. */
  maxRetriesPerRequest?: number | null;
  /** Queue commands made while disconnected (default true); false fails them at once. */
  enableOfflineQueue?: boolean;
  /**
   * For pub/sub connections: ioredis re-subscribes after a reconnect with a promise nobody can
   * catch, so a connection that drops again mid-way is an unhandled rejection. Off, the owner
   * subscribes again itself on 'ready'.
   */
  autoResubscribe?: boolean;
}

// Reconnect forever, backing off to 2 s: every user heals when Redis returns.
const backoff = (times: number) => Math.min(times * 100, 2_000);

export function openRedis(target: RedisTarget, o: RedisConnectOptions = {}): RedisConnection {
  const common = {
    connectTimeout: 2_000,
    commandTimeout: o.commandTimeoutMs === null ? undefined : (o.commandTimeoutMs ?? 2_000),
    maxRetriesPerRequest: o.maxRetriesPerRequest === undefined ? 1 : o.maxRetriesPerRequest,
    autoResubscribe: o.autoResubscribe ?? true,
  };
  const enableOfflineQueue = o.enableOfflineQueue ?? true;
  let client: RedisConnection;
  if (target.kind === 'server') {
    client = new Redis(target.url, { ...common, keyPrefix: o.keyPrefix ?? '', enableOfflineQueue, retryStrategy: backoff });
  } else if (target.kind === 'sentinel') {
    const { username, password, tls } = target.auth;
    client = new Redis({
      ...common,
      sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
      name: target.name,
      sentinelPassword: target.sentinelPassword,
      username,
      password,
      db: target.db,
      ...(tls ? { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
      keyPrefix: o.keyPrefix ?? '',
      enableOfflineQueue,
      retryStrategy: backoff,
      // While no Sentinel answers, keep asking (the default gives up after a few rounds).
      sentinelRetryStrategy: backoff,
    });
  } else {
    const { username, password, tls } = target.auth;
    const cluster = new Cluster(
      target.nodes.map(({ host, port }) => ({ host, port })),
      {
        keyPrefix: (o.keyPrefix ?? '') + target.prefix,
        enableOfflineQueue,
        clusterRetryStrategy: backoff,
        redisOptions: { ...common, username, password, ...(tls ? { tls: {} } : {}) },
        // With TLS the nodes' certificates name hosts, not the addresses the cluster reports
        // (managed clusters such as ElastiCache): connect by the names as given.
        ...(tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
      },
    );
    // A Cluster starts commandTimeout only once a command reaches a node: one made while no node
    // is connected waits in the Cluster's own queue for ever. Start the clock when it is made.
    const timeout = common.commandTimeout;
    if (timeout !== undefined) {
      const send = cluster.sendCommand.bind(cluster);
      cluster.sendCommand = (command, ...rest) => (command.setTimeout(timeout), send(command, ...rest));
    }
    client = cluster;
  }
  // Without a listener ioredis reports every failed reconnect as an unhandled error.
  client.on('error', () => {});
  return client;
}

/** The connections that hold keys: every master of a Cluster, or the client itself. */
export function masters(client: RedisConnection): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

export function isCluster(client: RedisConnection): client is Cluster {
  return client instanceof Cluster;
}
