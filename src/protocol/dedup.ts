/**
 * The data commands' hooks into deduplication (src/dedup, docs/deduplication.md): with
 * `deduplication: on` an upload is chunked and its manifest written at the object's key;
 * restores read manifests and plain objects alike, whatever the config says.
 */
import type { PluginConfig } from '../config/types.js';
import { log } from '../log/gplog.js';
import type { Range } from '../storage/download.js';
import { s3Url } from '../storage/keys.js';
import type { Sink } from '../storage/sink.js';
import { PrefixedSource, type PartSource } from '../storage/source.js';
import type { ObjectStore } from '../storage/store.js';
import { uploadStream, type TransferOptions, type UploadResult } from '../storage/upload.js';
import { backupDeduplicated } from '../dedup/backup.js';
import { checkChunkKey } from '../dedup/chunk-store.js';
import { DEFAULT_CHUNK_SIZES } from '../dedup/chunker.js';
import { ManifestCatcher, parseManifest, readManifest, restoreChunkRanges, restoreChunks, type ChunkReadOptions } from '../dedup/restore.js';
import { restoreObject, restoreSubset, uploadSource } from './encryption.js';
import { checkRangesWithin } from './offsets.js';

export function readOptions(config: PluginConfig, opts: Pick<TransferOptions, 'concurrency' | 'retries' | 'signal'>): ChunkReadOptions {
  return { folder: config.folder, concurrency: opts.concurrency, retries: opts.retries ?? 3, keys: config.decryptionKeys, signal: opts.signal };
}

/**
 * backup_data streams no longer than the smallest chunk are stored whole even with deduplication:
 * such a stream is one chunk, and deduplicating it takes 6 requests (marker, HEAD, chunk,
 * manifest) where storing it takes one PUT, which costs more than keeping 256 KiB for a month
 * (docs/deduplication.md). gpbackup makes one such call per table and segment. backup_file (a few
 * calls a backup) keeps deduplicating whatever the size: a backup's config file being a manifest
 * is how list_backups and verify_backup know to look for manifests among its objects.
 */
const WHOLE_UP_TO = DEFAULT_CHUNK_SIZES.min;

/** An upload as the config asks: whole (encrypted if so configured), or deduplicated (`smallWhole`: see WHOLE_UP_TO). */
export async function uploadAsConfigured(
  config: PluginConfig,
  store: ObjectStore,
  key: string,
  stream: PartSource,
  opts: TransferOptions,
  smallWhole = false,
): Promise<UploadResult> {
  if (!config.deduplication) return uploadStream(store, key, uploadSource(config, stream), opts);
  const encryptionKey = config.clientSideEncryption ? config.encryptionKey : undefined;
  checkChunkKey(encryptionKey); // before any upload, small or not
  let source = stream;
  if (smallWhole) {
    const head = await stream.read(Buffer.allocUnsafe(WHOLE_UP_TO), false);
    source = new PrefixedSource(head.data, stream);
    if (head.data.length < WHOLE_UP_TO || (await stream.atEnd())) {
      log.verbose(`${s3Url(store.bucket, key)}: ${head.data.length} bytes, stored whole (deduplication begins above ${WHOLE_UP_TO} bytes)`);
      return uploadStream(store, key, uploadSource(config, source), opts);
    }
  }
  const r = await backupDeduplicated(store, key, source, {
    folder: config.folder,
    partSize: opts.partSize,
    concurrency: opts.concurrency,
    signal: opts.signal,
    key: encryptionKey,
    lock: config.objectLockMode && config.objectLockDays ? { mode: config.objectLockMode, days: config.objectLockDays } : undefined,
  });
  log.info(
    `${s3Url(store.bucket, key)} deduplicated: ${r.chunks} chunk(s), ${r.uploaded} new (${r.uploadedBytes} bytes of the stream, ` +
      `${r.storedBytes} stored${r.compressed ? ', zstd' : ''}), manifest ${r.manifestBytes} bytes` +
      (r.extended ? `; the object lock retention of ${r.extended} reused chunk(s) extended to this backup's` : ''),
  );
  return { bytes: r.bytes, parts: 1 };
}

/** A whole object to `out`: a manifest's chunks, or the object itself; `decrypted` and `deduplicated` say which it was. */
export async function restoreAnyObject(
  config: PluginConfig,
  store: ObjectStore,
  key: string,
  out: Sink,
  opts: TransferOptions,
): Promise<{ bytes: number; note: string; decrypted: boolean; deduplicated: boolean }> {
  const catcher = new ManifestCatcher(out);
  const restored = await restoreObject(config, store, key, catcher, opts, false, () =>
    catcher.caughtManifest ? 'a deduplication manifest, whose chunks are restored next' : 'restored as stored',
  );
  const caught = await catcher.finish();
  if (!caught) return { ...restored, deduplicated: false };
  const manifest = await parseManifest(caught, config.decryptionKeys, s3Url(store.bucket, key));
  const bytes = await restoreChunks(store, manifest, out, readOptions(config, opts));
  // Chunks are named by a keyed hash only when they are encrypted.
  return { bytes, note: `deduplicated: ${manifest.chunks.length} chunk(s) fetched and verified`, decrypted: manifest.namer.keyed, deduplicated: true };
}

/** restore_data_subset of a manifest's stream (only the chunks covering the ranges), or of the object itself. */
export async function restoreAnySubset(
  config: PluginConfig,
  store: ObjectStore,
  key: string,
  objectSize: number,
  ranges: Range[],
  out: Sink,
  opts: TransferOptions,
): Promise<{ bytes: number; note: string }> {
  const read = readOptions(config, opts);
  const manifest = await readManifest(store, key, objectSize, read);
  if (!manifest) return restoreSubset(config, store, key, objectSize, ranges, out, opts);
  checkRangesWithin(ranges, manifest.size, `${s3Url(store.bucket, key)} (deduplicated)`);
  const fetched = await restoreChunkRanges(store, manifest, ranges, out, read);
  const bytes = ranges.reduce((n, r) => n + Math.max(0, r.end - r.start), 0);
  return { bytes, note: `deduplicated: ${fetched} of ${manifest.chunks.length} chunk(s) fetched and verified` };
}
