/**
 * Reading deduplicated objects: a manifest is told from a plain object by its first 8 bytes; its
 * chunks are fetched `concurrency` at a time, each checked against its name, and written in
 * order. A subset restore fetches only the chunks that cover the requested ranges.
 */
import { PluginError } from '../errors.js';
import type { Range } from '../storage/download.js';
import { s3Url } from '../storage/keys.js';
import type { Sink } from '../storage/sink.js';
import type { ObjectStore } from '../storage/store.js';
import { BufferPool } from '../storage/pool.js';
import { collectYoungGarbage } from '../storage/young-gc.js';
import { DEFAULT_CHUNK_SIZES } from './chunker.js';
import type { UserKey } from '../storage/encryption/format.js';
import { decryptWhole } from '../storage/encryption/sink.js';
import { ChunkNamer, chunkKey, decodeChunk, fetchObjectBytes, namerForKeyId } from './chunk-store.js';
import { decodeChunkList, FLAG_ENCRYPTED, FLAG_KEYED_NAMES, isManifest, MANIFEST_HEADER_SIZE, MANIFEST_MAGIC, manifestFlags, type ChunkList } from './manifest.js';

export interface Manifest extends ChunkList {
  namer: ChunkNamer;
}

export interface ChunkReadOptions {
  folder: string;
  concurrency: number;
  retries: number;
  keys: UserKey[];
  signal?: AbortSignal;
}

/** A manifest object's chunk list and how its chunks are named (decrypting the list if sealed). */
export async function parseManifest(object: Buffer, keys: UserKey[], what: string): Promise<Manifest> {
  const flags = manifestFlags(object, what);
  let body = object.subarray(MANIFEST_HEADER_SIZE);
  let namer = new ChunkNamer();
  if (flags & FLAG_ENCRYPTED) {
    const opened = await decryptWhole(body, keys, what);
    if (!opened) throw new PluginError(`${what}: deduplication manifest is damaged (flagged encrypted, but not)`);
    body = opened.plain;
    if (flags & FLAG_KEYED_NAMES) namer = namerForKeyId(keys, opened.keyId, what);
  } else if (flags & FLAG_KEYED_NAMES) {
    throw new PluginError(`${what}: deduplication manifest is damaged (keyed names without encryption)`);
  }
  return { ...decodeChunkList(body, what), namer };
}

/** The manifest at `key`, or undefined if the object there is not one (one ranged GET for a plain object). */
export async function readManifest(store: ObjectStore, key: string, size: number, opts: ChunkReadOptions): Promise<Manifest | undefined> {
  if (size < MANIFEST_HEADER_SIZE) return undefined;
  const what = s3Url(store.bucket, key);
  const head = await store.getRange(key, 0, MANIFEST_MAGIC.length, opts.signal);
  const prefix: Buffer[] = [];
  for await (const b of head.body as AsyncIterable<Buffer>) prefix.push(b);
  if (!isManifest(Buffer.concat(prefix))) return undefined;
  return parseManifest(await fetchObjectBytes(store, key, opts.retries, opts.signal, size), opts.keys, what);
}

/**
 * Passes an object through to `out` unless it begins with the manifest magic; a manifest is kept
 * (it is then what the restore reads chunks from, and nothing of it reaches `out`).
 */
export class ManifestCatcher implements Sink {
  private head: Buffer | undefined = Buffer.alloc(0);
  private caught: Buffer[] | undefined;

  constructor(private readonly out: Sink) {}

  async write(buf: Buffer): Promise<void> {
    if (this.caught) {
      this.caught.push(Buffer.from(buf));
      return;
    }
    if (this.head === undefined) return this.out.write(buf);
    // The first piece of a plain object goes out as it came (no copy); what is kept is copied, as
    // the caller may reuse its buffer once write() returns.
    const seen = this.head.length ? Buffer.concat([this.head, buf]) : buf;
    if (seen.length < MANIFEST_MAGIC.length && MANIFEST_MAGIC.subarray(0, seen.length).equals(seen)) {
      this.head = Buffer.from(seen);
      return;
    }
    this.head = undefined;
    if (isManifest(seen)) this.caught = [Buffer.from(seen)];
    else await this.out.write(seen);
  }

  /** True once the object's first bytes showed a manifest. */
  get caughtManifest(): boolean {
    return this.caught !== undefined;
  }

  /** The manifest's bytes, if the object was one; a short object that was not is written out now. */
  async finish(): Promise<Buffer | undefined> {
    if (this.head?.length) {
      const short = this.head;
      this.head = undefined;
      await this.out.write(short);
    }
    return this.caught && Buffer.concat(this.caught);
  }
}

