/**
 * S3 Object Lock with deduplication. A chunk a backup uploads gets the backup's retention like any
 * object it writes (the PUT's lock headers); a chunk it finds present and reuses may have been
 * locked by an older backup for less time, so its retention is extended (PUT ?retention) before
 * the manifest naming it is written: a chunk stays locked at least as long as the longest-retained
 * backup that names it (to within the time that backup's stream took, for a chunk it uploads: the
 * manifest, written last, is locked from a little later; a chunk it extends gets a margin beyond). prune, for its part, keeps the chunks still under retention.
 */
import { PluginError } from '../errors.js';
import { s3Url } from '../storage/keys.js';
import { retainUntil, type ObjectLockMode } from '../storage/object-lock.js';
import type { ObjectHead, ObjectStore } from '../storage/store.js';

/** object_lock_mode and object_lock_days of the backup. */
export interface ChunkLock {
  mode: ObjectLockMode;
  days: number;
}

export interface Retention {
  mode: ObjectLockMode;
  until: string;
}

/** How far past the backup's own a chunk's retention is extended: a quarter of object_lock_days, at least a day. */
export function extensionMargin(days: number): number {
  return Math.max(1, days / 4);
}

/**
 * The retention to give a chunk found present, or undefined when it is locked long enough already.
 * Whenever it would end before this backup's own (`days` from now), however little, it is
 * extended, to that plus extensionMargin(days): a backup's chunks may not be deletable before it
 * is, and the backups of the next days (each needing a day more) find it long enough and ask
 * nothing, so a daily backup extends a chunk it keeps reusing every quarter of `days` rather than
 * every day (docs/deduplication.md: requests against days locked). The mode is never weakened: a
 * chunk still under COMPLIANCE stays so (S3 refuses the change) even when the config says
 * GOVERNANCE; an expired retention protects nothing, so it takes the config's mode.
 */
export function retentionToExtend(head: ObjectHead, lock: ChunkLock, now = Date.now()): Retention | undefined {
  const needed = Date.parse(retainUntil(lock.days, now));
  const current = head.lockedUntil === undefined ? undefined : Date.parse(head.lockedUntil);
  if (current !== undefined && current >= needed) return undefined;
  const compliant = head.lockMode === 'COMPLIANCE' && current !== undefined && current > now;
  return { mode: compliant ? 'COMPLIANCE' : lock.mode, until: retainUntil(lock.days + extensionMargin(lock.days), now) };
}

/** Extends the retention of chunk `key` (of HEAD `head`) where this backup needs it to; returns whether it did. */
export async function keepChunkLocked(store: ObjectStore, key: string, head: ObjectHead, lock: ChunkLock): Promise<boolean> {
  const set = retentionToExtend(head, lock);
  if (!set) return false;
  try {
    if (!store.putObjectRetention) throw new Error('the store cannot set object lock retention');
    await store.putObjectRetention(key, set.mode, set.until);
  } catch (err) {
    throw new PluginError(
      `extending the object lock retention of chunk ${s3Url(store.bucket, key)}, which this backup reuses, to ${set.until} (${set.mode}) failed ` +
        `(${(err as Error).message}): the backup is not written, as its chunks could be deleted before it; ` +
        'allow s3:PutObjectRetention, and s3:GetObjectRetention (without which a HEAD shows no retention)',
    );
  }
  return true;
}
