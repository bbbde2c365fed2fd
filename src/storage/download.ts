/**
 * Parallel ranged GETs written strictly in order: at most `concurrency`
 * requests in flight, and the sink's pace holds the fetching back. A body cut
 * off mid-way resumes from the byte it reached. The first error cancels every
 * request and stops output: nothing after a failed piece is written. A whole
 * object's bytes are checked against the CRC-32 stored with it.
 */
import { createHash, type Hash } from 'node:crypto';
import { log } from '../log/gplog.js';
import { PluginError } from '../errors.js';
import { crc32, crc32Combine, crc32Hex } from './crc32.js';
import { s3Url } from './keys.js';
import { partSizeIn } from './partplan.js';
import { BufferPool } from './pool.js';
import { collectYoungGarbage } from './young-gc.js';
import { planRangeGets, selectPieces } from './ranges.js';
import type { Sink } from './sink.js';
import { MIN_PART_SIZE, type ObjectStore, type PartLayout, type RangeResponse } from './store.js';
import type { TransferOptions } from './upload.js';

export interface Range {
  start: number;
  /** Exclusive. */
  end: number;
}

/** Resumes of one piece after its body was cut, when TransferOptions.retries is not given. */
const DEFAULT_RESUMES = 3;

/** Splits ranges into pieces of at most partSize bytes. */
export function splitRanges(ranges: Range[], partSize: number): Range[] {
  const pieces: Range[] = [];
  for (const r of ranges) {
    for (let s = r.start; s < r.end; s += partSize) pieces.push({ start: s, end: Math.min(r.end, s + partSize) });
  }
  return pieces;
}

/** A piece's bytes and their CRC-32. */
interface Piece {
  data: Buffer;
  crc: number;
}

/**
 * Reads `res.body` into `buf` from `offset`, continuing `crc` over each chunk as it arrives (still
 * in the CPU's cache); returns how far it got, throwing only if the server sent too much.
 */
async function readInto(
  res: RangeResponse,
  buf: Buffer,
  offset: number,
  crc: number,
  what: string,
): Promise<{ filled: number; crc: number; error?: Error }> {
  if (res.fill) return res.fill(buf, offset, crc);
  let filled = offset;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (filled + chunk.length > buf.length) {
        res.body.destroy();
        throw new PluginError(`downloading ${what}: the server sent more bytes than asked for`);
      }
      buf.set(chunk, filled);
      crc = crc32(chunk, crc);
      filled += chunk.length;
    }
  } catch (err) {
    if (err instanceof PluginError) throw err;
    return { filled, crc, error: err as Error };
  }
  return { filled, crc };
}

class PieceFetcher {
  readonly what: string;

  readonly pool: BufferPool;

  constructor(
    private readonly store: ObjectStore,
    private readonly key: string,
    private readonly resumes: number,
    private readonly partSize: number,
  ) {
    this.what = s3Url(store.bucket, key);
    this.pool = new BufferPool(partSize);
  }

  /**
   * The bytes of `p` (at most a part), from `first` (an answer already received for p) or new
   * GETs, resuming where a body was cut. The buffer comes from the pool; give it back once written.
   */
  async fetch(p: Range, signal: AbortSignal, first?: RangeResponse): Promise<Piece> {
    const buf = this.pool.take(this.partSize).subarray(0, p.end - p.start);
    try {
      return await this.fill(buf, p, signal, first);
    } catch (err) {
      this.pool.give(buf);
      throw err;
    }
  }

  private async fill(buf: Buffer, p: Range, signal: AbortSignal, first?: RangeResponse): Promise<Piece> {
    let filled = 0;
    let crc = 0;
    for (let attempt = 0; ; attempt++) {
      const res = attempt === 0 && first ? first : await this.store.getRange(this.key, p.start + filled, p.end, signal);
      if (res.length !== p.end - p.start - filled) {
        res.body.destroy();
        throw new PluginError(
          `downloading ${this.what}: bytes ${p.start + filled}-${p.end - 1} are beyond the object's end (${res.size} bytes)`,
        );
      }
      const got = await readInto(res, buf, filled, crc, this.what);
      const cut = got.filled - filled < res.length ? (got.error?.message ?? 'the connection ended early') : undefined;
      filled = got.filled;
      crc = got.crc;
      if (!cut) return { data: buf, crc };
      signal.throwIfAborted();
      if (attempt >= this.resumes) {
        throw new PluginError(`downloading ${this.what}: the connection ended after ${p.start + filled} of bytes ${p.start}-${p.end - 1} (${cut})`);
      }
    }
  }
}

/**
 * Fetches pieces in parallel and writes them in order; returns the bytes written and their CRC-32.
 * `first`, if given, is the answer already received for pieces[0]. `observer`, if given, is
 * awaited before the first byte is written (fetching goes on meanwhile) and sees every byte in order.
 */
