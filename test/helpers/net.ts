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
