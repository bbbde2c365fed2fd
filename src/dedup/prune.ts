/**
 * prune: deletes the chunks that no manifest names. The order makes a crash or a race harmless:
 *  1. its own marker first, then no live backup marker (sessions.ts), or it deletes nothing;
 *  2. chunks are listed before manifests: a chunk written after the chunk listing is not seen,
 *     so not deleted, and a manifest written before the manifest listing is read;
 *  3. every manifest under the folder's backups/ is read; one that cannot be read (no key, damaged,
 *     an error) stops the prune before anything is deleted;
 *  4. only chunks older than the grace period (by their LastModified) are deleted;
 *  5. in a bucket with object lock, a chunk still under retention is kept: a DELETE would only
 *     hide it behind a delete marker (the bucket is versioned) while its bytes stay billed.
 * A crash at any step leaves at most fewer chunks deleted than could have been.
 */
import { PluginError } from '../errors.js';
import { mapBounded } from '../storage/bounded.js';
import { cleanFolder, s3Url } from '../storage/keys.js';
import { findLocked } from '../storage/object-lock.js';
import { MAX_DELETE_BATCH, type ObjectStore } from '../storage/store.js';
import { chunkPrefix, nameOfChunkKey } from './chunk-store.js';
import { readManifest, type ChunkReadOptions } from './restore.js';
import { liveMarkers, Session } from './sessions.js';

/**
 * 24 hours: a backup_data call that finds a chunk present writes its manifest before it ends, and
 * no single table stream of a nightly backup runs for a day; the session markers cover the rest.
 */
export const DEFAULT_GRACE_MS = 24 * 60 * 60 * 1000;

export interface PruneOptions extends Omit<ChunkReadOptions, 'folder'> {
  folder: string;
  graceMs: number;
  /** The server's "now" is taken from the chunk listing's dates; tests pass their own. */
  now?: number;
}

export interface PruneResult {
  manifests: number;
  plainObjects: number;
  chunks: number;
  chunkBytes: number;
  referenced: number;
  /** Unreferenced but younger than the grace period: kept. */
  young: number;
  /** Unreferenced but under object lock retention: kept; `lockedUntil` is the latest retention's end. */
  locked: number;
  lockedUntil?: string;
  deleted: number;
  deletedBytes: number;
}

interface ListedChunk {
  key: string;
  size: number;
  lastModified?: Date;
}

export async function prune(store: ObjectStore, opts: PruneOptions): Promise<PruneResult> {
  const session = await Session.begin(store, opts.folder, 'prune');
  try {
    const backups = await liveMarkers(store, opts.folder, 'backup', opts.now);
    if (backups.length) {
      throw new PluginError(
        `prune: a deduplicated backup is writing to this folder (${s3Url(store.bucket, backups[0]!.key)}): nothing was deleted; run prune when no backup runs (a killed backup's marker stops counting an hour after it was written)`,
      );
    }
    return await sweep(store, opts);
  } finally {
    await session.end();
  }
}

async function sweep(store: ObjectStore, opts: PruneOptions): Promise<PruneResult> {
  const chunks = new Map<string, ListedChunk>();
  for await (const o of store.listObjects(chunkPrefix(opts.folder))) {
    const name = nameOfChunkKey(o.key);
    if (name) chunks.set(name, o);
  }

  const objects: Array<{ key: string; size: number }> = [];
  for await (const o of store.listObjects(`${cleanFolder(opts.folder)}/backups/`)) objects.push(o);
  const referenced = new Set<string>();
  let manifests = 0;
  await mapBounded(objects, opts.concurrency, async o => {
    let manifest;
    try {
      manifest = await readManifest(store, o.key, o.size, { ...opts });
    } catch (err) {
      throw new PluginError(`prune: could not read ${s3Url(store.bucket, o.key)} (${(err as Error).message}): nothing was deleted`);
    }
    if (!manifest) return;
    manifests++;
    for (const c of manifest.chunks) referenced.add(c.name.toString('hex'));
  });

  const now = opts.now ?? Date.now();
  const result: PruneResult = { manifests, plainObjects: objects.length - manifests, chunks: chunks.size, chunkBytes: 0, referenced: 0, young: 0, locked: 0, deleted: 0, deletedBytes: 0 };
  const unnamed: ListedChunk[] = [];
  for (const [name, c] of chunks) {
    result.chunkBytes += c.size;
    if (referenced.has(name)) result.referenced++;
    else if (c.lastModified === undefined || now - c.lastModified.getTime() < opts.graceMs) result.young++;
    else unnamed.push(c);
  }
  const doomed = await withoutLocked(store, unnamed, result, now, opts.concurrency);

  const failures: string[] = [];
  for (let i = 0; i < doomed.length; i += MAX_DELETE_BATCH) {
    opts.signal?.throwIfAborted();
    const batch = doomed.slice(i, i + MAX_DELETE_BATCH);
    const failed = new Map((await store.deleteObjects(batch.map(c => c.key))).map(f => [f.key, f.message]));
    for (const c of batch) {
      const why = failed.get(c.key);
      if (why !== undefined) failures.push(`${c.key}: ${why}`);
      else {
        result.deleted++;
        result.deletedBytes += c.size;
      }
    }
  }
  if (failures.length) {
    throw new PluginError(`prune: ${failures.length} unreferenced chunk(s) could not be deleted (${failures.slice(0, 3).join('; ')}${failures.length > 3 ? '; ...' : ''}); ${result.deleted} were`);
  }
  return result;
}

/**
 * The chunks of `unnamed` not under object lock retention; those that are are counted in `result`.
 * A bucket without object lock costs one request; where the store may not tell, every chunk is asked.
 */
async function withoutLocked(store: ObjectStore, unnamed: ListedChunk[], result: PruneResult, now: number, concurrency: number): Promise<ListedChunk[]> {
  if (unnamed.length === 0 || (await store.objectLockEnabled?.()) === false) return unnamed;
  const found = await findLocked(store, unnamed.map(c => c.key), concurrency, now);
  result.locked = found.count;
  result.lockedUntil = found.latest?.until.toISOString();
  return unnamed.filter((_, i) => !found.locked[i]);
}
