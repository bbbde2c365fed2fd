/**
 * An in-memory ObjectStore for unit tests: the same interface as the S3
 * store, with counters and a fault hook to test the transfer logic against.
 *
 * Like S3, it refuses a body whose CRC-32 is not the one sent with it
 * (BadDigest), keeps the whole object's CRC-32, reports it from headObject,
 * and from getRange for single-PUT objects (S3 returns their user metadata
 * with every GET); getRange also says which objects came from a multipart
 * upload. Objects a test puts into `objects` directly carry no checksum, as
 * objects written by the Go plugin; flipping bytes of a stored Buffer in
 * place keeps the checksum and so simulates corruption at rest.
 *
 * ETags are S3's: the MD5 of a single PUT's bytes, `<MD5 of the parts' MD5s>-<parts>` for a
 * multipart object, computed when the object is stored; the part layout given at
 * createMultipartUpload comes back with every GET, as S3 returns user metadata. With
 * `keepsChecksums` false the store keeps no full-object CRC-32 of multipart objects (as Ceph RGW
 * 16, or a server that refuses flexible checksums): a restore has only the ETag to check.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32 as crc32Of } from '../../src/storage/crc32.js';
import {
  NotFoundError,
  StoreRequestError,
  type CompletedPart,
  type DeleteFailure,
  type MultipartUploadInfo,
  type ObjectHead,
  type ObjectInfo,
  type ObjectStore,
  type PartLayout,
  type RangeResponse,
} from '../../src/storage/store.js';

export type Op = 'put' | 'create' | 'part' | 'complete' | 'abort' | 'get' | 'head' | 'list' | 'delete';

interface StoredChecksum {
  /** The Buffer in `objects` this checksum was stored with; another Buffer there means the test replaced the object. */
  body: Buffer;
  crc32: number;
  singlePut: boolean;
  etag: string;
  layout?: PartLayout;
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest();

