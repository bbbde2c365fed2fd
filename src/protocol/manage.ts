/**
 * Backup management (gpbackup_manager, gpbackman) and utilities:
 *   delete_backup <config> <timestamp>
 *   list_directory <config> [<path>]
 *   delete_directory <config> <path>
 *   prune <config> [--grace <duration>]   (deduplicated chunks no backup names: docs/deduplication.md)
 * Deletes are confined to one backup or to a path inside the folder. Directory paths are
 * taken relative to the bucket when they begin with the folder (as the Go plugin takes them),
 * else relative to the folder.
 */
import { log } from '../log/gplog.js';
import { backupPrefix, checkTimestamp, directoryPrefix, type DirectoryPrefix, s3Url } from '../storage/keys.js';
import { MAX_DELETE_BATCH, type ObjectStore } from '../storage/store.js';
import { openContext } from './context.js';
import { PluginError } from '../errors.js';
import { abortUploadsUnder } from './orphans.js';
import { checkNotLocked } from './object-lock.js';
import { DEFAULT_GRACE_MS, prune } from '../dedup/prune.js';

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
  if (config.deduplication) log.info('delete_backup: the chunks only this backup used stay until `prune` deletes them');
  // Exit 0 as the Go plugin does, but a timestamp off by a digit is not left looking deleted.
  if (count === 0 && aborted === 0) process.stderr.write(`delete_backup: no backup ${timestamp} under ${s3Url(store.bucket, prefix)}: nothing was deleted\n`);
}

/**
 * A path that matched nothing says where it was looked for, on stderr: exit 0 as with the Go
 * plugin, but a script whose path is off by a folder is not left believing the directory empty.
 */
function reportNothingFound(what: string, bucket: string, path: string | undefined, dir: DirectoryPrefix, folder: string): void {
  const how =
    path === undefined ? `the folder "${folder}"` : `path "${path}" taken relative to the ${dir.relativeTo === 'bucket' ? 'bucket' : `folder "${folder}"`}`;
  process.stderr.write(`${what}: no objects under ${s3Url(bucket, dir.prefix)} (${how})\n`);
}

export async function listDirectory([configPath, path]: string[]): Promise<void> {
  const { config, store } = await openContext(configPath, () => 1, true);
  const dir = directoryPrefix(config.folder, path, 'list_directory');
  const out: string[] = ['NAME\tSIZE(bytes)'];
  let count = 0;
  for await (const o of store.listObjects(dir.prefix)) {
    if (o.key.endsWith('/')) continue; // "directory" placeholder objects
    out.push(`${o.key}\t${o.size}`);
    count++;
    if (out.length >= 1000) process.stdout.write(out.splice(0).join('\n') + '\n');
  }
  if (out.length) process.stdout.write(out.join('\n') + '\n');
  log.info(`list_directory: ${count} object(s) under ${s3Url(store.bucket, dir.prefix)}`);
  if (count === 0) reportNothingFound('list_directory', store.bucket, path, dir, config.folder);
}

export async function deleteDirectory([configPath, path]: string[]): Promise<void> {
  const { config, store } = await openContext(configPath, () => DELETE_BATCHES_IN_FLIGHT, true);
  const dir = directoryPrefix(config.folder, path, 'delete_directory');
  const count = await deletePrefix(store, dir.prefix, 'delete_directory');
  log.info(`delete_directory: deleted ${count} object(s) under ${s3Url(store.bucket, dir.prefix)}`);
  if (count === 0) reportNothingFound('delete_directory', store.bucket, path, dir, config.folder);
}

const GRACE_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--grace 24h`: a whole number and a unit s, m, h or d (0 alone is none). */
export function parseGrace(text: string): number {
  const m = /^(\d+)([smhd])?$/.exec(text.trim());
  if (!m || (m[2] === undefined && m[1] !== '0')) throw new PluginError(`prune: --grace takes a duration such as 24h, 90m or 7d (0 for none), got "${text}"`);
  return Number(m[1]) * (m[2] ? GRACE_UNITS[m[2]]! : 0);
}

export async function pruneChunks([configPath, ...rest]: string[]): Promise<void> {
  let graceMs = DEFAULT_GRACE_MS;
  if (rest.length) {
    if (rest[0] !== '--grace' || rest.length !== 2) throw new PluginError(`prune takes <config> [--grace <duration>], got "${rest.join(' ')}"`);
    graceMs = parseGrace(rest[1]!);
  }
  const { config, store, signal } = await openContext(configPath, c => c.restoreConcurrency, true);
  const r = await prune(store, {
    folder: config.folder,
    graceMs,
    keys: config.decryptionKeys,
    concurrency: config.restoreConcurrency,
    retries: config.maxRetries,
    signal,
  });
  const line =
    `prune: freed ${(r.deletedBytes / 1048576).toFixed(1)} MiB (${r.deletedBytes} bytes) in ${r.deleted} chunk(s); kept ${r.referenced} chunk(s) named by ${r.manifests} manifest(s)` +
    ` and ${r.young} unnamed chunk(s) younger than the grace period (${rest[1] ?? '24h'})` +
    (r.locked ? ` and ${r.locked} unnamed chunk(s) under object lock retention (the latest until ${r.lockedUntil})` : '') +
    `; ${r.plainObjects} plain object(s) left as they are`;
  process.stdout.write(`${line}\n`);
  log.info(`${line} under ${s3Url(store.bucket, config.folder)}`);
}