async function fetchInOrder(
  fetcher: PieceFetcher,
  pieces: Range[],
  sink: Sink,
  opts: TransferOptions,
  first?: RangeResponse,
  observer?: Promise<((data: Buffer) => void) | undefined>,
): Promise<{ bytes: number; crc: number }> {
  const cancel = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, cancel.signal]) : cancel.signal;
  // At most `concurrency` requests in flight, and at most one more piece held
  // than that (the one being written): memory <= (concurrency + 1) x part size.
  const pending: Array<Promise<Piece> | undefined> = [];
  let launched = 0;
  let inFlight = 0;
  let written = 0;
  let bytes = 0;
  let crc = 0;
  const launch = () => {
    while (launched < pieces.length && inFlight < opts.concurrency && launched - written <= opts.concurrency) {
      const p = fetcher.fetch(pieces[launched]!, signal, launched === 0 ? first : undefined);
      inFlight++;
      const settled = p.finally(() => {
        inFlight--;
        launch();
      });
      settled.catch(() => {}); // handled when its turn comes; until then it must not be "unhandled"
      pending[launched++] = settled;
    }
  };
  let observe: ((data: Buffer) => void) | undefined;
  try {
    for (; written < pieces.length; written++) {
      launch();
      if (written === 0) observe = await observer;
      const { data, crc: pieceCrc } = await pending[written]!;
      pending[written] = undefined;
      signal.throwIfAborted();
      crc = crc32Combine(crc, pieceCrc, data.length);
      observe?.(data);
      await sink.write(data);
      fetcher.pool.give(data);
      // Bun's socket reads leave a fresh buffer each (young-gc.ts); none are to come after the last piece.
      if (written + 1 < pieces.length) collectYoungGarbage();
      bytes += data.length;
    }
  } catch (err) {
    cancel.abort(err);
    throw err;
  }
  return { bytes, crc };
}

/**
 * The MD5 of each upload part of an object, from its bytes in order and the part layout it was
 * uploaded with, giving the ETag S3 computes for a multipart object: the MD5 of the parts' MD5s,
 * then `-<parts>`.
 */
class MultipartEtag {
  private readonly digests: Buffer[] = [];
  private hash: Hash = createHash('md5');
  private partBytes = 0;

  constructor(private readonly layout: PartLayout) {}

  update(data: Buffer): void {
    for (let offset = 0; offset < data.length; ) {
      const take = Math.min(partSizeIn(this.layout, this.digests.length + 1) - this.partBytes, data.length - offset);
      this.hash.update(data.subarray(offset, offset + take));
      offset += take;
      this.partBytes += take;
      if (this.partBytes === partSizeIn(this.layout, this.digests.length + 1)) this.endPart();
    }
  }

  private endPart(): void {
    this.digests.push(this.hash.digest());
    this.hash = createHash('md5');
    this.partBytes = 0;
  }

  etag(): string {
    if (this.partBytes > 0) this.endPart();
    return `${createHash('md5').update(Buffer.concat(this.digests)).digest('hex')}-${this.digests.length}`;
  }
}

/** The MD5 of an object's bytes in order: the ETag S3 gives an object stored by one PUT. */
class PlainEtag {
  private readonly hash = createHash('md5');

  update(data: Buffer): void {
    this.hash.update(data);
  }

  etag(): string {
    return this.hash.digest('hex');
  }
}

/** How a restore checks the object's bytes: against a CRC-32, against its ETag, or not at all (and why). */
type Check = { crc32: number } | { etag: string; parts: MultipartEtag | PlainEtag } | { unverified: string };

/** What a whole-object download checked its bytes against; `unverified` says why nothing. */
export type Verification = { by: 'crc32' | 'multipart-etag' | 'md5-etag' } | { by: 'size'; unverified: string };

export interface DownloadResult {
  bytes: number;
  verification: Verification;
}

const NO_CHECKSUM = 'the object carries no checksum (written by the Go plugin or by a server that keeps none)';

/**
 * Without a CRC-32, an object the plugin wrote in parts to a server that keeps no full-object
 * checksum is checked against its ETag, recomputed from the part layout recorded with it. Not
 * when the server encrypts it: MinIO's, and AWS's with SSE-KMS, ETags of encrypted objects are
 * not MD5s.
 */
function checkWithoutCrc(first: RangeResponse, plainEtag: boolean): Check {
  if (plainEtag && !first.encrypted && first.multipart === false && /^[0-9a-f]{32}$/.test(first.etag ?? '')) {
    return { etag: first.etag!, parts: new PlainEtag() };
  }
  if (!first.partLayout) return { unverified: NO_CHECKSUM };
  if (first.encrypted) return { unverified: 'the object carries no CRC-32, and the server encrypts it, so its ETag is not an MD5 of its bytes' };
  if (!/^[0-9a-f]{32}-\d+$/.test(first.etag ?? '')) {
    return { unverified: `the object carries no CRC-32, and its ETag (${first.etag ?? 'none'}) is not the MD5 of its parts' MD5s` };
  }
  return { etag: first.etag!, parts: new MultipartEtag(first.partLayout) };
}

