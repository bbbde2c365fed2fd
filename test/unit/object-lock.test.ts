/** Object lock: the headers of a locked upload, setup's bucket check, and delete_backup's refusal of a locked backup. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PluginConfig } from '../../src/config/types.js';
import { checkNotLocked, checkObjectLockForBackup } from '../../src/protocol/object-lock.js';
import { objectLockHeaders, retainUntil } from '../../src/storage/object-lock.js';
import type { ObjectHead, ObjectStore } from '../../src/storage/store.js';

test('retention headers: days from now to the second; none for setup probes or without a mode', () => {
  assert.equal(retainUntil(2, Date.parse('2026-01-30T23:59:59.999Z')), '2026-02-01T23:59:59Z');
  const h = objectLockHeaders('f/backups/20260101/20260101010101/gpbackup_0_20260101010101', 'COMPLIANCE', 3);
  assert.equal(h['x-amz-object-lock-mode'], 'COMPLIANCE');
  assert.match(h['x-amz-object-lock-retain-until-date']!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(objectLockHeaders('f/backups/20260101/20260101010101/.gpbackup_s3_plugin_probe_1_2', 'COMPLIANCE', 3), {});
  assert.deepEqual(objectLockHeaders('f/x', undefined, undefined), {});
});

/** A store of `heads` whose bucket says `enabled` about object lock; counts HEADs. */
function fakeStore(enabled: boolean | undefined, heads: Record<string, ObjectHead>) {
  const calls = { head: 0 };
  const store = {
    bucket: 'b',
    objectLockEnabled: async () => enabled,
    async *listObjects(prefix: string) {
      for (const [key, h] of Object.entries(heads)) if (key.startsWith(prefix)) yield { key, size: h.size };
    },
    headObject: async (key: string) => {
      calls.head++;
      return heads[key];
    },
  } as unknown as ObjectStore;
  return { store, calls };
}

test('delete_backup: a locked backup is refused naming the latest date; expired or absent retention passes', async () => {
  const now = Date.parse('2026-06-01T00:00:00Z');
  const heads: Record<string, ObjectHead> = {
    'p/a': { size: 1, lockedUntil: '2026-06-03T00:00:00Z', lockMode: 'GOVERNANCE' },
    'p/b': { size: 1, lockedUntil: '2026-07-04T05:06:07Z', lockMode: 'GOVERNANCE' },
    'p/c': { size: 1, lockedUntil: '2026-05-01T00:00:00Z', lockMode: 'GOVERNANCE' },
    'p/d': { size: 1 },
  };
  const { store } = fakeStore(true, heads);
  await assert.rejects(
    checkNotLocked(store, 'p/', 'delete_backup 1', now),
    /delete_backup 1: 2 of 4 objects under s3:\/\/b\/p\/ are under S3 Object Lock retention \(GOVERNANCE\) until as late as 2026-07-04T05:06:07.000Z \(s3:\/\/b\/p\/b\); nothing was deleted/,
  );
  await checkNotLocked(store, 'p/', 'x', Date.parse('2026-08-01T00:00:00Z'));
  // A bucket without object lock: one request, no HEADs.
  const off = fakeStore(false, heads);
  await checkNotLocked(off.store, 'p/', 'x', now);
  assert.equal(off.calls.head, 0);
  // Not allowed to read the bucket's configuration: every object is asked.
  const unknown = fakeStore(undefined, heads);
  await assert.rejects(checkNotLocked(unknown.store, 'p/', 'x', now), /2 of 4 objects/);
  assert.equal(unknown.calls.head, 4);
});

test('setup: object_lock_mode needs a bucket with object lock', async () => {
  const config = { bucket: 'b', objectLockMode: 'COMPLIANCE', objectLockDays: 1 } as PluginConfig;
  await assert.rejects(checkObjectLockForBackup(config, fakeStore(false, {}).store, 'setup_plugin_for_backup'), /bucket b does not have S3 Object Lock enabled/);
  await assert.rejects(checkObjectLockForBackup(config, fakeStore(undefined, {}).store, 'setup'), /allow s3:GetBucketObjectLockConfiguration/);
  await checkObjectLockForBackup(config, fakeStore(true, {}).store, 'setup');
  await checkObjectLockForBackup({ bucket: 'b' } as PluginConfig, fakeStore(false, {}).store, 'setup');
});
