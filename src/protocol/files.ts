/**
 * backup_file <config> <local_file>: uploads the file, leaves it in place.
 * restore_file <config> <local_file>: creates the file from its object,
 * through a temporary file renamed into place, so a failed restore leaves no
 * partial file (and an existing file untouched).
 */
import { closeSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { log } from '../log/gplog.js';
import { downloadObject } from '../storage/download.js';
import { keyForPath, s3Url } from '../storage/keys.js';
import { FileSink } from '../storage/sink.js';
import { FdSource } from '../storage/source.js';
import { uploadStream } from '../storage/upload.js';
import { openContext } from './context.js';
import { PluginError } from './errors.js';
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
  try {
    ({ bytes } = await transferring('uploading', key, () =>
      uploadStream(store, key, new FdSource(fd, signal), {
        partSize: config.backupPartSize,
        concurrency: config.backupConcurrency,
        signal,
      }),
    ));
  } finally {
    closeSync(fd);
  }
  log.info(transferLine('Uploaded', bytes, key, started, { detail: `${localPath} to ${s3Url(store.bucket, key)}` }));
}

export async function restoreFile([configPath, localPath]: string[]): Promise<void> {
  const { config, store, signal } = await openContext(configPath, c => c.restoreConcurrency);
  const key = keyForPath(config.folder, localPath);
  const started = Date.now();
  const temp = join(dirname(localPath), `.${basename(localPath)}.partial-${process.pid}`);
  let fd: number;
  try {
    fd = openSync(temp, 'wx', 0o644);
  } catch (err) {
    throw new PluginError(`restore_file: cannot create ${localPath}: ${(err as Error).message}`);
  }
  try {
    const sink = new FileSink(fd, localPath);
    const bytes = await transferring('downloading', key, () =>
      downloadObject(store, key, sink, {
        partSize: config.restorePartSize,
        concurrency: config.restoreConcurrency,
        signal,
        retries: config.maxRetries,
      }),
    );
    closeSync(fd);
    renameSync(temp, localPath);
    log.info(transferLine('Downloaded', bytes, key, started, { detail: `${s3Url(store.bucket, key)} to ${localPath}` }));
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
