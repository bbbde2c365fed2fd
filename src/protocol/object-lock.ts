/**
 * S3 Object Lock checks: setup refuses a bucket without object lock when object_lock_mode is
 * set, and delete_backup refuses, before deleting anything, a backup any object of which is
 * still under retention (in a versioned bucket a delete would otherwise "succeed" by adding
 * delete markers, hiding the backup while its locked versions stay).
 */
import type { PluginConfig } from '../config/types.js';
import { log } from '../log/gplog.js';
import { s3Url } from '../storage/keys.js';
import { findLocked, retainUntil } from '../storage/object-lock.js';
import type { ObjectStore } from '../storage/store.js';
import { PluginError } from '../errors.js';

/** HEADs at once when looking for retentions. */
const HEADS_IN_FLIGHT = 16;

export async function checkObjectLockForBackup(config: PluginConfig, store: ObjectStore, command: string): Promise<void> {
  if (!config.objectLockMode) return;
  const enabled = await store.objectLockEnabled?.();
  if (enabled === undefined) {
    throw new PluginError(
      `${command}: object_lock_mode is set but reading the object lock configuration of bucket ${config.bucket} was denied: allow s3:GetBucketObjectLockConfiguration`,
    );
  }
  if (!enabled) {
    throw new PluginError(
      `${command}: object_lock_mode is ${config.objectLockMode} but bucket ${config.bucket} does not have S3 Object Lock enabled: ` +
        'object lock can only be turned on when a bucket is created (x-amz-bucket-object-lock-enabled: true, which also turns on versioning); use such a bucket or remove object_lock_mode',
    );
  }
}

/**
 * Throws, naming the latest retain-until date, if any object under `prefix` is under retention
 * now. A bucket without object lock is one request; when the store may not tell, every object is asked.
 */
export async function checkNotLocked(store: ObjectStore, prefix: string, what: string, now = Date.now()): Promise<void> {
  if ((await store.objectLockEnabled?.()) === false) return;
  const keys: string[] = [];
  for await (const o of store.listObjects(prefix)) keys.push(o.key);
  const { count, latest } = await findLocked(store, keys, HEADS_IN_FLIGHT, now);
  if (latest) {
    throw new PluginError(
      `${what}: ${count} of ${keys.length} objects under ${s3Url(store.bucket, prefix)} are under S3 Object Lock retention` +
        `${latest.mode ? ` (${latest.mode})` : ''} until as late as ${latest.until.toISOString()} (${s3Url(store.bucket, latest.key)}); nothing was deleted: delete the backup after that date`,
    );
  }
}

/**
 * After an upload of several parts with object_lock_mode: the object must carry its retention.
 * AWS applies the one sent with CreateMultipartUpload; Ceph RGW 16 drops it, so a HEAD checks
 * and, where it is missing, PUT ?retention sets it (an object not yet locked takes it).
 */
export async function ensureRetention(config: PluginConfig, store: ObjectStore, key: string, parts: number): Promise<void> {
  if (!config.objectLockMode || !config.objectLockDays || parts <= 1) return;
  const head = await store.headObject(key);
  if (head?.lockedUntil) return;
  if (!store.putObjectRetention) throw new PluginError(`uploading ${s3Url(store.bucket, key)}: the store cannot set object lock retention`);
  const until = retainUntil(config.objectLockDays);
  await store.putObjectRetention(key, config.objectLockMode, until);
  log.verbose(`${s3Url(store.bucket, key)}: the server kept no retention from the multipart upload; set ${config.objectLockMode} until ${until}`);
}
