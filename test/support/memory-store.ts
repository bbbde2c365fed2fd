/**
 * An in-memory ObjectStore for unit tests: the same interface as the S3
 * store, with counters and a fault hook to test the transfer logic against.
 */
import { Readable } from 'node:stream';
import {
  NotFoundError,
  type CompletedPart,
  type DeleteFailure,
  type ObjectInfo,
  type ObjectStore,
  type RangeResponse,
} from '../../src/storage/store.js';

export type Op = 'put' | 'create' | 'part' | 'complete' | 'abort' | 'get' | 'head' | 'list' | 'delete';

export class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, Buffer>();
  readonly uploads = new Map<string, { key: string; parts: Map<number, Buffer> }>();
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

  async putObject(key: string, body: Buffer, signal?: AbortSignal): Promise<void> {
    await this.enter('put', key, undefined, signal);
    this.objects.set(key, Buffer.from(body));
  }

  async createMultipartUpload(key: string): Promise<string> {
    await this.enter('create', key);
    const id = `upload-${this.nextId++}`;
    this.uploads.set(id, { key, parts: new Map() });
    return id;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, signal?: AbortSignal): Promise<string> {
    await this.enter('part', key, `${partNumber}:${body.length}`, signal);
    const u = this.uploads.get(uploadId);
    if (!u) throw new Error(`NoSuchUpload ${uploadId}`);
    u.parts.set(partNumber, Buffer.from(body));
    return `"etag-${partNumber}"`;
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    await this.enter('complete', key, parts.map(p => p.partNumber).join(','));
    const u = this.uploads.get(uploadId);
    if (!u) throw new Error(`NoSuchUpload ${uploadId}`);
    const bufs = parts.map((p, i) => {
      if (p.partNumber !== i + 1) throw new Error(`InvalidPartOrder at ${i}`);
      const b = u.parts.get(p.partNumber);
      if (!b) throw new Error(`InvalidPart ${p.partNumber}`);
      return b;
    });
    this.objects.set(key, Buffer.concat(bufs));
    this.uploads.delete(uploadId);
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
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
    return { size: obj.length, start, length: slice.length, body: Readable.from(chunks) };
  }

  async headObject(key: string): Promise<number | undefined> {
    await this.enter('head', key);
    return this.objects.get(key)?.length;
  }

  async *listObjects(prefix: string): AsyncIterable<ObjectInfo> {
    await this.enter('list', prefix);
    for (const [key, body] of [...this.objects].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (key.startsWith(prefix)) yield { key, size: body.length };
    }
  }

  async deleteObjects(keys: string[]): Promise<DeleteFailure[]> {
    await this.enter('delete', keys[0] ?? '', String(keys.length));
    const failures: DeleteFailure[] = [];
    for (const k of keys) {
      try {
        this.fault('delete', k);
        this.objects.delete(k);
      } catch (err) {
        failures.push({ key: k, message: (err as Error).message });
      }
    }
    return failures;
  }
}
