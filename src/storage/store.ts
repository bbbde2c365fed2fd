import type { Readable } from 'node:stream';
import { PluginError } from '../errors.js';

/**
 * The narrow object-store interface every command is written against. The S3
 * client implements it for real; an in-memory store implements it for unit
 * tests. Keys are full object keys (folder included); the bucket is fixed per store.
 *
 * Checksums are CRC-32 (IEEE, as zlib.crc32) values, unsigned 32-bit integers.
 * An object's checksum covers its whole content; stores keep it with the object
 * (S3: the full-object checksum, and user metadata for single PUTs) so that a
 * restore can verify every byte end to end.
 */
export interface ObjectStore {
  readonly bucket: string;

  /** One PUT of a whole object (streams that end within the first part), with its CRC-32. */
  putObject(key: string, body: Buffer, crc32: number, signal?: AbortSignal): Promise<void>;

  /**
   * Starts a multipart upload whose parts carry CRC-32s and whose object gets a full-object CRC-32
   * where the server keeps one. `layout` (the part sizes the upload will use) is kept with the
   * object, so that a restore can check its parts against a multipart ETag where it has no CRC.
   */
  createMultipartUpload(key: string, layout?: PartLayout): Promise<string>;
  /** `crc32` is the part's own. Returns the part's ETag. */
  uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
    crc32: number,
    signal?: AbortSignal,
  ): Promise<string>;
  /** `crc32` is the whole object's. */
  completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[], crc32: number): Promise<void>;
  /** An upload already gone counts as aborted. `deadlineMs`: one attempt only, given up after that long. */
  abortMultipartUpload(key: string, uploadId: string, opts?: { deadlineMs?: number }): Promise<void>;

  /** Multipart uploads begun and neither completed nor aborted, of keys under the prefix, page after page. */
  listMultipartUploads(prefix: string): AsyncIterable<MultipartUploadInfo>;

  /**
   * Bytes [start, end) of an object, or fewer if the object is shorter.
   * `size` is the object's total size as the server reports it; `body`
   * yields exactly `length` bytes. Missing object: throws NotFoundError.
   */
  getRange(key: string, start: number, end: number, signal?: AbortSignal): Promise<RangeResponse>;

  /** Size and stored checksum of an object, or undefined if there is none. */
  headObject(key: string): Promise<ObjectHead | undefined>;

  /** Whether the bucket has S3 Object Lock enabled; undefined when the store may not tell (access denied). */
  objectLockEnabled?(): Promise<boolean | undefined>;

  /** Sets an object's S3 Object Lock retention (mode, ISO 8601 date). */
  putObjectRetention?(key: string, mode: string, retainUntil: string): Promise<void>;

  /** Every object under the prefix, page after page. */
  listObjects(prefix: string): AsyncIterable<ObjectInfo>;

  /** Deletes up to 1000 keys in one request; returns the keys that failed and why. */
  deleteObjects(keys: string[]): Promise<DeleteFailure[]>;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
  crc32: number;
}

export interface RangeResponse {
  size: number;
  start: number;
  length: number;
  body: Readable;
  /**
   * The whole object's CRC-32 when this answer carries it (user metadata of a
   * single-PUT object comes with every GET); undefined when it does not say,
   * which does not mean the object has none (a HEAD tells).
   */
  crc32?: number;
  /**
   * Where the store can, reads the body straight into `into` from `offset` to its end (instead
   * of `body`), with the bytes' CRC-32 continued from `crc`; returns how far it got and why it
   * stopped short.
   */
  fill?(into: Buffer, offset: number, crc: number): Promise<{ filled: number; crc: number; error?: Error }>;
  /**
   * True when the answer shows the object came from a multipart upload (its
   * ETag ends in -<parts>): its checksum, if any, is only told by a HEAD.
   */
  multipart?: boolean;
  /** The object's ETag, quotes removed, when the answer carries one. */
  etag?: string;
  /** The part sizes the object was uploaded with, when the plugin recorded them (multipart objects). */
  partLayout?: PartLayout;
  /** True when the answer says the server encrypts the object (its ETag is then not an MD5 on every server). */
  encrypted?: boolean;
}

/**
 * Part sizes of a multipart upload, as src/storage/partplan.ts plans them: `partSize` for the
 * first `partsPerDoubling` parts, then doubling every `partsPerDoubling` parts.
 */
export interface PartLayout {
  partSize: number;
  partsPerDoubling: number;
}

export interface ObjectHead {
  size: number;
  /** Undefined for objects written without one (by the Go plugin, or by a server that keeps none). */
  crc32?: number;
  /** S3 Object Lock: the retention's end (ISO 8601, as the server says it) and mode, if the object has one. */
  lockedUntil?: string;
  lockMode?: string;
}

export interface MultipartUploadInfo {
  key: string;
  uploadId: string;
  /** When the upload was begun, by the server's clock. */
  initiated: Date;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** When the object was last written, by the server's clock, where the listing says. */
  lastModified?: Date;
}

export interface DeleteFailure {
  key: string;
  message: string;
}

/** The object (or its bucket) does not exist. */
export class NotFoundError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/**
 * A request that failed: the message names the operation and the s3:// URL; `status` and `code`
 * are the HTTP status and S3 error code (AccessDenied, NoSuchBucket, ...) when the server answered.
 */
export class StoreRequestError extends PluginError {
  constructor(message: string, readonly status?: number, readonly code?: string) {
    super(message);
    this.name = 'StoreRequestError';
  }
}

/** S3's limits on multipart uploads. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
export const MAX_PARTS = 10_000;
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * 1024 * 1024;
/** DeleteObjects takes at most this many keys a request. */
export const MAX_DELETE_BATCH = 1000;
