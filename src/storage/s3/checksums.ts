/**
 * Which upload checks a server gets, learnt from its answers and kept for the rest of the
 * process (the `checksums` option).
 *
 * S3's flexible checksums (x-amz-checksum-crc32) are validated by AWS, recent MinIO and the
 * test server, which echo the CRC-32 on PutObject and UploadPart. Other servers refuse their
 * headers (Backblaze B2: 400 InvalidArgument "Unsupported header"; R2 has answered 501), or
 * accept and ignore them (Ceph RGW 16 validates none and echoes none), and MinIO releases
 * before full-object checksums fail CompleteMultipartUpload with InvalidPart when one is given.
 * Every S3 server validates Content-MD5 (400 BadDigest), so where the CRC-32 is not validated
 * the uploads carry Content-MD5 instead, at the CPU cost of an MD5 (docs/performance.md).
 *
 * In `auto`, until an answer tells, requests carry both: whatever the server does with the
 * CRC-32, the first requests are checked. An answer that echoes the CRC-32 makes it
 * `validated` (CRC-32 only from then on); one that does not, `ignored`; a refusal, `refused`
 * (the request is sent again without the headers, and no later request carries them).
 */
import { createHash } from 'node:crypto';
import type { ChecksumMode } from '../../config/types.js';
import { log } from '../../log/gplog.js';

export type FlexibleState = 'untested' | 'validated' | 'ignored' | 'refused';

/** Error codes with which servers refuse headers they do not implement (with HTTP 400; any 501 is a refusal too). */
const REFUSAL_CODES = new Set(['InvalidArgument', 'InvalidRequest', 'NotImplemented', 'BadRequest', 'UnsupportedHeader', 'InvalidHeader']);

/** True when `err` (a StoreRequestError) is a server's refusal of the flexible-checksum headers a request carried. */
export function isChecksumRefusal(err: unknown, completing = false): boolean {
  const { status, code } = (err ?? {}) as { status?: number; code?: string };
  if (status === 501) return true;
  if (status !== 400 || code === undefined) return false;
  // MinIO before full-object checksums: InvalidPart for a complete that names the object's CRC-32.
  return REFUSAL_CODES.has(code) || (completing && code === 'InvalidPart');
}

export function md5Base64(body: Buffer): string {
  return createHash('md5').update(body).digest('base64');
}

export class ChecksumPolicy {
  state: FlexibleState = 'untested';
  /** CompleteMultipartUpload refused the full-object CRC-32 headers once (MinIO before full-object checksums). */
  fullObjectRefused = false;
  /** A HEAD with x-amz-checksum-mode was refused once (B2). */
  headModeRefused = false;

  constructor(readonly mode: ChecksumMode) {}

  /** Whether a new request carries the flexible-checksum headers. */
  get sendFlexible(): boolean {
    return this.mode === 'crc32' || (this.mode === 'auto' && (this.state === 'untested' || this.state === 'validated'));
  }

  /** Whether a new upload request carries Content-MD5. */
  get sendMd5(): boolean {
    return this.mode === 'md5' || (this.mode === 'auto' && this.state !== 'validated');
  }

  /** Whether a HEAD asks for the object's checksum (x-amz-checksum-mode). */
  get askChecksumMode(): boolean {
    return (this.mode === 'auto' || this.mode === 'crc32') && !this.headModeRefused && this.state !== 'refused';
  }

  /** `mode: auto` falls back on a refusal; `crc32` does not. */
  get mayFallBack(): boolean {
    return this.mode === 'auto';
  }

  validated(operation: string): void {
    if (this.state === 'untested') log.verbose(`checksums: the server validates CRC-32 flexible checksums (it echoed the one sent with ${operation}); uploads carry CRC-32 only`);
    if (this.state === 'untested' || this.state === 'ignored') this.state = 'validated';
  }

  ignored(operation: string): void {
    if (this.state === 'refused' || this.state === 'ignored') return;
    log.verbose(`checksums: the server did not echo the CRC-32 sent with ${operation}, so it does not validate it; uploads carry Content-MD5 instead`);
    this.state = 'ignored';
  }

  refused(operation: string, why: string): void {
    if (this.state !== 'refused') {
      log.verbose(`checksums: the server refused the flexible-checksum headers of ${operation} (${why}); sending it again without them, and no later request carries them: uploads carry Content-MD5 instead`);
    }
    this.state = 'refused';
  }
}
