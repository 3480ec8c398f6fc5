// Cron patterns (UTC) for the schedules, read by cron-parser (what BullMQ itself uses).
import { CronExpressionParser } from 'cron-parser';

/** The first tick of `pattern` strictly after `after`. Throws on a pattern cron-parser refuses. */
export function nextRun(pattern: string, after: Date): Date {
  return CronExpressionParser.parse(pattern, { currentDate: after, tz: 'UTC' }).next().toDate();
}
