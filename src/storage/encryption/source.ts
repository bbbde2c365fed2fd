/**
 * A PartSource that encrypts another: the parts it fills hold the header and the sealed
 * segments (format.ts), so upload.ts uploads ciphertext without knowing it. Plaintext is read
 * from the inner source in batches of segments into one scratch buffer; a segment that does
 * not fit the rest of a part waits in `pending` for the next part. Memory: the scratch buffer
 * and one segment beyond the caller's part buffers.
 */
import { crc32 } from '../crc32.js';
import type { Part, PartSource } from '../source.js';
import { collectYoungGarbage } from '../young-gc.js';
import { DEFAULT_SEGMENT_SIZE, newObjectHeader, sealSegment, type ObjectHeader, type RandomBytes, secureRandom, type UserKey } from './format.js';

/** Segments read from the inner source at once. */
const SEGMENTS_PER_READ = 16;
/**
 * Each sealed segment is a new buffer, copied into a part and dropped: collected every this many
 * (4 MiB), their pages are reused before the allocator returns them to the OS (young-gc.ts).
 */
const SEGMENTS_PER_COLLECTION = 64;

export class EncryptingSource implements PartSource {
  private readonly header: ObjectHeader;
  /** Sealed bytes not yet handed out (the header first). */
  private pending: Buffer[];
  private readonly scratch: Buffer;
  private scratchFilled = 0;
  private scratchPos = 0;
  /** The inner source filled less than the scratch buffer: it has ended. */
  private innerEnded = false;
  private nextIndex = 0;
  private sealedLast = false;

  constructor(private readonly inner: PartSource, key: UserKey, random: RandomBytes = secureRandom, segmentSize = DEFAULT_SEGMENT_SIZE) {
    const { bytes, header } = newObjectHeader(key, random, segmentSize);
    this.header = header;
    this.pending = [bytes];
    this.scratch = Buffer.allocUnsafe(segmentSize * SEGMENTS_PER_READ);
  }

  /** Seals the next segment into `pending`. */
  private async sealNext(): Promise<void> {
    const seg = this.header.segmentSize;
    if (this.scratchPos >= this.scratchFilled && !this.innerEnded) {
      // The plaintext's CRC-32 would be of no use: what is uploaded, and checked, is the ciphertext.
      const { data } = await this.inner.read(this.scratch, false);
      this.scratchFilled = data.length;
      this.scratchPos = 0;
      if (data.length < this.scratch.length) this.innerEnded = true;
    }
    const take = Math.min(seg, this.scratchFilled - this.scratchPos);
    const plain = this.scratch.subarray(this.scratchPos, this.scratchPos + take);
    this.scratchPos += take;
    let last = this.scratchPos >= this.scratchFilled && (this.innerEnded || (await this.inner.atEnd()));
    if (last && !this.innerEnded) this.innerEnded = true;
    this.pending.push(...sealSegment(this.header, this.nextIndex++, last, plain));
    if (this.nextIndex % SEGMENTS_PER_COLLECTION === 0) collectYoungGarbage();
    if (last) this.sealedLast = true;
  }

  async read(into: Buffer, checksum = true): Promise<Part> {
    let filled = 0;
    let crc = 0;
    while (filled < into.length) {
      if (this.pending.length === 0) {
        if (this.sealedLast) break;
        await this.sealNext();
        continue;
      }
      const head = this.pending[0]!;
      const n = Math.min(head.length, into.length - filled);
      head.copy(into, filled, 0, n);
      // Over the sealed bytes just copied, while they are in the CPU's cache.
      if (checksum) crc = crc32(into.subarray(filled, filled + n), crc);
      filled += n;
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
    }
    return { data: filled === into.length ? into : into.subarray(0, filled), crc };
  }

  async atEnd(): Promise<boolean> {
    return this.sealedLast && this.pending.length === 0;
  }
}
