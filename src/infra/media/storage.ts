// Where uploaded media lives, behind one interface (DESIGN.md): a local folder in embedded mode,
// S3 (or any S3-compatible service) in production. Keys are relative paths such as
// `products/42/3fa9c1d2e4b5a6f7-600.webp`; every name carries its content's hash, so an object
// never changes once written and is cached forever (IMMUTABLE).
import { mkdir, open, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { diskState, nearestFolder, writeWhole } from '../disk.ts';

export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Keys under this prefix (uploads as they came, with their metadata) are kept, never served. */
export const PRIVATE_PREFIX = 'private/';

/**
 * Keys under this prefix are shared by many rows (the demo catalog's bounded pool of pictures,
 * src/db/demo-images.ts): no removal job takes them, however many rows stop naming them.
 */
export const SHARED_PREFIX = 'demo/';

/** One stored object, ready to stream. */
export interface MediaObject {
  body: Readable;
  size: number;
  contentType: string;
  lastModified: Date;
}

export interface MediaStorage {
  /** Writes the object (replacing one of the same key, which holds the same bytes). */
  put(key: string, body: Buffer, contentType: string): Promise<void>;
  /** The object, or undefined when there is none. */
  get(key: string): Promise<MediaObject | undefined>;
  has(key: string): Promise<boolean>;
  /** Removes the objects; missing ones are no error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Every key under the prefix (for checks and clean-ups, not for the request path). */
  list(prefix: string): Promise<string[]>;
  close(): void;
}

const SAFE_KEY = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/i;

/** Whether a key could name a stored file: no empty, `.` or `..` part, nothing outside [a-z0-9._-/]. */
export function isKey(key: string): boolean {
  return SAFE_KEY.test(key) && !key.split('/').some((part) => part === '..' || part === '.');
}

/** Keys are made by the server, never taken from a client; this still refuses any that could escape. */
export function checkKey(key: string): string {
  if (!isKey(key)) throw new Error(`bad media key: ${JSON.stringify(key)}`);
  return key;
}

const TYPES: Record<string, string> = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', avif: 'image/avif', gif: 'image/gif' };

export function contentTypeOf(key: string): string {
  return TYPES[key.slice(key.lastIndexOf('.') + 1).toLowerCase()] ?? 'application/octet-stream';
}

/** A folder on this machine. Writes go to a temporary name first, so a reader never sees half a file. */
export class LocalStorage implements MediaStorage {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(key: string): string {
    const path = join(this.root, checkKey(key));
    if (!path.startsWith(this.root + sep)) throw new Error(`bad media key: ${JSON.stringify(key)}`);
    return path;
  }

  async put(key: string, body: Buffer): Promise<void> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      // Node's recursive mkdir reports a read-only disk as ENOENT: a write in the nearest folder
      // that exists gives the real reason (EROFS), which the error handler turns into a clear 503.
      if ((await diskState(await nearestFolder(dirname(path))).catch(() => undefined))?.fault === 'read_only') throw Object.assign(new Error(`media disk is read-only (${err.message})`), { code: 'EROFS' });
      throw err;
    });
    await writeWhole(path, body);
  }

  async get(key: string): Promise<MediaObject | undefined> {
    if (!isKey(key)) return undefined;
    const path = this.path(key);
    // Opened first, so a file removed meanwhile is either served whole or not found.
    const handle = await open(path, 'r').catch(() => undefined);
    if (!handle) return undefined;
    const info = await handle.stat();
    if (!info.isFile()) {
      await handle.close();
      return undefined;
    }
    return { body: handle.createReadStream(), size: info.size, contentType: contentTypeOf(key), lastModified: info.mtime };
  }

  async has(key: string): Promise<boolean> {
    return (await stat(this.path(key)).catch(() => undefined))?.isFile() ?? false;
  }

  async delete(keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map((key) => rm(this.path(key), { force: true })));
    // Each upload has a folder of its own: once its files are gone, so is the folder (rmdir
    // leaves one that still holds something). Its parents are shared with other uploads: kept.
    const folders = new Set(keys.map((key) => dirname(this.path(key))));
    await Promise.all([...folders].map((dir) => rmdir(dir).catch(() => undefined)));
  }

  async list(prefix: string): Promise<string[]> {
    const entries = await readdir(this.root, { recursive: true, withFileTypes: true }).catch(() => []);
    return entries
      .filter((e) => e.isFile() && !e.name.endsWith('.part'))
      .map((e) => relative(this.root, join(e.parentPath, e.name)).split(sep).join('/'))
      .filter((key) => key.startsWith(prefix))
      .sort();
  }

  close(): void {}
}

export interface S3Options {
  bucket: string;
  region: string;
  /** An S3-compatible service's URL; path-style addressing is used with it. */
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
}

/** A bucket in S3 or an S3-compatible service. Objects are written with IMMUTABLE caching headers, so a CDN keeps them. */
export class S3Storage implements MediaStorage {
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(o: S3Options) {
    this.bucket = o.bucket;
    this.client = new S3Client({
      region: o.region,
      ...(o.endpoint ? { endpoint: o.endpoint, forcePathStyle: true } : {}),
      ...(o.accessKeyId && o.secretAccessKey ? { credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } } : {}),
      // Checksums only where S3 requires them: S3-compatible services do not all speak the
      // newer flexible-checksum headers, and the bodies here are small buffers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
  }

  async put(key: string, body: Buffer, contentType: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: checkKey(key), Body: body, ContentType: contentType, CacheControl: IMMUTABLE }));
  }

  async get(key: string): Promise<MediaObject | undefined> {
    if (!isKey(key)) return undefined;
    let out: GetObjectCommandOutput;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (missing(err)) return undefined;
      throw err;
    }
    return { body: out.Body as Readable, size: out.ContentLength ?? 0, contentType: out.ContentType ?? contentTypeOf(key), lastModified: out.LastModified ?? new Date(0) };
  }

  async has(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: checkKey(key) }));
      return true;
    } catch (err) {
      if (missing(err)) return false;
      throw err;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    // DeleteObjects takes at most 1,000 keys per call.
    for (let i = 0; i < keys.length; i += 1000) {
      const part = keys.slice(i, i + 1000).map((key) => ({ Key: checkKey(key) }));
      const out = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: part, Quiet: true } }));
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length) throw new Error(`S3 refused to delete ${failed.length} object(s): ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`.trim());
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  close(): void {
    this.client.destroy();
  }
}

// Without s3:ListBucket, S3 answers a missing key with 403 rather than 404: as absent either way.
function missing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.name === 'AccessDenied' || e?.$metadata?.httpStatusCode === 404 || e?.$metadata?.httpStatusCode === 403;
}

export function openStorage(media: { dir: string; s3?: S3Options | undefined }): MediaStorage {
  return media.s3 ? new S3Storage(media.s3) : new LocalStorage(media.dir);
}
