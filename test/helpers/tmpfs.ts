// Small disks for the disk-fault tests: a tmpfs of a chosen size mounted on a folder, filled to
// the last byte and emptied again, remounted read-only and writable. Mounting needs root (CI and
// the development sandbox run as root); `mountRefusal()` says why not where it cannot, so a test
// skips with that reason instead of passing on nothing.
import { execFile } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function mount(args: string[]): Promise<void> {
  try {
    await run('mount', args);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`mount ${args.join(' ')}: ${(e.stderr || e.message).trim()}`);
  }
}

/** Why this process cannot mount a tmpfs (not root, no permission), or undefined when it can. */
export async function mountRefusal(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const dir = mkdtempSync(join(tmpdir(), 'pasargad-mount-check-'));
  try {
    await mount(['-t', 'tmpfs', '-o', 'size=1M', 'tmpfs', dir]);
    await run('umount', [dir]);
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs here: ${(err as Error).message}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const FILLER = '.disk-filler';

export class Tmpfs {
  private constructor(readonly dir: string) {}

  /** Mounts a tmpfs of `megabytes` on `dir` (made if missing). */
  static async mount(dir: string, megabytes: number): Promise<Tmpfs> {
    mkdirSync(dir, { recursive: true });
    await mount(['-t', 'tmpfs', '-o', `size=${megabytes}M,mode=0755`, 'tmpfs', dir]);
    return new Tmpfs(dir);
  }

  freeBytes(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /**
   * Writes a file until the disk refuses another byte, or until only `leave` bytes are free;
   * returns the bytes written.
   */
  fill(leave = 0): number {
    const fd = openSync(join(this.dir, FILLER), 'a');
    let written = 0;
    try {
      // Big blocks first, then single pages: tmpfs hands out space a page at a time.
      for (const size of [1 << 20, 4096, 1]) {
        const block = Buffer.alloc(size, 0x5a);
        while (this.freeBytes() - size >= leave) {
          try {
            written += writeSync(fd, block);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
            break;
          }
        }
      }
    } finally {
      closeSync(fd);
    }
    return written;
  }

  /** Removes what fill() wrote. */
  free(): void {
    rmSync(join(this.dir, FILLER), { force: true });
  }

  /** Remounts read-only (refused while a process holds a file there open for writing). */
  readOnly(): Promise<void> {
    return mount(['-o', 'remount,ro', this.dir]);
  }

  writable(): Promise<void> {
    return mount(['-o', 'remount,rw', this.dir]);
  }

  /** Unmounts; a mount still in use (a server that did not stop) is detached lazily, never left behind. */
  async unmount(): Promise<void> {
    try {
      await run('umount', [this.dir]);
    } catch {
      await run('umount', ['-l', this.dir]).catch(() => undefined);
    }
  }
}

/** True when a file's name says it is the filler, for listings of a disk's files. */
export function isFiller(name: string): boolean {
  return name.endsWith(FILLER);
}
