/**
 * S3 Object Lock with deduplication. A chunk a backup uploads gets the backup's retention like any
 * object it writes (the PUT's lock headers); a chunk it finds present and reuses may have been
 * locked by an older backup for less time, so its retention is extended (PUT ?retention) before
 * the manifest naming it is written: a chunk stays locked at least as long as the longest-retained
 * backup that names it (to within the time that backup's stream took: the manifest, written last,
 * is locked from a little later). prune, for its part, keeps the chunks still under retention.
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

/**
 * The retention to give a chunk found present, or undefined when it is locked long enough already.
 * Whenever it would end before this backup's own (`days` from now), it is extended to that,
 * however small the difference: a backup's chunks may not be deletable before it is. The mode is
 * never weakened: a chunk still under COMPLIANCE stays so (S3 refuses the change) even when the
 * config says GOVERNANCE; an expired retention protects nothing, so it takes the config's mode.
 */
export function retentionToExtend(head: ObjectHead, lock: ChunkLock, now = Date.now()): Retention | undefined {
  const until = retainUntil(lock.days, now);
  const current = head.lockedUntil === undefined ? undefined : Date.parse(head.lockedUntil);
  if (current !== undefined && current >= Date.parse(until)) return undefined;
  const compliant = head.lockMode === 'COMPLIANCE' && current !== undefined && current > now;
  return { mode: compliant ? 'COMPLIANCE' : lock.mode, until };
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
