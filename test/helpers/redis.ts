// The real Redis at 127.0.0.1:6379 for tests: each test gets its own key prefix, removed after.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { deleteMatching } from '../../src/infra/cache/redis-store.ts';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/2';

export function uniquePrefix(): string {
  return `test:${process.pid}:${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under a prefix (SCAN, never KEYS). */
export async function dropPrefix(prefix: string, url = TEST_REDIS_URL): Promise<void> {
  const client = new Redis(url);
  try {
    await deleteMatching(client, prefix);
  } finally {
    client.disconnect();
  }
}