/** Runs fetch(item) for items in order, `concurrency` ahead, handing each result to `use` in order. */
async function inOrder<T, R>(items: T[], concurrency: number, fetch: (item: T) => Promise<R>, use: (result: R, item: T) => Promise<void>): Promise<void> {
  const pending: Array<Promise<R>> = [];
  let next = 0;
  const launch = () => {
    const p = fetch(items[next++]!);
    p.catch(() => {}); // awaited in turn below; this only keeps a rejection not yet awaited from counting as unhandled
    pending.push(p);
  };
  try {
    while (next < items.length && pending.length < concurrency) launch();
    for (let i = 0; i < items.length; i++) {
      const result = await pending.shift()!;
      if (next < items.length) launch();
      await use(result, items[i]!);
    }
  } finally {
    await Promise.allSettled(pending);
  }
}

/** Chunk `index` of the manifest, fetched and checked against its name and length. */
export async function fetchChunk(store: ObjectStore, manifest: Manifest, index: number, opts: ChunkReadOptions): Promise<Buffer> {
  return (await fetchChunkInto(store, manifest, index, opts)).plain;
}

/** A fetched chunk: its bytes, and the stored object they may be a view of (to give back to the pool it came from). */
interface FetchedChunk {
  plain: Buffer;
  stored: Buffer;
}

async function fetchChunkInto(store: ObjectStore, manifest: Manifest, index: number, opts: ChunkReadOptions, buffers?: BufferPool): Promise<FetchedChunk> {
  const ref = manifest.chunks[index]!;
  const key = chunkKey(opts.folder, ref.name);
  let stored: Buffer;
  try {
    stored = await fetchObjectBytes(store, key, opts.retries, opts.signal, undefined, buffers);
  } catch (err) {
    if ((err as { name?: string }).name === 'NotFoundError') {
      throw new PluginError(`${s3Url(store.bucket, key)}: a chunk of this backup is missing (pruned too early, or deleted by hand): the restore is abandoned`);
    }
    throw err;
  }
  try {
    const plain = await decodeChunk(stored, ref.name, manifest.namer, opts.keys, s3Url(store.bucket, key));
    if (plain.length !== ref.length) throw new PluginError(`${s3Url(store.bucket, key)}: the chunk holds ${plain.length} bytes, its manifest says ${ref.length}`);
    return { plain, stored };
  } catch (err) {
    buffers?.give(stored);
    throw err;
  }
}

/**
 * Chunks are read into these and given back once written out: at most `concurrency` + 1 of them,
 * each the largest stored chunk (4 MiB, its codec byte and encryption's overhead); a larger one
 * (chunk sizes of another build) gets its own buffer. A fresh buffer a chunk cost page faults.
 */
function chunkBuffers(): BufferPool {
  return new BufferPool(DEFAULT_CHUNK_SIZES.max + 64 * 1024);
}

/** Every chunk of the manifest to `out`, in order, each verified; returns the bytes written. */
export async function restoreChunks(store: ObjectStore, manifest: Manifest, out: Sink, opts: ChunkReadOptions): Promise<number> {
  const indexes = manifest.chunks.map((_, i) => i);
  let bytes = 0;
  const buffers = chunkBuffers();
  let written = 0;
  await inOrder(
    indexes,
    opts.concurrency,
    i => fetchChunkInto(store, manifest, i, opts, buffers),
    async ({ plain, stored }) => {
      await out.write(plain);
      bytes += plain.length;
      buffers.give(stored);
      if (++written % 16 === 0) collectYoungGarbage(); // as a backup does (backup.ts): 249 to 254 MiB peak for 2 GiB, 276 to 294 without
    },
  );
  return bytes;
}

/** Where each chunk starts in the stream. */
function chunkStarts(manifest: Manifest): number[] {
  const starts = new Array<number>(manifest.chunks.length);
  let at = 0;
  manifest.chunks.forEach((c, i) => {
    starts[i] = at;
    at += c.length;
  });
  return starts;
}

/** The last chunk starting at or before `offset`. */
function chunkAt(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The given ranges of the stream, concatenated, fetching only the chunks that cover them; returns the chunks fetched. */
export async function restoreChunkRanges(store: ObjectStore, manifest: Manifest, ranges: Range[], out: Sink, opts: ChunkReadOptions): Promise<number> {
  const starts = chunkStarts(manifest);
  // The chunks to fetch in order (a chunk that two neighbouring ranges share is fetched once), and the slices of each.
  const fetches: Array<{ index: number; slices: Range[] }> = [];
  for (const r of ranges) {
    if (r.end <= r.start) continue;
    for (let i = chunkAt(starts, r.start); i < starts.length && starts[i]! < r.end; i++) {
      const slice = { start: Math.max(r.start, starts[i]!) - starts[i]!, end: Math.min(r.end, starts[i]! + manifest.chunks[i]!.length) - starts[i]! };
      const last = fetches[fetches.length - 1];
      if (last?.index === i) last.slices.push(slice);
      else fetches.push({ index: i, slices: [slice] });
    }
  }
  const buffers = chunkBuffers();
  await inOrder(
    fetches,
    opts.concurrency,
    f => fetchChunkInto(store, manifest, f.index, opts, buffers),
    async ({ plain, stored }, f) => {
      for (const s of f.slices) await out.write(plain.subarray(s.start, s.end));
      buffers.give(stored);
    },
  );
  return fetches.length;
}
