// The bench's child processes (shop servers, the bare route, the paired server): a free port to
// start one on, its counters over IPC, and a stop that is not reported as a crash.
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Asks a child for its counters over IPC (other messages, such as 'ready', are passed over). */
export function ask<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (m: { type?: string }) => {
      if (m?.type !== 'stats') return;
      child.off('message', onMessage);
      resolve(m as T);
    };
    child.on('message', onMessage);
    child.send({ type: 'stats' });
  });
}

/** Children being stopped on purpose; any other exit is reported, as the run cannot go on without them. */
const stopping = new WeakSet<ChildProcess>();
export const stoppedOnPurpose = (child: ChildProcess) => stopping.has(child);

export function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    stopping.add(child);
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
