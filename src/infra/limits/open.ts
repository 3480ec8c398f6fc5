// Opens the limits for a configuration: Redis (RATE_LIMIT_REDIS_URL, by default the `session`
// store's Redis) shared by every instance, or in-process counters in embedded mode.
import type { Config } from '../../config.ts';
import { openRedis } from '../redis.ts';
import type { BlockLog } from './blocks.ts';
import { Limits } from './limits.ts';

export function openLimits(config: Config, o: { log?: BlockLog; keyPrefix?: string } = {}): Limits {
  const target = config.limits.redis;
  const keyPrefix = o.keyPrefix ?? config.redis.keyPrefix;
  if (!target) return new Limits(config.limits, { log: o.log });
  return new Limits(config.limits, {
    client: openRedis(target, { keyPrefix, commandTimeoutMs: config.limits.timeoutMs }),
    subscriber: openRedis(target, { autoResubscribe: false }),
    channelPrefix: keyPrefix,
    log: o.log,
  });
}
