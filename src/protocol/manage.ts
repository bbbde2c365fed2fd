/**
 * Backup management (gpbackup_manager, gpbackman) and utilities:
 *   delete_backup <config> <timestamp>
 *   list_directory <config> [<path>]
 *   delete_directory <config> <path>
 * Deletes are confined to one backup or to a path below the folder.
 */
import { log } from '../log/gplog.js';
import { backupPrefix, checkTimestamp, folderSubPrefix, s3Url } from '../storage/keys.js';
import { MAX_DELETE_BATCH, type ObjectStore } from '../storage/store.js';
import { openContext } from './context.js';
import { PluginError } from './errors.js';
import { abortUploadsUnder } from './orphans.js';
import { checkNotLocked } from './object-lock.js';

const DELETE_BATCHES_IN_FLIGHT = 4;

/** Deletes every object under the prefix, in DeleteObjects batches; any key that fails is named. */
async function deletePrefix(store: ObjectStore, prefix: string, what: string): Promise<number> {
  const keys: string[] = [];
  for await (const o of store.listObjects(prefix)) keys.push(o.key);
  const batches: string[][] = [];
  for (let i = 0; i < keys.length; i += MAX_DELETE_BATCH) batches.push(keys.slice(i, i + MAX_DELETE_BATCH));
  const failures: string[] = [];
  for (let i = 0; i < batches.length; i += DELETE_BATCHES_IN_FLIGHT) {
    const results = await Promise.all(batches.slice(i, i + DELETE_BATCHES_IN_FLIGHT).map(b => store.deleteObjects(b)));
    for (const f of results.flat()) failures.push(`${f.key}: ${f.message}`);
  }
  if (failures.length) {
    for (const f of failures) log.error(`${what}: could not delete ${f}`);
    const shown = failures.slice(0, 3).join('; ');
    throw new PluginError(
      `${what}: ${failures.length} of ${keys.length} objects under ${s3Url(store.bucket, prefix)} could not be deleted: ${shown}${failures.length > 3 ? '; ...' : ''}`,
    );
  }
  return keys.length;
}

export async function deleteBackup([configPath, timestamp]: string[]): Promise<void> {
  checkTimestamp(timestamp); // before S3 is touched
  const { config, store } = await openContext(configPath, () => DELETE_BATCHES_IN_FLIGHT, true);
  const prefix = backupPrefix(config.folder, timestamp);
  await checkNotLocked(store, prefix, `delete_backup ${timestamp}`);
  const count = await deletePrefix(store, prefix, `delete_backup ${timestamp}`);
  const aborted = await abortUploadsUnder(store, prefix, `delete_backup ${timestamp}`);
  log.info(`delete_backup: deleted ${count} object(s) and aborted ${aborted} unfinished multipart upload(s) under ${s3Url(store.bucket, prefix)}`);
}

export async function listDirectory([configPath, relPath]: string[]): Promise<void> {
  const { config, store } = await openContext(configPath, () => 1, true);
  const prefix = folderSubPrefix(config.folder, relPath, 'list_directory');
  const out: string[] = ['NAME\tSIZE(bytes)'];
  let count = 0;
  for await (const o of store.listObjects(prefix)) {
    if (o.key.endsWith('/')) continue; // "directory" placeholder objects
    out.push(`${o.key}\t${o.size}`);
    count++;
    if (out.length >= 1000) process.stdout.write(out.splice(0).join('\n') + '\n');
  }
  if (out.length) process.stdout.write(out.join('\n') + '\n');
  log.info(`list_directory: ${count} object(s) under ${s3Url(store.bucket, prefix)}`);
}

export async function deleteDirectory([configPath, relPath]: string[]): Promise<void> {
  const { config, store } = await openContext(configPath, () => DELETE_BATCHES_IN_FLIGHT, true);
  const prefix = folderSubPrefix(config.folder, relPath, 'delete_directory');
  const count = await deletePrefix(store, prefix, 'delete_directory');
  log.info(`delete_directory: deleted ${count} object(s) under ${s3Url(store.bucket, prefix)}`);
}
