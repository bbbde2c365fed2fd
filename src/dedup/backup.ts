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
import { BufferPool } from '../storage/pool.js';
import { collectYoungGarbage } from '../storage/young-gc.js';
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
  // A chunk is copied out of the read buffer into one of these (at most concurrency + 1 of them),
  // reused: a fresh buffer a chunk cost 0.3 CPU-s a GiB in page faults (docs/deduplication.md).
  const chunkBuffers = new BufferPool(sizes.max + 1);
  const result: DedupBackupResult = { bytes: 0, chunks: 0, uploaded: 0, uploadedBytes: 0, storedBytes: 0, extended: 0, manifestBytes: 0, compressed: false };
  let compress: boolean | undefined;

  // Names the chunk (off this thread, see ChunkNamer) and stores it unless this stream already
  // met it: a repeat is found once its twin's name is known, checked and added in one step.
  const nameAndStore = async (framed: Buffer, slot: number): Promise<void> => {
    try {
      const name = await namer.name(framed.subarray(1));
      list.setName(slot, name);
      const hex = name.toString('hex');
      if (seen.has(hex)) return;
      if (seen.size >= SEEN_LIMIT) seen.clear();
      seen.add(hex);
      await storeChunk(framed, name);
    } finally {
      chunkBuffers.give(framed);
    }
  };

  /** `framed`: the chunk after a byte of room (encodeChunk). */
  const storeChunk = async (framed: Buffer, name: Buffer): Promise<void> => {
    const objectKey = chunkKey(opts.folder, name);
    const head = await store.headObject(objectKey);
    if (head !== undefined) {
      if (opts.lock && (await keepChunkLocked(store, objectKey, head, opts.lock))) result.extended++;
      return;
    }
    opts.signal?.throwIfAborted();
    const body = await encodeChunk(framed, compress!, opts.key);
    await putChunkObject(store, objectKey, body, opts.signal);
    result.uploaded++;
    result.uploadedBytes += framed.length - 1;
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
      const framed = chunkBuffers.take(sizes.max + 1).subarray(0, n + 1);
      buf.copy(framed, 1, pos, pos + n);
      pos += n;
      const slot = list.reserve(n);
      result.bytes += n;
      await limiter.add(() => nameAndStore(framed, slot));
      // What the hashes and zstd left (a copy of each chunk, its compressed form) is freed every 16
      // chunks, as a plain upload's every part (young-gc.ts): 2 GiB backed up peaked at 217 to 242
      // MiB so, 279 to 284 without; collecting after every chunk made a 512 MiB restore take 1.7 s, not 1.1.
      if (list.chunkCount % 16 === 0) collectYoungGarbage();
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