export class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, Buffer>();
  readonly checksums = new Map<string, StoredChecksum>();
  /** When each object was last written (tests may set it into the past); objects without one list as written now. */
  readonly modified = new Map<string, Date>();
  readonly uploads = new Map<string, { key: string; layout?: PartLayout; initiated: Date; parts: Map<number, { body: Buffer; crc32: number }> }>();
  /** False: no full-object CRC-32 for multipart objects (headObject tells none). */
  keepsChecksums = true;
  readonly calls: Array<{ op: Op; key: string; detail?: string }> = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Throw from an operation to simulate a failure. */
  fault: (op: Op, key: string, detail?: string) => void = () => {};
  /** Milliseconds each transfer request takes. */
  latencyMs = 0;
  private nextId = 1;

  constructor(readonly bucket = 'test-bucket') {}

  private async enter(op: Op, key: string, detail?: string, signal?: AbortSignal): Promise<void> {
    this.calls.push({ op, key, detail });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.latencyMs) await new Promise(r => setTimeout(r, this.latencyMs));
      signal?.throwIfAborted();
      this.fault(op, key, detail);
    } finally {
      this.inFlight--;
    }
  }

  count(op: Op): number {
    return this.calls.filter(c => c.op === op).length;
  }

  private checkDigest(what: string, body: Buffer, crc32: number): void {
    const actual = crc32Of(body);
    if (actual !== crc32) {
      throw new StoreRequestError(`${what}: BadDigest: CRC-32 sent ${crc32}, body has ${actual} (HTTP 400)`, 400, 'BadDigest');
    }
  }

  private store(key: string, body: Buffer, crc32: number, singlePut: boolean, etag: string, layout?: PartLayout): void {
    this.objects.set(key, body);
    this.checksums.set(key, { body, crc32, singlePut, etag, layout });
    this.modified.delete(key);
  }

  /** The checksum stored with the object now under `key`, if it still is the object it was stored with. */
  private checksumOf(key: string): StoredChecksum | undefined {
    const c = this.checksums.get(key);
    return c && c.body === this.objects.get(key) ? c : undefined;
  }

  async putObject(key: string, body: Buffer, crc32: number, signal?: AbortSignal): Promise<void> {
    await this.enter('put', key, undefined, signal);
    this.checkDigest(`uploading ${key}`, body, crc32);
    this.store(key, Buffer.from(body), crc32, true, md5(body).toString('hex'));
  }

  async createMultipartUpload(key: string, layout?: PartLayout): Promise<string> {
    await this.enter('create', key);
    const id = `upload-${this.nextId++}`;
    this.uploads.set(id, { key, layout, initiated: new Date(), parts: new Map() });
    return id;
  }

  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
    crc32: number,
    signal?: AbortSignal,
  ): Promise<string> {
    await this.enter('part', key, `${partNumber}:${body.length}`, signal);
    const u = this.uploads.get(uploadId);
    if (!u) throw new Error(`NoSuchUpload ${uploadId}`);
    this.checkDigest(`uploading part ${partNumber} of ${key}`, body, crc32);
    u.parts.set(partNumber, { body: Buffer.from(body), crc32 });
    return `"etag-${partNumber}"`;
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[], crc32: number): Promise<void> {
    await this.enter('complete', key, parts.map(p => p.partNumber).join(','));
    const u = this.uploads.get(uploadId);
    if (!u) throw new Error(`NoSuchUpload ${uploadId}`);
    const bufs = parts.map((p, i) => {
      if (p.partNumber !== i + 1) throw new Error(`InvalidPartOrder at ${i}`);
      const stored = u.parts.get(p.partNumber);
      if (!stored || p.etag !== `"etag-${p.partNumber}"` || p.crc32 !== stored.crc32) throw new Error(`InvalidPart ${p.partNumber}`);
      return stored.body;
    });
    const body = Buffer.concat(bufs);
    this.checkDigest(`completing multipart upload of ${key}`, body, crc32);
    const etag = `${md5(Buffer.concat(bufs.map(md5))).toString('hex')}-${bufs.length}`;
    this.store(key, body, crc32, false, etag, u.layout);
    this.uploads.delete(uploadId);
  }

  async *listMultipartUploads(prefix: string): AsyncIterable<MultipartUploadInfo> {
    for (const [uploadId, u] of [...this.uploads]) if (u.key.startsWith(prefix)) yield { key: u.key, uploadId, initiated: u.initiated };
  }

  async abortMultipartUpload(key: string, uploadId: string, _opts?: { deadlineMs?: number }): Promise<void> {
    await this.enter('abort', key);
    this.uploads.delete(uploadId);
  }

  async getRange(key: string, start: number, end: number, signal?: AbortSignal): Promise<RangeResponse> {
    await this.enter('get', key, `${start}-${end}`, signal);
    const obj = this.objects.get(key);
    if (!obj) throw new NotFoundError(`downloading ${key}: no such object`, 'NoSuchKey');
    const slice = obj.subarray(start, Math.min(end, obj.length));
    // Delivered in small chunks, as a socket would.
    const chunks: Buffer[] = [];
    for (let i = 0; i < slice.length; i += 65536) chunks.push(slice.subarray(i, i + 65536));
    const checksum = this.checksumOf(key);
    return {
      size: obj.length,
      start,
      length: slice.length,
      body: Readable.from(chunks),
      crc32: checksum?.singlePut ? checksum.crc32 : undefined,
      // S3 shows a multipart object by its ETag (-<parts>); only a HEAD tells its checksum.
      multipart: checksum !== undefined && !checksum.singlePut,
      etag: checksum?.etag,
      partLayout: checksum?.layout,
    };
  }

  async headObject(key: string): Promise<ObjectHead | undefined> {
    await this.enter('head', key);
    const obj = this.objects.get(key);
    if (!obj) return undefined;
    const checksum = this.checksumOf(key);
    return { size: obj.length, crc32: checksum && (checksum.singlePut || this.keepsChecksums) ? checksum.crc32 : undefined };
  }

  async *listObjects(prefix: string): AsyncIterable<ObjectInfo> {
    await this.enter('list', prefix);
    for (const [key, body] of [...this.objects].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (key.startsWith(prefix)) yield { key, size: body.length, lastModified: this.modified.get(key) ?? new Date() };
    }
  }

  async deleteObjects(keys: string[]): Promise<DeleteFailure[]> {
    await this.enter('delete', keys[0] ?? '', String(keys.length));
    const failures: DeleteFailure[] = [];
    for (const k of keys) {
      try {
        this.fault('delete', k);
        this.objects.delete(k);
        this.modified.delete(k);
        this.checksums.delete(k);
      } catch (err) {
        failures.push({ key: k, message: (err as Error).message });
      }
    }
    return failures;
  }
}
