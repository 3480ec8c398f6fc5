// Carts and wishlists are both "lists owned by a user or a guest session": finding, creating and
// handing one over from a guest to a user is the same SQL for both tables.
import type { Db } from '../../db/database.ts';
import type { Owner } from './session.ts';

export type OwnedTable = 'carts' | 'wishlists';

export async function findListId(db: Db, table: OwnedTable, owner: Owner): Promise<number | undefined> {
  const q = db.selectFrom(table).select('id');
  const row = await (owner.userId !== undefined ? q.where('user_id', '=', owner.userId) : q.where('session_key', '=', owner.sessionKey)).executeTakeFirst();
  return row?.id;
}

/**
 * The owner's list id, creating the list on first use. Safe when many requests race to create it,
 * and when a sign-in merges (deletes) a guest list between the insert and the look that follows.
 */
export async function ensureListId(db: Db, table: OwnedTable, owner: Owner): Promise<number> {
  const values = owner.userId !== undefined ? { user_id: owner.userId, session_key: null } : { user_id: null, session_key: owner.sessionKey };
  for (;;) {
    const found = await findListId(db, table, owner);
    if (found !== undefined) return found;
    const inserted = await db.insertInto(table).values(values).onConflict((oc) => oc.doNothing()).returning('id').executeTakeFirst();
    if (inserted) return inserted.id;
  }
}

/** Locks a guest's list for a merge (a second, concurrent merge waits and then finds nothing). */
export async function lockGuestList(db: Db, table: OwnedTable, sessionKey: string): Promise<number | undefined> {
  const row = await db.selectFrom(table).select('id').where('session_key', '=', sessionKey).forUpdate().executeTakeFirst();
  return row?.id;
}

export async function deleteList(db: Db, table: OwnedTable, id: number): Promise<void> {
  await db.deleteFrom(table).where('id', '=', id).execute();
}
