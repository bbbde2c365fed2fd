/**
 * Client-side encryption in the data path (docs/encryption.md): the upload's source is wrapped
 * to encrypt, the restore's sink to detect and decrypt, and restore_data_subset maps plaintext
 * ranges to the sealed segments that hold them. upload.ts and download.ts move bytes as ever.
 */
import type { PluginConfig } from '../config/types.js';
import { log } from '../log/gplog.js';
import { downloadObject, downloadRanges, type Range, type Verification } from '../storage/download.js';
import { s3Url } from '../storage/keys.js';
import type { Sink } from '../storage/sink.js';
import type { PartSource } from '../storage/source.js';
import type { ObjectStore } from '../storage/store.js';
import type { TransferOptions } from '../storage/upload.js';
import { FormatError, HEADER_SIZE, isEncrypted, layoutOf, openObjectHeader, TAG_SIZE } from '../storage/encryption/format.js';
import { DetectingSink, SubsetDecryptingSink, type SegmentSlice } from '../storage/encryption/sink.js';
import { EncryptingSource } from '../storage/encryption/source.js';
import { PluginError } from '../errors.js';
import { checkRangesWithin } from './offsets.js';

/** What an upload reads: `inner` itself, or encrypted when client_side_encryption is on. */
export function uploadSource(config: PluginConfig, inner: PartSource): PartSource {
  return config.clientSideEncryption && config.encryptionKey ? new EncryptingSource(inner, config.encryptionKey) : inner;
}

/** For the upload's log line. */
export function uploadNote(config: PluginConfig): string {
  return [config.clientSideEncryption ? 'client-side encrypted' : '', config.deduplication ? 'deduplicated' : ''].filter(Boolean).join(', ');
}

export interface RestoredObject {
  bytes: number;
  /** 'decrypted' for a client-side encrypted object, else empty (for the transfer's log line). */
  note: string;
  /** What the stored bytes were checked against (verify_backup --deep reports it). */
  verification: Verification;
  /** True when the object was client-side encrypted: every segment was then authenticated. */
  decrypted: boolean;
}

/**
 * A whole object to `out`, decrypted and verified if it is encrypted; returns the bytes downloaded
 * and how they were checked. `plainEtag`: see downloadObject.
 */
export async function restoreObject(
  config: PluginConfig,
  store: ObjectStore,
  key: string,
  out: Sink,
  opts: TransferOptions,
  plainEtag = false,
  /** What the log says of a plain object once it is read (a deduplication manifest is one too). */
  plainNote: () => string = () => 'restored as stored',
): Promise<RestoredObject> {
  const sink = new DetectingSink(out, config.decryptionKeys, s3Url(store.bucket, key));
  const { bytes, verification } = await downloadObject(store, key, sink, opts, plainEtag);
  await sink.finish();
  if (sink.kind === 'encrypted') {
    log.info(`${s3Url(store.bucket, key)} is client-side encrypted: every segment decrypted and verified (key ID ${sink.keyId})`);
    return { bytes, note: 'decrypted', verification, decrypted: true };
  }
  log.info(`${s3Url(store.bucket, key)} is not client-side encrypted: ${plainNote()}`);
  return { bytes, note: '', verification, decrypted: false };
}

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

/**
 * restore_data_subset: plain objects as before; for an encrypted one, the ranges are checked
 * against the plaintext's size, and only the segments holding them are fetched and verified.
 */
export async function restoreSubset(
  config: PluginConfig,
  store: ObjectStore,
  key: string,
  objectSize: number,
  ranges: Range[],
  out: Sink,
  opts: TransferOptions,
): Promise<{ bytes: number; note: string }> {
  const what = s3Url(store.bucket, key);
  let prefix: Buffer = Buffer.alloc(0);
  if (objectSize >= HEADER_SIZE) {
    const res = await store.getRange(key, 0, HEADER_SIZE, opts.signal);
    prefix = await readAll(res.body as AsyncIterable<Buffer>);
  }
  if (!isEncrypted(prefix)) {
    checkRangesWithin(ranges, objectSize, what);
    log.info(`${what} is not client-side encrypted: ranges restored as stored`);
    return { bytes: await downloadRanges(store, key, ranges, out, opts), note: '' };
  }
  if (config.decryptionKeys.length === 0) {
    throw new PluginError(
      `decrypting ${what}: the object is encrypted by the plugin's client_side_encryption, and no key is configured: set client_side_encryption: on and encryption_key_file to its key file`,
    );
  }
  let header;
  try {
    header = openObjectHeader(prefix, config.decryptionKeys);
  } catch (err) {
    if (err instanceof FormatError) throw new PluginError(`decrypting ${what}: ${err.message}`);
    throw err;
  }
  const layout = layoutOf(objectSize, header.segmentSize);
  if (!layout) throw new PluginError(`decrypting ${what}: its size (${objectSize} bytes) is not that of an encrypted object: it was truncated or extended`);
  checkRangesWithin(ranges, layout.plainSize, `${what} (decrypted)`);

  // The segments each range touches, and the slice of each.
  const seg = header.segmentSize;
  const slices: SegmentSlice[] = [];
  const fetched: number[] = [];
  for (const r of ranges) {
    for (let i = Math.floor(r.start / seg); i * seg < r.end; i++) {
      slices.push({ segment: i, start: Math.max(r.start, i * seg) - i * seg, end: Math.min(r.end, (i + 1) * seg) - i * seg });
      if (fetched[fetched.length - 1] !== i) fetched.push(i);
    }
  }
  // Consecutive segments are one range of the object.
  const stride = seg + TAG_SIZE;
  const cipherRanges: Range[] = [];
  for (const i of fetched) {
    const start = HEADER_SIZE + i * stride;
    const end = Math.min(objectSize, start + stride);
    const prev = cipherRanges[cipherRanges.length - 1];
    if (prev && prev.end === start) prev.end = end;
    else cipherRanges.push({ start, end });
  }
  const sink = new SubsetDecryptingSink(out, header, layout.segments, objectSize, fetched, slices, what);
  const bytes = await downloadRanges(store, key, cipherRanges, sink, opts);
  await sink.finish();
  log.info(`${what} is client-side encrypted: ${fetched.length} of ${layout.segments} segment(s) fetched, decrypted and verified (key ID ${header.keyId})`);
  return { bytes, note: 'decrypted' };
}
