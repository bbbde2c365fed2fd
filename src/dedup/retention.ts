/**
 * S3 Object Lock with deduplication. A chunk a backup uploads is locked a margin longer than the
 * backup (src/storage/object-lock.ts: a quarter of object_lock_days, at least a day); a chunk it
 * finds present and reuses may have been locked by an older backup for less time, so its
 * retention is extended (PUT ?retention) before the manifest naming it is written. So a chunk
 * stays locked at least as long as the longest-retained backup that names it, whose manifest is
 * locked from when its stream ends, as long as no stream runs longer than STREAM_ALLOWANCE_DAYS.
 * prune, for its part, keeps the chunks still under retention.
 */
import { PluginError } from '../errors.js';
import { s3Url } from '../storage/keys.js';
import { chunkRetentionMargin, retainUntil, type ObjectLockMode } from '../storage/object-lock.js';
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

/** A reused chunk is extended unless it stays locked this long past the backup's own retention: half a day, for the time the rest of the stream may take. */
const STREAM_ALLOWANCE_DAYS = 0.5;

/**
 * The retention to give a chunk found present, or undefined when it is locked long enough already.
 * Whenever it would end before this backup's own (`days` from now) and the allowance, however
 * little, it is extended to `days` and chunkRetentionMargin(days) from now, as an uploaded chunk is
 * locked: the backups of the following days find it long enough and ask nothing, so a daily backup
 * extends a chunk it keeps reusing about every quarter of `days` rather than every day
 * (docs/deduplication.md: requests against days locked). The mode is never weakened: a chunk
 * still under COMPLIANCE stays so (S3 refuses the change) even when the config says GOVERNANCE; an
 * expired retention protects nothing, so it takes the config's mode.
 */
export function retentionToExtend(head: ObjectHead, lock: ChunkLock, now = Date.now()): Retention | undefined {
  const needed = Date.parse(retainUntil(lock.days + STREAM_ALLOWANCE_DAYS, now));
  const current = head.lockedUntil === undefined ? undefined : Date.parse(head.lockedUntil);
  if (current !== undefined && current >= needed) return undefined;
  const compliant = head.lockMode === 'COMPLIANCE' && current !== undefined && current > now;
  return { mode: compliant ? 'COMPLIANCE' : lock.mode, until: retainUntil(lock.days + chunkRetentionMargin(lock.days), now) };
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
