// Local servers for tests: a free loopback port to start one on, and polling until it (or any
// other condition) holds.
import { createServer } from 'node:net';
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
