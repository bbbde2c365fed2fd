/**
 * verify_backup of deduplicated objects (docs/deduplication.md): which objects are manifests, and
 * whether the chunks they name are there (quick: one HEAD each) or intact (--deep: each read and
 * checked against its name). A chunk named by many objects, or by several backups of the plan, is
 * checked once, by the first object found naming it.
 */
import { describeError } from '../errors.js';
import { DEFAULT_SEGMENT_SIZE, layoutOf } from '../storage/encryption/format.js';
import type { ObjectStore } from '../storage/store.js';
import { chunkKey, chunkPresent, readManifest, verifyChunk, type ChunkReadOptions, type Manifest } from '../dedup/index.js';
import { mapBounded } from '../storage/bounded.js';

export type ChunkProblemKind = 'missing-chunk' | 'wrong-size' | 'checksum-mismatch' | 'unreadable';

/** Records a problem about `key`, which belongs to backup `backup`. */
export type ReportProblem = (kind: ChunkProblemKind, backup: string, key: string, message: string) => void;

interface ChunkUse {
  manifest: Manifest;
  index: number;
  /** The object whose manifest names it (the first found), and its backup. */
  object: string;
  backup: string;
}

/** The bytes a stored chunk object may hold: a codec byte and at most its length (zstd only when smaller), sealed if encrypted. */
export function plausibleChunkSize(stored: number, length: number, encrypted: boolean): boolean {
  const plain = encrypted ? layoutOf(stored, DEFAULT_SEGMENT_SIZE)?.plainSize : stored;
  return plain !== undefined && plain >= 1 && plain <= length + 1;
}

export class ChunkCheck {
  /** Object key to its manifest, for every object that is one. */
  readonly manifests = new Map<string, Manifest>();
  /** Chunk key to its first use: each chunk is checked once. */
  private readonly chunks = new Map<string, ChunkUse>();

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: ChunkReadOptions,
    private readonly problem: ReportProblem,
  ) {}

  get chunkCount(): number {
    return this.chunks.size;
  }

  get chunkBytes(): number {
    let n = 0;
    for (const c of this.chunks.values()) n += c.manifest.chunks[c.index]!.length;
    return n;
  }

  /** Reads the first bytes of each object (and the whole of each manifest): which are manifests, and their chunks. */
  async findManifests(backup: string, objects: { key: string; size: number }[]): Promise<void> {
    await mapBounded(objects, this.opts.concurrency, async o => {
      let manifest: Manifest | undefined;
      try {
        manifest = await readManifest(this.store, o.key, o.size, this.opts);
      } catch (err) {
        const message = describeError(err);
        this.problem(/damaged/.test(message) ? 'checksum-mismatch' : 'unreadable', backup, o.key, message);
        return;
      }
      if (!manifest) return;
      this.manifests.set(o.key, manifest);
      manifest.chunks.forEach((ref, index) => {
        const key = chunkKey(this.opts.folder, ref.name);
        if (!this.chunks.has(key)) this.chunks.set(key, { manifest, index, object: o.key, backup });
      });
    });
  }

  private missing(key: string, use: ChunkUse): void {
    this.problem('missing-chunk', use.backup, key, `not in the bucket: chunk ${use.index + 1} of ${use.manifest.chunks.length} of ${use.object} (pruned too early, or deleted by hand)`);
  }

  /** Every chunk is there (one HEAD each) with a size its manifest allows. */
  async quick(): Promise<void> {
    await mapBounded([...this.chunks], this.opts.concurrency, async ([key, use]) => {
      const ref = use.manifest.chunks[use.index]!;
      let size: number | undefined;
      try {
        size = await chunkPresent(this.store, this.opts.folder, ref);
      } catch (err) {
        this.problem('unreadable', use.backup, key, `a chunk of ${use.object}: ${describeError(err)}`);
        return;
      }
      if (size === undefined) this.missing(key, use);
      else if (!plausibleChunkSize(size, ref.length, use.manifest.namer.keyed)) {
        this.problem('wrong-size', use.backup, key, `wrong size: ${size} bytes cannot hold the ${ref.length} bytes that ${use.object} names it for`);
      }
    });
  }

  /** Every chunk read and checked against its name (decrypted first if encrypted); calls `advance` with each chunk's length. */
  async deep(advance: (bytes: number) => void): Promise<number> {
    let checked = 0;
    await mapBounded([...this.chunks], this.opts.concurrency, async ([key, use]) => {
      try {
        await verifyChunk(this.store, use.manifest, use.index, this.opts);
        checked++;
      } catch (err) {
        // The restore's words (verifyChunk is the restore's own check), less its ending: nothing is being restored here.
        const message = describeError(err).replace(/: the restore is abandoned$/, '');
        if (/a chunk of this backup is missing/.test(message)) this.missing(key, use);
        else this.problem(/not match|authenticat|decrypt/i.test(message) ? 'checksum-mismatch' : 'unreadable', use.backup, key, `a chunk of ${use.object}: ${message}`);
      }
      advance(use.manifest.chunks[use.index]!.length);
    });
    return checked;
  }
}
