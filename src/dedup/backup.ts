/**
 * A deduplicated upload: the stream is cut into content-defined chunks as it is read; each chunk
 * is named by its hash, and uploaded only if no object of that name exists (one HEAD; chunks
 * met twice in one stream are checked once); the manifest naming them in order is written last,
 * at the object's usual key, so an object exists only once every chunk it names does.
 *
 * Memory: one read buffer (the part size, at least twice the largest chunk) and at most
 * `concurrency` chunks being checked or uploaded (each at most 4 MiB, compressed or sealed), plus
 * the chunk list (36 bytes a chunk).
 */
import { log } from '../log/gplog.js';
import type { PartSource } from '../storage/source.js';
import type { ObjectStore } from '../storage/store.js';
import { crc32 } from '../storage/crc32.js';
import { encryptBuffer, type UserKey } from '../storage/encryption/format.js';
import { Chunker, DEFAULT_CHUNK_SIZES, type ChunkSizes } from './chunker.js';
import { ChunkNamer, chunkKey, encodeChunk, looksCompressed, putChunkObject, zstdAvailable } from './chunk-store.js';
import { ChunkListWriter, FLAG_ENCRYPTED, FLAG_KEYED_NAMES, manifestHeader } from './manifest.js';
import { keepChunkLocked, type ChunkLock } from './retention.js';
import { Session, waitForPrunes } from './sessions.js';

export interface DedupBackupOptions {
  folder: string;
  partSize: number;
  concurrency: number;
  signal?: AbortSignal;
  /** client_side_encryption's key: chunks and the chunk list are sealed, chunk names keyed. */
  key?: UserKey;
  sizes?: ChunkSizes;
  /** object_lock_mode and object_lock_days: chunks found present are kept locked as long as this backup (retention.ts). */
  lock?: ChunkLock;
}

export interface DedupBackupResult {
  /** Bytes of the stream. */
  bytes: number;
  chunks: number;
  /** Chunks uploaded (not found in the bucket), their stream bytes and the bytes stored for them. */
  uploaded: number;
  uploadedBytes: number;
  storedBytes: number;
  /** Chunks found present whose object lock retention was extended to this backup's. */
  extended: number;
  manifestBytes: number;
  compressed: boolean;
}

/** Names of chunks already handled in this stream, kept for repeats (zeroed pages, repeated rows): bounded, then forgotten. */
const SEEN_LIMIT = 65_536;

/** Runs `task`s with at most `limit` at once; the first failure is thrown by the next add() or by drain(). */
class Limiter {
  private readonly running = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly limit: number) {}

  async add(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit && this.failure === undefined) await Promise.race(this.running);
    if (this.failure !== undefined) throw this.failure;
    const p: Promise<void> = task().catch(err => {
      this.failure ??= err;
    });
    const tracked = p.finally(() => this.running.delete(tracked));
    this.running.add(tracked);
  }

  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure !== undefined) throw this.failure;
  }
}

export async function backupDeduplicated(store: ObjectStore, key: string, source: PartSource, opts: DedupBackupOptions): Promise<DedupBackupResult> {
  const sizes = opts.sizes ?? DEFAULT_CHUNK_SIZES;
  const session = await Session.begin(store, opts.folder, 'backup');
  try {
    await waitForPrunes(store, opts.folder, opts.signal);
    return await writeChunksAndManifest(store, key, source, opts, sizes);
  } finally {
    await session.end();
  }
}

async function writeChunksAndManifest(
  store: ObjectStore,
  key: string,
  source: PartSource,
  opts: DedupBackupOptions,
  sizes: ChunkSizes,
): Promise<DedupBackupResult> {
  const chunker = new Chunker(sizes);
  const namer = new ChunkNamer(opts.key);
  const list = new ChunkListWriter();
  const limiter = new Limiter(Math.max(1, opts.concurrency));
  const seen = new Set<string>();
  const result: DedupBackupResult = { bytes: 0, chunks: 0, uploaded: 0, uploadedBytes: 0, storedBytes: 0, extended: 0, manifestBytes: 0, compressed: false };
  let compress: boolean | undefined;

  const storeChunk = async (chunk: Buffer, name: Buffer): Promise<void> => {
    const objectKey = chunkKey(opts.folder, name);
    const head = await store.headObject(objectKey);
    if (head !== undefined) {
      if (opts.lock && (await keepChunkLocked(store, objectKey, head, opts.lock))) result.extended++;
      return;
    }
    opts.signal?.throwIfAborted();
    const body = await encodeChunk(chunk, compress!, opts.key);
    await putChunkObject(store, objectKey, body, opts.signal);
    result.uploaded++;
    result.uploadedBytes += chunk.length;
    result.storedBytes += body.length;
  };

  const buf = Buffer.allocUnsafe(Math.max(opts.partSize, 2 * sizes.max));
  let filled = 0;
  let ended = false;
  while (!ended) {
    const want = buf.length - filled;
    const { data } = await source.read(buf.subarray(filled), false);
    filled += data.length;
    ended = data.length < want || (await source.atEnd());
    if (compress === undefined && (filled >= 4 || ended)) {
      compress = zstdAvailable && !looksCompressed(buf.subarray(0, filled));
      result.compressed = compress;
    }
    let pos = 0;
    while (pos < filled && (ended || filled - pos >= sizes.max)) {
      const n = chunker.cut(buf, pos, filled);
      const chunk = Buffer.from(buf.subarray(pos, pos + n));
      pos += n;
      const name = namer.name(chunk);
      list.add(name, n);
      result.bytes += n;
      const hex = name.toString('hex');
      if (seen.has(hex)) continue;
      if (seen.size >= SEEN_LIMIT) seen.clear();
      seen.add(hex);
      await limiter.add(() => storeChunk(chunk, name));
    }
    buf.copyWithin(0, pos, filled);
    filled -= pos;
  }
  await limiter.drain();
  result.chunks = list.chunkCount;

  // Every chunk is stored: now the manifest, at the object's key.
  const chunkList = list.finish();
  const flags = (namer.keyed ? FLAG_KEYED_NAMES : 0) | (opts.key ? FLAG_ENCRYPTED : 0);
  const manifest = Buffer.concat([manifestHeader(flags), opts.key ? encryptBuffer(chunkList, opts.key) : chunkList]);
  opts.signal?.throwIfAborted();
  await store.putObject(key, manifest, crc32(manifest), opts.signal);
  result.manifestBytes = manifest.length;
  log.debug(`deduplicated ${key}: ${result.chunks} chunk(s), ${result.uploaded} uploaded (${result.uploadedBytes} bytes, ${result.storedBytes} stored), manifest ${manifest.length} bytes`);
  return result;
}
