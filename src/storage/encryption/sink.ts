/**
 * Sinks that decrypt (format.ts) before handing plaintext to another sink. A segment's
 * plaintext is written only once its tag has verified, and the segment at the end of the
 * bytes seen so far is held back until more bytes arrive or the object ends (only then is it
 * known whether it must be the last one): nothing unverified ever reaches the output, and
 * nothing at all after a failure.
 */
import { PluginError } from '../../errors.js';
import { MemorySink, type Sink } from '../sink.js';
import { FormatError, HEADER_SIZE, isEncrypted, MAGIC, openObjectHeader, openSegment, TAG_SIZE, type ObjectHeader, type UserKey } from './format.js';

/** Plaintext is passed on in writes of this size (the last one of a write may be shorter). */
const OUTPUT_BATCH = 1024 * 1024;

/**
 * Collects plaintext into one buffer that is reused for every batch: a sink's write has handed
 * the bytes on when it resolves. (A new buffer per batch was fresh memory every megabyte: a
 * 512 MiB encrypted restore peaked some 50 MiB higher, docs/performance.md.)
 */
class Batcher {
  private readonly buffer = Buffer.allocUnsafeSlow(OUTPUT_BATCH);
  private size = 0;
  constructor(private readonly out: Sink) {}
  async add(b: Buffer): Promise<void> {
    let pos = 0;
    while (pos < b.length) {
      const n = b.copy(this.buffer, this.size, pos);
      this.size += n;
      pos += n;
      if (this.size === OUTPUT_BATCH) await this.flush();
    }
  }
  async flush(): Promise<void> {
    if (this.size === 0) return;
    const size = this.size;
    this.size = 0;
    await this.out.write(this.buffer.subarray(0, size));
  }
}

export interface FinishingSink extends Sink {
  /** The object has ended: checks and writes what was held back. */
  finish(): Promise<void>;
}

/** Decrypts a whole object, header included, streamed in order. */
export class DecryptingSink implements FinishingSink {
  private header: ObjectHeader | undefined;
  /** Bytes received and not yet consumed: at most a header or one sealed segment. */
  private carry: Buffer;
  private carried = 0;
  private index = 0;
  private received = 0;
  private readonly batch: Batcher;

  constructor(
    out: Sink,
    private readonly keys: UserKey[],
    /** For messages: the object's s3:// URL. */
    private readonly what: string,
  ) {
    this.batch = new Batcher(out);
    this.carry = Buffer.allocUnsafe(HEADER_SIZE);
  }

  /** Key ID of the key that opened the object, once the header is read. */
  get keyId(): string | undefined {
    return this.header?.keyId;
  }

  private fail(why: string): never {
    throw new PluginError(`decrypting ${this.what}: ${why}`);
  }

  private openHeader(h: Buffer): void {
    try {
      this.header = openObjectHeader(h, this.keys);
    } catch (err) {
      if (err instanceof FormatError) this.fail(err.message);
      throw err;
    }
    this.carry = Buffer.allocUnsafe(this.header.segmentSize + TAG_SIZE);
  }

  private async segment(sealed: Buffer, last: boolean): Promise<void> {
    const h = this.header!;
    const plain = openSegment(h, this.index, last, sealed);
    if (plain === undefined) {
      const start = HEADER_SIZE + this.index * (h.segmentSize + TAG_SIZE);
      this.fail(
        `segment ${this.index} (bytes ${start}-${start + sealed.length - 1}) failed authentication` +
          (last ? ' as the last segment' : '') +
          ': the object was altered, truncated, reordered or extended',
      );
    }
    this.index++;
    await this.batch.add(plain);
  }

  async write(buf: Buffer): Promise<void> {
    this.received += buf.length;
    let pos = 0;
    if (!this.header) {
      const n = Math.min(HEADER_SIZE - this.carried, buf.length);
      buf.copy(this.carry, this.carried, 0, n);
      this.carried += n;
      pos = n;
      if (this.carried < HEADER_SIZE) return;
      this.openHeader(this.carry);
      this.carried = 0;
    }
    const stride = this.header!.segmentSize + TAG_SIZE;
    // A full carried segment is sealed as not the last when more bytes follow it.
    if (this.carried > 0 || buf.length - pos <= stride) {
      if (this.carried === stride && pos < buf.length) {
        await this.segment(this.carry, false);
        this.carried = 0;
      }
      const n = Math.min(stride - this.carried, buf.length - pos);
      buf.copy(this.carry, this.carried, pos, pos + n);
      this.carried += n;
      pos += n;
      if (pos === buf.length) return this.batch.flush();
      await this.segment(this.carry, false);
      this.carried = 0;
    }
    // Whole segments straight from the caller's buffer, keeping the final one (it may be the last).
    while (buf.length - pos > stride) {
      await this.segment(buf.subarray(pos, pos + stride), false);
      pos += stride;
    }
    buf.copy(this.carry, 0, pos);
    this.carried = buf.length - pos;
    await this.batch.flush();
  }

  async finish(): Promise<void> {
    if (!this.header) this.fail(`it ends within its ${HEADER_SIZE}-byte encryption header (${this.received} bytes): the object was truncated`);
    if (this.carried < TAG_SIZE) {
      this.fail(`it ends ${this.carried} bytes into segment ${this.index}, shorter than a segment's tag: the object was truncated`);
    }
    await this.segment(this.carry.subarray(0, this.carried), true);
    await this.batch.flush();
  }
}

/**
 * Restore of an object that may be encrypted or not (older backups, the Go plugin's): the
 * first bytes decide. Plain objects pass through untouched; encrypted ones are decrypted,
 * or refused when no key is configured.
 */
