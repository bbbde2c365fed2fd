/** Unfinished multipart uploads of a backup: delete_backup and the coordinator's cleanup abort them. */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { log } from '../../src/log/gplog.js';
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

test('a server that cannot list uploads (501 NotImplemented, gofakes3\'s 404 NoSuchUpload): the clean-up is skipped with a warning saying so', async () => {
  const warnings: string[] = [];
  mock.method(log, 'warn', (msg: string) => warnings.push(msg));
  for (const [status, code, why] of [
    [501, 'NotImplemented', /the server does not implement ListMultipartUploads/],
    [404, 'NoSuchUpload', /the server answered 404 NoSuchUpload/],
  ] as const) {
    const store = new MemoryStore();
    store.listMultipartUploads = async function* () {
      throw new StoreRequestError(`listing uploads: ${code} (HTTP ${status})`, status, code);
    };
    assert.equal(await abortUploadsUnder(store, PREFIX, 'delete_backup'), 0);
    assert.match(warnings.pop()!, new RegExp(`^delete_backup: cannot list multipart uploads under s3://test-bucket/${PREFIX} \\(${why.source}.*\\): uploads left by killed backups were not looked for, nor removed`));
  }
  // Any other 404 (a bucket that is gone) is a failure.
  const gone = new MemoryStore();
  gone.listMultipartUploads = async function* () {
    throw new StoreRequestError('listing uploads: NoSuchBucket (HTTP 404)', 404, 'NoSuchBucket');
  };
  await assert.rejects(abortUploadsUnder(gone, PREFIX, 'delete_backup'), /NoSuchBucket/);
  mock.restoreAll();
});
