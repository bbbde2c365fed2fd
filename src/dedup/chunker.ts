/**
 * Content-defined chunking: FastCDC (Xia et al., USENIX ATC 2016). A gear hash rolls over the
 * bytes (shift left one bit, add a random 32-bit value per byte value), so its top bits depend on
 * the last 32 bytes only; a chunk ends where those bits are zero. Where a boundary falls depends on
 * the content around it, not on its offset: bytes inserted or removed change the chunks around the
 * edit and leave every other boundary where it was, so the chunks after it are found again.
 *
 * Normalized chunking (level 2): before the average size a cut needs 2 more zero bits than the
 * average asks for, after it 2 fewer, which gathers chunk sizes around the average. No cut is
 * looked for before `min` (those bytes are not even hashed) and one is forced at `max`.
 */
import { createHash } from 'node:crypto';

export interface ChunkSizes {
  min: number;
  avg: number;
  max: number;
}

/**
 * 1 MiB on average, 256 KiB to 4 MiB: the request cost and the space saved measured in
 * docs/deduplication.md (a quarter of the average chunk's requests bought less than 1% of space on
 * streams changed in a few places). `max` stays below S3's 5 MiB smallest part: a chunk is one PUT.
 */
export const DEFAULT_CHUNK_SIZES: ChunkSizes = { min: 256 * 1024, avg: 1024 * 1024, max: 4 * 1024 * 1024 };

/** The gear table: 256 fixed pseudo-random 32-bit values, from SHA-256 of a label (every build cuts alike). */
const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i += 8) {
    const digest = createHash('sha256').update(`gpbackup_s3_plugin gear ${i / 8}`).digest();
    for (let j = 0; j < 8; j++) table[i + j] = digest.readInt32LE(j * 4);
  }
  return table;
})();

/** A mask of the `bits` top bits of a 32-bit word (the gear hash's bits that see the most bytes). */
function topBits(bits: number): number {
  return (0xffffffff << (32 - bits)) | 0;
}

export class Chunker {
  private readonly maskStrict: number;
  private readonly maskLoose: number;

  constructor(readonly sizes: ChunkSizes = DEFAULT_CHUNK_SIZES) {
    const { min, avg, max } = sizes;
    if (!(min > 0 && min <= avg && avg <= max)) throw new Error(`chunk sizes must satisfy 0 < min <= avg <= max (${min}, ${avg}, ${max})`);
    const bits = Math.round(Math.log2(avg));
    this.maskStrict = topBits(Math.min(31, bits + 2));
    this.maskLoose = topBits(Math.max(1, bits - 2));
  }

  /**
   * The length of the chunk that starts at `start` in buf[start, end). The caller gives at least
   * `max` bytes unless the stream ends within them (`end` is then the stream's end).
   */
  cut(buf: Uint8Array, start: number, end: number): number {
    const { min, avg, max } = this.sizes;
    const available = end - start;
    if (available <= min) return available;
    const limit = start + Math.min(available, max);
    const normal = start + Math.min(available, avg);
    const gear = GEAR;
    let hash = 0;
    let i = start + min;
    const strict = this.maskStrict;
    for (; i < normal; i++) {
      hash = ((hash << 1) + gear[buf[i]!]!) | 0;
      if ((hash & strict) === 0) return i + 1 - start;
    }
    const loose = this.maskLoose;
    for (; i < limit; i++) {
      hash = ((hash << 1) + gear[buf[i]!]!) | 0;
      if ((hash & loose) === 0) return i + 1 - start;
    }
    return limit - start;
  }
}

/** Every chunk length of a whole buffer (tests and measurements). */
export function chunkLengths(buf: Uint8Array, chunker = new Chunker()): number[] {
  const lengths: number[] = [];
  for (let pos = 0; pos < buf.length; ) {
    const n = chunker.cut(buf, pos, buf.length);
    lengths.push(n);
    pos += n;
  }
  return lengths;
}
