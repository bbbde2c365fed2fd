/**
 * Multipart uploads a backup left behind: a backup_data killed with SIGKILL, or a host that
 * crashed, leaves its parts billed until something aborts the upload. delete_backup and the
 * coordinator's cleanup_plugin_for_backup abort those under the backup's prefix.
 */
import { log } from '../log/gplog.js';
import { s3Url } from '../storage/keys.js';
import type { MultipartUploadInfo, ObjectStore, StoreRequestError } from '../storage/store.js';
import { describeError, PluginError } from '../errors.js';

/**
 * Why a failed ListMultipartUploads only means the clean-up is skipped, or undefined when it is a
 * real failure: no permission (as after a retried create, client.ts), or a server that does not
 * list uploads: 501 NotImplemented, or gofakes3's 404 NoSuchUpload for a bucket that never had one.
 */
function unlistableUploads(err: unknown): string | undefined {
  const { status, code } = err as StoreRequestError;
  if (status === 403) return 'the credentials need s3:ListBucketMultipartUploads';
  if (status === 501 || code === 'NotImplemented') return 'the server does not implement ListMultipartUploads';
  if (status === 404 && code === 'NoSuchUpload') return 'the server answered 404 NoSuchUpload: it keeps no list of uploads for this bucket';
  return undefined;
}

/**
 * Aborts every unfinished multipart upload of a key under `prefix` (with `startedBefore`: only
 * those begun before then, by the server's clock; an upload whose start time the listing does not
 * give is left alone then), logging each one; returns how many were aborted.
 */
export async function abortUploadsUnder(store: ObjectStore, prefix: string, what: string, startedBefore?: Date): Promise<number> {
  const failures: string[] = [];
  let aborted = 0;
  const uploads: MultipartUploadInfo[] = [];
  try {
    for await (const upload of store.listMultipartUploads(prefix)) uploads.push(upload);
  } catch (err) {
    const skipped = unlistableUploads(err);
    if (!skipped) throw err;
    log.warn(`${what}: cannot list multipart uploads under ${s3Url(store.bucket, prefix)} (${skipped}): uploads left by killed backups were not looked for, nor removed: ${describeError(err)}`);
    return 0;
  }
  for (const upload of uploads) {
    const url = s3Url(store.bucket, upload.key);
    if (startedBefore && !(upload.initiated.getTime() < startedBefore.getTime())) {
      log.verbose(`${what}: multipart upload ${upload.uploadId} of ${url} was begun after the cleanup started (or at no stated time): left alone`);
      continue;
    }
    try {
      await store.abortMultipartUpload(upload.key, upload.uploadId);
      aborted++;
      log.info(`${what}: aborted unfinished multipart upload ${upload.uploadId} of ${url}`);
    } catch (err) {
      failures.push(`${upload.uploadId} of ${url}: ${describeError(err)}`);
      log.error(`${what}: could not abort multipart upload ${upload.uploadId} of ${url}: ${describeError(err)}`);
    }
  }
  if (failures.length) {
    throw new PluginError(`${what}: ${failures.length} unfinished multipart upload(s) could not be aborted: ${failures.slice(0, 3).join('; ')}${failures.length > 3 ? '; ...' : ''}`);
  }
  return aborted;
}