/**
 * The whole object, verified against its stored CRC-32 when it has one, or else against its
 * multipart ETag (checkWithoutCrc); a restore that cannot verify says so in the log, with the
 * reason. The first GET asks for the first part by range and learns the size (and, for a
 * single-PUT object, the checksum) from its answer, so such an object of up to one part is one
 * request; a multipart object's checksum comes from a HEAD sent alongside the GETs, whose answer
 * is awaited before the first byte is written. With `plainEtag`, an object stored by one PUT
 * without a CRC-32 (the Go plugin's) is checked against its ETag as the MD5 of its bytes, which
 * S3 servers give such an object unless they encrypt it (verify_backup --deep asks for this).
 */
export async function downloadObject(
  store: ObjectStore,
  key: string,
  sink: Sink,
  opts: TransferOptions,
  plainEtag = false,
): Promise<DownloadResult> {
  const head = await store.getRange(key, 0, opts.partSize, opts.signal);
  const fetcher = new PieceFetcher(store, key, opts.retries ?? DEFAULT_RESUMES, opts.partSize);
  if (head.size === 0) {
    head.body.destroy();
    return { bytes: 0, verification: { by: 'size', unverified: 'the object is empty' } };
  }
  let stored: Promise<number | undefined> = Promise.resolve(head.crc32);
  // No checksum in the answer: a multipart object keeps its own where only a HEAD tells. Objects
  // larger than S3's smallest part are asked about too, whatever their ETag looks like (not every
  // server marks multipart ETags with -<parts>); small ones are single PUTs (the Go plugin's).
  if (head.crc32 === undefined && (head.multipart !== false || head.size > MIN_PART_SIZE)) {
    stored = store.headObject(key).then(h => h?.crc32);
  }
  const check: Promise<Check> = stored.then(crc => (crc !== undefined ? { crc32: crc } : checkWithoutCrc(head, plainEtag)));
  check.catch(() => {}); // awaited before the first write; a failed HEAD must not be "unhandled" meanwhile
  const observer = check.then(c => ('parts' in c ? (data: Buffer) => c.parts.update(data) : undefined));
  observer.catch(() => {});
  const pieces = splitRanges([{ start: 0, end: head.size }], opts.partSize);
  const { bytes, crc } = await fetchInOrder(fetcher, pieces, sink, opts, head, observer);
  const how = await check;
  const corrupt = (what: string) =>
    new PluginError(`downloading ${fetcher.what}: checksum mismatch: ${what}: the object is corrupt or was altered`);
  if ('crc32' in how) {
    if (how.crc32 !== crc) throw corrupt(`the object's stored CRC-32 is ${crc32Hex(how.crc32)} but its ${bytes} bytes give ${crc32Hex(crc)}`);
    log.verbose(`${fetcher.what}: verified against its CRC-32`);
    return { bytes, verification: { by: 'crc32' } };
  }
  if ('etag' in how) {
    const computed = how.parts.etag();
    const multipart = how.parts instanceof MultipartEtag;
    if (computed !== how.etag) {
      const inParts = multipart ? ', in the parts it was uploaded in,' : '';
      throw corrupt(`the object's ETag is ${how.etag} but its ${bytes} bytes${inParts} give ${computed}`);
    }
    log.verbose(`${fetcher.what}: verified against its ETag (${multipart ? 'the MD5s of its parts' : 'the MD5 of its bytes'})`);
    return { bytes, verification: { by: multipart ? 'multipart-etag' : 'md5-etag' } };
  }
  log.info(`restored unverified: ${how.unverified} (${fetcher.what})`);
  return { bytes, verification: { by: 'size', unverified: how.unverified } };
}

/**
 * Given byte ranges of the object, concatenated (a subset cannot be checked against the whole
 * object's checksum). Ranges close together are fetched by one GET (ranges.ts); the GETs run
 * `concurrency` at a time and only the requested bytes are written, in order.
 */
export async function downloadRanges(
  store: ObjectStore,
  key: string,
  ranges: Range[],
  sink: Sink,
  opts: TransferOptions,
): Promise<number> {
  const fetcher = new PieceFetcher(store, key, opts.retries ?? DEFAULT_RESUMES, opts.partSize);
  const plan = planRangeGets(ranges, opts.partSize);
  // fetchInOrder hands over each GET's bytes in order: the n-th write is the n-th GET's.
  let next = 0;
  const selecting: Sink = {
    write: data => sink.write(selectPieces(data, plan.gets[next++]!, plan.pieces)),
  };
  await fetchInOrder(fetcher, plan.gets, selecting, opts);
  log.info(`restored unverified: byte ranges cannot be checked against the whole object's checksum (${fetcher.what})`);
  return plan.bytes;
}
