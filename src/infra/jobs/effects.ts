// Side effects made once per key (an email per order, a reminder per abandonment), whatever
// happens to the job that makes them. The key is claimed for one run of one job before the
// effect, renewed while it is under way, and marked done after it:
// - the effect fails: the run gives its claim back and a retry makes it;
// - the worker dies during the effect (a kill mid-send): the queue gives the job to another worker
//   once the dead one's lock runs out, and that run takes over the claim once it has gone
//   unrenewed for the lock timeout, then makes the effect again with the same reference (the
//   email's Message-ID). A send cut off before its data was complete was never delivered, so
//   this is the only copy; one cut off after it (the server may have delivered it without being
//   able to say so) arrives twice, with one Message-ID. Email is at least once here: a kill should
//   cost a duplicate at worst, never a lost confirmation;
// - a run of the same job finds the claim fresh (the queue thought a live, slow worker dead): it
//   throws, and the job retries later, when the claim is done or stale, so two live runs never
//   send side by side;
// - a different job finds the key claimed or done (a second abandoned-cart run for one cart):
//   it leaves it alone.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';

export interface OnceOptions {
  /** A claim not renewed for this long belongs to a dead run (the queue's lock timeout). */
  staleMs: number;
  log?: { error(obj: object, msg: string): void };
}

/** Thrown when another run of the same job is making the effect: the job retries later. */
export class EffectInProgress extends Error {
  constructor(key: string) {
    super(`${key} is being made by another run of this job`);
  }
}

/** Makes `effect` unless `key` was made (or is being made) by another job; true if it ran here. */
export async function once(db: Db, key: string, job: string, effect: (ref: string) => Promise<void>, o: OnceOptions): Promise<boolean> {
  const token = randomUUID();
  const { rows } = await sql<{ ref: string }>`
    insert into job_effects (key, job, ref, token) values (${key}, ${job}, ${token}, ${token})
    on conflict (key) do update set token = excluded.token, claimed_at = now(), done_at = now()
      where job_effects.job = excluded.job and not job_effects.done
        and job_effects.claimed_at < now() - make_interval(secs => ${o.staleMs / 1000})
    returning ref`.execute(db);
  const ref = rows[0]?.ref;
  if (!ref) {
    const held = await db.selectFrom('job_effects').select(['job', 'done']).where('key', '=', key).executeTakeFirst();
    // Gone meanwhile (its run gave it back): a retry claims it afresh.
    if (!held || (!held.done && held.job === job)) throw new EffectInProgress(key);
    return false;
  }
  const mine = () => db.updateTable('job_effects').where('key', '=', key).where('token', '=', token);
  const renew = setInterval(() => void mine().set({ claimed_at: sql`now()` }).execute().catch(() => undefined), o.staleMs / 3);
  try {
    await effect(ref);
  } catch (err) {
    await db.deleteFrom('job_effects').where('key', '=', key).where('token', '=', token).where('done', '=', false).execute();
    throw err;
  } finally {
    clearInterval(renew);
  }
  // Made: a failure to record it now must not fail the job, whose retry would make it again.
  for (let attempt = 1; ; attempt++) {
    try {
      await mine().set({ done: true, done_at: sql`now()` }).execute();
      return true;
    } catch (err) {
      if (attempt === 3) {
        o.log?.error({ err, key }, 'effect made but not recorded as done: its claim stands, so nothing repeats it');
        return true;
      }
      await sleep(500 * attempt);
    }
  }
}
