// What a full or read-only disk looks like, whoever ran into it: Node's fs (media files, the email
// outbox) gives ENOSPC, EDQUOT or EROFS; a PostgreSQL server whose disk is full answers SQLSTATE
// 53100; PGlite, which is PostgreSQL writing through Node's fs, reports the C library's text for
// the errno (a read-only disk comes back as 42501, "permission denied", with that text).
import { randomBytes, randomUUID } from 'node:crypto';
import { rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export type DiskFault = 'full' | 'read_only';

const FULL = /No space left on device|Disk quota exceeded/;
const READ_ONLY = /Read-only file system/;

/** Whether an error says the disk it wrote to is full or read-only; undefined for any other error. */
export function diskFault(err: unknown): DiskFault | undefined {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  if (!e || typeof e !== 'object') return undefined;
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === '53100') return 'full';
  if (e.code === 'EROFS') return 'read_only';
  const message = typeof e.message === 'string' ? e.message : '';
  if (FULL.test(message)) return 'full';
  if (READ_ONLY.test(message)) return 'read_only';
  return undefined;
}

export interface DiskState {
  /** Why a one-byte file could not be written there; undefined when it could (it is removed again). */
  fault: DiskFault | undefined;
  freeBytes: number;
}

/** The state of the disk holding `dir`, found by writing to it: statfs alone cannot see a read-only mount. */
export async function diskState(dir: string): Promise<DiskState> {
  const probe = join(dir, `.write-check-${randomBytes(4).toString('hex')}`);
  let fault: DiskFault | undefined;
  try {
    await writeFile(probe, 'x');
  } catch (err) {
    fault = diskFault(err);
    if (!fault) throw err;
  } finally {
    await rm(probe, { force: true }).catch(() => undefined);
  }
  const s = await statfs(dir);
  return { fault, freeBytes: s.bavail * s.bsize };
}

/** The folder nearest `path` that exists: `path` itself, or the parent a folder not made yet will be in. */
export async function nearestFolder(path: string): Promise<string> {
  let at = resolve(path);
  while (!(await stat(at).catch(() => undefined)) && dirname(at) !== at) at = dirname(at);
  return at;
}

/**
 * Writes `path` whole or not at all: to a temporary name beside it, then renamed into place, so a
 * reader never sees half a file and a full disk leaves nothing behind.
 */
export async function writeWhole(path: string, body: Buffer): Promise<void> {
  const temp = `${path}.${randomUUID()}.part`;
  try {
    await writeFile(temp, body);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}