export class DetectingSink implements FinishingSink {
  private mode: 'unknown' | 'plain' | 'encrypted' = 'unknown';
  private head = Buffer.alloc(0);
  private decrypting: DecryptingSink | undefined;

  constructor(
    private readonly out: Sink,
    private readonly keys: UserKey[],
    private readonly what: string,
  ) {}

  /** 'plain' or 'encrypted' once known. */
  get kind(): 'unknown' | 'plain' | 'encrypted' {
    return this.mode;
  }

  get keyId(): string | undefined {
    return this.decrypting?.keyId;
  }

  private decide(prefix: Buffer): void {
    if (!isEncrypted(prefix)) {
      this.mode = 'plain';
      return;
    }
    if (this.keys.length === 0) {
      throw new PluginError(
        `decrypting ${this.what}: the object is encrypted by the plugin's client_side_encryption, and no key is configured: set client_side_encryption: on and encryption_key_file to its key file`,
      );
    }
    this.mode = 'encrypted';
    this.decrypting = new DecryptingSink(this.out, this.keys, this.what);
  }

  async write(buf: Buffer): Promise<void> {
    if (this.mode === 'unknown') {
      // The first write is a whole piece (at least 5 MiB, or the object): the magic fits.
      const prefix = this.head.length ? Buffer.concat([this.head, buf]) : buf;
      if (prefix.length < MAGIC.length) {
        this.head = Buffer.from(prefix);
        return;
      }
      this.decide(prefix);
      this.head = Buffer.alloc(0);
      buf = prefix;
    }
    if (this.decrypting) return this.decrypting.write(buf);
    return this.out.write(buf);
  }

  async finish(): Promise<void> {
    if (this.mode === 'unknown') {
      // Shorter than the magic (or empty): plain.
      this.mode = 'plain';
      if (this.head.length) await this.out.write(this.head);
      return;
    }
    await this.decrypting?.finish();
  }
}

/** One plaintext slice wanted from a segment: [start, end) within the segment's plaintext. */
export interface SegmentSlice {
  segment: number;
  start: number;
  end: number;
}

/**
 * restore_data_subset of an encrypted object: receives the sealed segments named by `fetched`
 * (in order, concatenated, as downloadRanges writes them), opens each with its own index,
 * and writes the slices of `slices` in order.
 */
export class SubsetDecryptingSink implements FinishingSink {
  private carry: Buffer;
  private carried = 0;
  private next = 0;
  private sliceAt = 0;
  private readonly batch: Batcher;

  constructor(
    out: Sink,
    private readonly header: ObjectHeader,
    private readonly segments: number,
    private readonly objectSize: number,
    /** Segment indexes fetched, ascending, each once. */
    private readonly fetched: number[],
    private readonly slices: SegmentSlice[],
    private readonly what: string,
  ) {
    this.batch = new Batcher(out);
    this.carry = Buffer.allocUnsafe(header.segmentSize + TAG_SIZE);
  }

  private sealedLength(index: number): number {
    const stride = this.header.segmentSize + TAG_SIZE;
    return Math.min(stride, this.objectSize - HEADER_SIZE - index * stride);
  }

  private async open(sealed: Buffer): Promise<void> {
    const index = this.fetched[this.next++]!;
    const plain = openSegment(this.header, index, index === this.segments - 1, sealed);
    if (plain === undefined) {
      const start = HEADER_SIZE + index * (this.header.segmentSize + TAG_SIZE);
      throw new PluginError(
        `decrypting ${this.what}: segment ${index} (bytes ${start}-${start + sealed.length - 1}) failed authentication: the object was altered`,
      );
    }
    while (this.sliceAt < this.slices.length && this.slices[this.sliceAt]!.segment === index) {
      const s = this.slices[this.sliceAt++]!;
      await this.batch.add(plain.subarray(s.start, s.end));
    }
  }

  async write(buf: Buffer): Promise<void> {
    let pos = 0;
    while (pos < buf.length) {
      if (this.next >= this.fetched.length) throw new PluginError(`decrypting ${this.what}: more bytes arrived than the segments asked for`);
      const want = this.sealedLength(this.fetched[this.next]!);
      if (this.carried === 0 && buf.length - pos >= want) {
        await this.open(buf.subarray(pos, pos + want));
        pos += want;
        continue;
      }
      const n = Math.min(want - this.carried, buf.length - pos);
      buf.copy(this.carry, this.carried, pos, pos + n);
      this.carried += n;
      pos += n;
      if (this.carried === want) {
        this.carried = 0;
        await this.open(this.carry.subarray(0, want));
      }
    }
    await this.batch.flush();
  }

  async finish(): Promise<void> {
    if (this.next !== this.fetched.length || this.carried !== 0) {
      throw new PluginError(`decrypting ${this.what}: the download ended before every segment asked for arrived`);
    }
    await this.batch.flush();
  }
}

/**
 * A small object held whole (a deduplication manifest's chunk list, a chunk): its plaintext and
 * the ID of the key that opened it, every segment authenticated; undefined if it is not encrypted.
 */
export async function decryptWhole(sealed: Buffer, keys: UserKey[], what: string): Promise<{ plain: Buffer; keyId: string | undefined } | undefined> {
  const plain = new MemorySink();
  const sink = new DetectingSink(plain, keys, what);
  await sink.write(sealed);
  await sink.finish();
  return sink.kind === 'encrypted' ? { plain: plain.bytes(), keyId: sink.keyId } : undefined;
}
