// One contract for both media stores: the local folder and S3 (s3rver on loopback, a real
// S3-compatible server). Whatever passes here is interchangeable behind `app.media`.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { IMMUTABLE, LocalStorage, S3Storage, type MediaStorage } from '../../src/infra/media/storage.ts';
import { startS3, type TestS3 } from '../helpers/s3.ts';

async function text(storage: MediaStorage, key: string): Promise<string | undefined> {
  const o = await storage.get(key);
  if (!o) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of o.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

function contract(name: string, open: () => Promise<{ storage: MediaStorage; close(): Promise<void> }>) {
  describe(`media storage: ${name}`, () => {
    let storage: MediaStorage;
    let close: () => Promise<void>;
    before(async () => ({ storage, close } = await open()));
    after(() => close());

    test('put, get with size, type and date, has, list by prefix', async () => {
      await storage.put('products/1/aaaa-200.webp', Buffer.from('webp bytes'), 'image/webp');
      await storage.put('products/1/aaaa.jpg', Buffer.from('jpeg!'), 'image/jpeg');
      await storage.put('products/2/bbbb.png', Buffer.from('png'), 'image/png');
      const o = await storage.get('products/1/aaaa-200.webp');
      assert.ok(o);
      assert.equal(o.size, 10);
      assert.equal(o.contentType, 'image/webp');
      assert.ok(Math.abs(o.lastModified.getTime() - Date.now()) < 60_000);
      o.body.destroy();
      assert.equal(await text(storage, 'products/1/aaaa.jpg'), 'jpeg!');
      assert.equal(await storage.has('products/1/aaaa.jpg'), true);
      assert.equal(await storage.has('products/1/nope.jpg'), false);
      assert.deepEqual(await storage.list('products/1/'), ['products/1/aaaa-200.webp', 'products/1/aaaa.jpg']);
    });

    test('a missing key is undefined, a rewrite replaces, delete removes and ignores missing keys', async () => {
      assert.equal(await storage.get('products/9/missing.jpg'), undefined);
      await storage.put('categories/3/cccc.jpg', Buffer.from('one'), 'image/jpeg');
      await storage.put('categories/3/cccc.jpg', Buffer.from('two'), 'image/jpeg');
      assert.equal(await text(storage, 'categories/3/cccc.jpg'), 'two');
      await storage.delete(['categories/3/cccc.jpg', 'categories/3/never.jpg']);
      assert.equal(await storage.has('categories/3/cccc.jpg'), false);
      await storage.delete([]);
    });

    test('keys that could escape are refused, never written', async () => {
      for (const key of ['../x.jpg', 'products/../../x.jpg', '/abs.jpg', 'products/1/', 'a//b.jpg', 'products/1/%2e%2e.jpg', 'products\\1.jpg']) {
        await assert.rejects(storage.put(key, Buffer.from('x'), 'image/jpeg'), /bad media key/, key);
        assert.equal(await storage.get(key), undefined, `${key}: names nothing`);
      }
    });
  });
}

contract('local folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pasargad-media-'));
  const storage = new LocalStorage(dir);
  return {
    storage,
    async close() {
      // No temporary file is left after the writes.
      const left = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.part'));
      assert.deepEqual(left, []);
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

let s3: TestS3;
contract('S3 (s3rver)', async () => {
  s3 = await startS3();
  const storage = new S3Storage({ bucket: s3.bucket, region: 'us-east-1', endpoint: s3.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  return {
    storage,
    async close() {
      storage.close();
      await s3.close();
    },
  };
});

test('S3 objects are written with immutable caching headers, for the CDN in front', async () => {
  const server = await startS3('headers');
  const storage = new S3Storage({ bucket: 'headers', region: 'us-east-1', endpoint: server.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  const client = new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  try {
    await storage.put('products/1/dddd.webp', Buffer.from('x'), 'image/webp');
    const out = await client.send(new GetObjectCommand({ Bucket: 'headers', Key: 'products/1/dddd.webp' }));
    assert.equal(out.CacheControl, IMMUTABLE);
    assert.equal(out.ContentType, 'image/webp');
    await out.Body?.transformToByteArray();
  } finally {
    client.destroy();
    storage.close();
    await server.close();
  }
});
