// Side effects made at most once per key, whatever happens to the job that makes them. The key is
// recorded before the effect; if the effect fails the record is removed and a retry makes it; if
// the worker dies after the effect (the crash the queue retries after), the retry finds the record
// and does not repeat it. An email is better lost in a crash between the record and the send than
// sent twice, and the log says which.
import type { Db } from '../../db/database.ts';

export async function once(db: Db, key: string, effect: () => Promise<void>): Promise<boolean> {
  const claimed = await db.insertInto('job_effects').values({ key }).onConflict((oc) => oc.column('key').doNothing()).returning('key').executeTakeFirst();
  if (!claimed) return false;
  try {
    await effect();
  } catch (err) {
    await db.deleteFrom('job_effects').where('key', '=', key).execute();
    throw err;
  }
  return true;
}
