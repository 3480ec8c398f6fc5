// Opens the limits for a configuration: Redis (RATE_LIMIT_REDIS_URL, by default the `session`
// store's database) shared by every instance, or in-process counters in embedded mode.
import type { Config } from '../../config.ts';
import { redisClient } from '../cache/redis-store.ts';
import type { BlockLog } from './blocks.ts';
import { Limits } from './limits.ts';

export function openLimits(config: Config, o: { log?: BlockLog; keyPrefix?: string } = {}): Limits {
  const url = config.limits.redisUrl;
  const keyPrefix = o.keyPrefix ?? config.redis.keyPrefix;
  if (!url) return new Limits(config.limits, { log: o.log });
  return new Limits(config.limits, {
    client: redisClient(url, { keyPrefix, commandTimeoutMs: config.limits.timeoutMs }),
    subscriber: redisClient(url, { autoResubscribe: false }),
    channelPrefix: keyPrefix,
    log: o.log,
  });
}
