// Side effects made once per key, whatever happens to the job that makes them. The key is claimed
// (for this job) before the effect and marked done after it:
// - the effect fails: the claim is removed and a retry makes it;
// - the worker dies during the effect (a kill mid-send): the queue gives the job to another worker
//   once the dead one's lock runs out, and that run takes over its own job's unfinished claim and
//   makes the effect again, with the same reference (the email's Message-ID). An SMTP server keeps
//   a message only once it has answered the end of its data, so a send cut off before then was
//   never delivered, and the one after it is the only copy;
// - the worker dies after the effect, before it is marked done (a window of one database round
//   trip): the effect is made a second time, with the same Message-ID, which mail clients show once;
// - a different job finds the key claimed or done (a second abandoned-cart run for the same cart):
//   it leaves it alone.
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';

/** Makes `effect` unless `key` was made (or is being made) by another job; true if it ran here. */
export async function once(db: Db, key: string, job: string, effect: (ref: string) => Promise<void>): Promise<boolean> {
  const { rows } = await sql<{ ref: string }>`
    insert into job_effects (key, job, ref) values (${key}, ${job}, ${randomUUID()})
    on conflict (key) do update set done_at = now()
      where job_effects.job = excluded.job and not job_effects.done
    returning ref`.execute(db);
  const ref = rows[0]?.ref;
  if (!ref) return false;
  try {
    await effect(ref);
  } catch (err) {
    await db.deleteFrom('job_effects').where('key', '=', key).where('done', '=', false).execute();
    throw err;
  }
  await db.updateTable('job_effects').set({ done: true, done_at: sql`now()` }).where('key', '=', key).execute();
  return true;
}
