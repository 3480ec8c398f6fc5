// Local servers for tests: a free loopback port to start one on, and polling until it (or any
// other condition) holds.
import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once `check` is true (a check that throws counts as false); throws after `ms`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms = 30_000, everyMs = 200): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    if (await Promise.resolve().then(check).catch((err) => ((last = err), false))) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message ?? last})` : ''}`);
    await sleep(everyMs);
  }
}

/**
 * `promise`, or a failure naming `what` once `ms` have passed: for waits on an event (a message, a
 * process's exit, a subscription) that would otherwise hang until the test runner's own timeout
 * and say nothing of what never came. The timer does not keep the process alive.
 */
export function within<T>(what: string, promise: Promise<T>, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    timer.unref();
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

export interface DelayProxy {
  readonly port: number;
  /** From now on, what clients send reaches the server this much later (in order; 0: at once). */
  setDelay(ms: number): void;
  close(): Promise<void>;
}

/**
 * A loopback proxy in front of a real server that can hold back what clients send: a server slow
 * for the clients behind this proxy only (the connection stays open, the commands run late).
 */
export async function delayProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<DelayProxy> {
  let delay = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => (sockets.delete(s), client.destroy(), upstream.destroy()));
      s.on('error', () => {});
    }
    upstream.pipe(client);
    // Each chunk is due `delay` after it came; a queue keeps them in order whatever the delay was.
    const queue: { due: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = () => {
      timer = undefined;
      while (queue.length && queue[0]!.due <= Date.now()) upstream.write(queue.shift()!.chunk);
      if (queue.length) timer = setTimeout(pump, queue[0]!.due - Date.now());
    };
    client.on('data', (chunk: Buffer) => {
      queue.push({ due: Date.now() + delay, chunk });
      if (!timer) pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    setDelay: (ms) => void (delay = ms),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
