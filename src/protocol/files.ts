/**
 * backup_file <config> <local_file>: uploads the file, leaves it in place.
 * restore_file <config> <local_file>: creates the file from its object,
 * through a temporary file renamed into place, so a failed restore leaves no
 * partial file (and an existing file untouched).
 */
import { closeSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { log } from '../log/gplog.js';
import { keyForPath, s3Url } from '../storage/keys.js';
import { FileSink } from '../storage/sink.js';
import { FdSource } from '../storage/source.js';
import { openContext } from './context.js';
import { ensureRetention } from './object-lock.js';
import { uploadNote } from './encryption.js';
import { restoreAnyObject, uploadAsConfigured } from './dedup.js';
import { PluginError } from '../errors.js';
import { transferLine, transferring } from './timing.js';

export async function backupFile([configPath, localPath]: string[]): Promise<void> {
  const { config, store, signal } = await openContext(configPath, c => c.backupConcurrency);
  const key = keyForPath(config.folder, localPath);
  const started = Date.now();
  let fd: number;
  try {
    fd = openSync(localPath, 'r');
  } catch (err) {
    throw new PluginError(`backup_file: cannot read ${localPath}: ${(err as Error).message}`);
  }
  let bytes: number;
  let parts: number;
  try {
    ({ bytes, parts } = await transferring('uploading', key, () =>
      uploadAsConfigured(config, store, key, new FdSource(fd, signal), {
        partSize: config.backupPartSize,
        concurrency: config.backupConcurrency,
        signal,
      }),
    ));
  } finally {
    closeSync(fd);
  }
  await transferring('uploading', key, () => ensureRetention(config, store, key, parts));
  const detail = [`${localPath} to ${s3Url(store.bucket, key)}`, uploadNote(config)].filter(Boolean).join(', ');
  log.info(transferLine('Uploaded', bytes, key, started, { detail }));
}

/**
 * Where restore_file writes before the rename: a short name of its own in the same directory
 * (the rename stays within one file system). One derived from the target's name would be too
 * long for a name near the file system's 255-byte limit.
 */
export function tempPathFor(localPath: string): string {
  return join(dirname(localPath), `.gpbackup_s3_plugin-${process.pid}.partial`);
}

export async function restoreFile([configPath, localPath]: string[]): Promise<void> {
  const { config, store, signal } = await openContext(configPath, c => c.restoreConcurrency);
  const key = keyForPath(config.folder, localPath);
  const started = Date.now();
  const temp = tempPathFor(localPath);
  let fd: number;
  try {
    fd = openSync(temp, 'wx', 0o644);
  } catch (err) {
    throw new PluginError(`restore_file: cannot create ${localPath}: ${(err as Error).message}`);
  }
  try {
    const sink = new FileSink(fd, localPath);
    const { bytes, note } = await transferring('downloading', key, () =>
      restoreAnyObject(config, store, key, sink, {
        partSize: config.restorePartSize,
        concurrency: config.restoreConcurrency,
        signal,
        retries: config.maxRetries,
      }),
    );
    closeSync(fd);
    renameSync(temp, localPath);
    const detail = [`${s3Url(store.bucket, key)} to ${localPath}`, note].filter(Boolean).join(', ');
    log.info(transferLine('Downloaded', bytes, key, started, { detail }));
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    try {
      unlinkSync(temp);
    } catch {
      // already gone
    }
    throw err;
  }
}
