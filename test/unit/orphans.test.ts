/** Unfinished multipart uploads of a backup: delete_backup and the coordinator's cleanup abort them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { abortUploadsUnder } from '../../src/protocol/orphans.js';
import { StoreRequestError } from '../../src/storage/store.js';
import { MemoryStore } from '../support/memory-store.js';

const PREFIX = 'f/backups/20240101/20240101000000/';

test('every upload under the prefix is aborted, and nothing else', async () => {
  const store = new MemoryStore();
  const mine = [await store.createMultipartUpload(`${PREFIX}a`), await store.createMultipartUpload(`${PREFIX}b`)];
  const other = await store.createMultipartUpload('f/backups/20240101/20240101000001/a');
  assert.equal(await abortUploadsUnder(store, PREFIX, 'delete_backup'), 2);
  for (const id of mine) assert.ok(!store.uploads.has(id));
  assert.ok(store.uploads.has(other));
});

test('with startedBefore, an upload begun since (or at no stated time) is left alone', async () => {
  const store = new MemoryStore();
  const old = await store.createMultipartUpload(`${PREFIX}old`);
  const fresh = await store.createMultipartUpload(`${PREFIX}fresh`);
  const undated = await store.createMultipartUpload(`${PREFIX}undated`);
  store.uploads.get(old)!.initiated = new Date(Date.now() - 60_000);
  store.uploads.get(fresh)!.initiated = new Date(Date.now() + 60_000);
  store.uploads.get(undated)!.initiated = new Date(Number.NaN);
  assert.equal(await abortUploadsUnder(store, PREFIX, 'cleanup', new Date()), 1);
  assert.ok(!store.uploads.has(old));
  assert.ok(store.uploads.has(fresh) && store.uploads.has(undated));
});

test('an abort that fails fails the command, naming the upload; a denied listing is a warning only', async () => {
  const store = new MemoryStore();
  const id = await store.createMultipartUpload(`${PREFIX}a`);
  store.fault = op => {
    if (op === 'abort') throw new StoreRequestError('aborting: InternalError (HTTP 500)', 500, 'InternalError');
  };
  await assert.rejects(abortUploadsUnder(store, PREFIX, 'delete_backup'), new RegExp(`1 unfinished multipart upload\\(s\\) could not be aborted: ${id} of s3://test-bucket/${PREFIX}a`));
  const denied = new MemoryStore();
  denied.listMultipartUploads = async function* () {
    throw new StoreRequestError('listing: AccessDenied (HTTP 403)', 403, 'AccessDenied');
  };
  assert.equal(await abortUploadsUnder(denied, PREFIX, 'delete_backup'), 0);
});
