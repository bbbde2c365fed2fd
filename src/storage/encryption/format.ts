/**
 * The client-side encryption format, version 1 (docs/encryption.md describes it for a decrypter):
 *
 *   header (108 bytes) | segment 0 | segment 1 | ... | segment n-1
 *
 * Every segment is AES-256-GCM ciphertext of up to `segmentSize` plaintext bytes followed by
 * its 16-byte tag, under the object's own random data key. The nonce of segment i is the
 * object's 7-byte random prefix, i as a 32-bit big-endian counter, and one byte that is 1 for
 * the last segment and 0 otherwise: a reordered, dropped, truncated or appended segment fails
 * its tag. Every segment but the last holds exactly `segmentSize` bytes; the last holds 1 to
 * `segmentSize` bytes, or 0 when the whole plaintext is empty.
 *
 * The data key is wrapped (AES-256-GCM) by a key-encryption key: the user's 256-bit key itself,
 * or scrypt of the user's passphrase with the header's salt; the wrap's AAD is the header up to
 * the wrapped key, so the tag authenticates every header field.
 *
 * node:crypto (BoringSSL under Bun, OpenSSL under Node; AES-NI) does the cryptography; nothing here
 * is hand-written cipher code.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes as nodeRandomBytes, scryptSync } from 'node:crypto';

/** NUL first: no text (COPY output, SQL, YAML), gzip or zstd stream begins with it. */
export const MAGIC = Buffer.from('\0GPBKENC', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_SIZE = 108;
export const TAG_SIZE = 16;
export const DEFAULT_SEGMENT_SIZE = 64 * 1024;
/** Segment sizes a header may declare: powers of two from 4 KiB to 16 MiB. */
const MIN_LOG2_SEGMENT = 12;
const MAX_LOG2_SEGMENT = 24;
export const NONCE_PREFIX_SIZE = 7;
const SALT_SIZE = 16;
const KEY_ID_SIZE = 8;

export const KDF_RAW_KEY = 0;
export const KDF_SCRYPT = 1;
/** scrypt cost for passphrases: N = 2^15, r = 8, p = 1 (32 MiB, some 0.1 s per object). */
export const SCRYPT_LOG2_N = 15;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;

const KEY_ID_LABEL = 'gpbackup_s3_plugin key id v1';

// Byte offsets of the header's fields.
const OFF_VERSION = 8;
const OFF_KDF = 9;
const OFF_LOG2_N = 10;
const OFF_R = 11;
const OFF_P = 12;
const OFF_LOG2_SEGMENT = 13;
const OFF_RESERVED = 14; // 2 bytes, zero
const OFF_SALT = 16;
const OFF_KEY_ID = 32;
const OFF_NONCE_PREFIX = 40;
const OFF_RESERVED2 = 47; // 1 byte, zero
const OFF_WRAP_NONCE = 48;
const OFF_WRAPPED_KEY = 60; // 32 bytes of ciphertext, then the 16-byte tag at 92
const OFF_WRAP_TAG = 92;

/** A key from a key file: 32 raw bytes, or a passphrase stretched with scrypt per object. */
export type UserKey = { kind: 'raw'; key: Buffer; source: string } | { kind: 'passphrase'; passphrase: Buffer; source: string };

export type RandomBytes = (n: number) => Buffer;
export const secureRandom: RandomBytes = n => nodeRandomBytes(n);

/** What failed, for a message that names the object. */
export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FormatError';
  }
}

export interface ObjectHeader {
  segmentSize: number;
  noncePrefix: Buffer;
  dataKey: Buffer;
  keyId: string;
  /** Which user key opened it. */
  key: UserKey;
}

function scryptKek(passphrase: Buffer, salt: Buffer, log2N: number, r: number, p: number): Buffer {
  const N = 2 ** log2N;
  return scryptSync(passphrase, salt, 32, { N, r, p, maxmem: 128 * N * r * p + 16 * 1024 * 1024 });
}

function keyIdOf(kek: Buffer): Buffer {
  return createHmac('sha256', kek).update(KEY_ID_LABEL).digest().subarray(0, KEY_ID_SIZE);
}

/** The key ID of a raw key (the same in every object it wraps); passphrases have one per object (salted). */
export function rawKeyId(key: Buffer): string {
  return keyIdOf(key).toString('hex');
}

export function isEncrypted(prefix: Buffer): boolean {
  return prefix.length >= MAGIC.length && prefix.subarray(0, MAGIC.length).equals(MAGIC);
}

/** A fresh data key and nonce prefix, wrapped by `key`: the header and what encrypts the segments. */
export function newObjectHeader(key: UserKey, random: RandomBytes = secureRandom, segmentSize = DEFAULT_SEGMENT_SIZE): { bytes: Buffer; header: ObjectHeader } {
  const log2Segment = Math.log2(segmentSize);
  if (!Number.isInteger(log2Segment) || log2Segment < MIN_LOG2_SEGMENT || log2Segment > MAX_LOG2_SEGMENT) {
    throw new RangeError(`segment size ${segmentSize} is not a power of two from 4 KiB to 16 MiB`);
  }
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h[OFF_VERSION] = FORMAT_VERSION;
  h[OFF_LOG2_SEGMENT] = log2Segment;
  const salt = random(SALT_SIZE);
  salt.copy(h, OFF_SALT);
  let kek: Buffer;
  if (key.kind === 'raw') {
    h[OFF_KDF] = KDF_RAW_KEY;
    kek = key.key;
  } else {
    h[OFF_KDF] = KDF_SCRYPT;
    h[OFF_LOG2_N] = SCRYPT_LOG2_N;
    h[OFF_R] = SCRYPT_R;
    h[OFF_P] = SCRYPT_P;
    kek = scryptKek(key.passphrase, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P);
  }
  const keyId = keyIdOf(kek);
  keyId.copy(h, OFF_KEY_ID);
  const noncePrefix = random(NONCE_PREFIX_SIZE);
  noncePrefix.copy(h, OFF_NONCE_PREFIX);
  const wrapNonce = random(12);
  wrapNonce.copy(h, OFF_WRAP_NONCE);
  const dataKey = random(32);
  const wrap = createCipheriv('aes-256-gcm', kek, wrapNonce);
  wrap.setAAD(h.subarray(0, OFF_WRAPPED_KEY));
  const wrapped = Buffer.concat([wrap.update(dataKey), wrap.final()]);
  wrapped.copy(h, OFF_WRAPPED_KEY);
  wrap.getAuthTag().copy(h, OFF_WRAP_TAG);
  return { bytes: h, header: { segmentSize, noncePrefix, dataKey, keyId: keyId.toString('hex'), key } };
}

/**
 * Reads and authenticates a header with the first of `keys` whose key ID matches and whose wrap
 * tag verifies. Throws FormatError saying what is wrong (unknown version, no key fits, ...).
 */
export function openObjectHeader(h: Buffer, keys: UserKey[]): ObjectHeader {
  if (h.length < HEADER_SIZE) throw new FormatError(`it ends within its ${HEADER_SIZE}-byte encryption header (${h.length} bytes)`);
  if (!isEncrypted(h)) throw new FormatError('it does not start with the encryption header');
  if (h[OFF_VERSION] !== FORMAT_VERSION) throw new FormatError(`its encryption format version ${h[OFF_VERSION]} is not one this plugin reads (1)`);
  const kdf = h[OFF_KDF]!;
  const log2Segment = h[OFF_LOG2_SEGMENT]!;
  if (log2Segment < MIN_LOG2_SEGMENT || log2Segment > MAX_LOG2_SEGMENT || h.readUInt16BE(OFF_RESERVED) !== 0 || h[OFF_RESERVED2] !== 0) {
    throw new FormatError('its encryption header is damaged (a field out of range)');
  }
  if (kdf !== KDF_RAW_KEY && kdf !== KDF_SCRYPT) throw new FormatError(`its encryption header names an unknown key derivation (${kdf})`);
  if (kdf === KDF_SCRYPT && (h[OFF_LOG2_N]! < 10 || h[OFF_LOG2_N]! > 20 || h[OFF_R]! < 1 || h[OFF_R]! > 32 || h[OFF_P]! < 1 || h[OFF_P]! > 16)) {
    throw new FormatError('its encryption header has scrypt parameters out of range');
  }
  const salt = h.subarray(OFF_SALT, OFF_SALT + SALT_SIZE);
  const keyId = h.subarray(OFF_KEY_ID, OFF_KEY_ID + KEY_ID_SIZE);
  const wanted = kdf === KDF_RAW_KEY ? 'raw' : 'passphrase';
  let idMatched = false;
  for (const key of keys) {
    if (key.kind !== wanted) continue;
    const kek = key.kind === 'raw' ? key.key : scryptKek(key.passphrase, salt, h[OFF_LOG2_N]!, h[OFF_R]!, h[OFF_P]!);
    if (!keyIdOf(kek).equals(keyId)) continue;
    idMatched = true;
    try {
      const unwrap = createDecipheriv('aes-256-gcm', kek, h.subarray(OFF_WRAP_NONCE, OFF_WRAP_NONCE + 12));
      unwrap.setAAD(h.subarray(0, OFF_WRAPPED_KEY));
      unwrap.setAuthTag(h.subarray(OFF_WRAP_TAG, OFF_WRAP_TAG + TAG_SIZE));
      const dataKey = Buffer.concat([unwrap.update(h.subarray(OFF_WRAPPED_KEY, OFF_WRAP_TAG)), unwrap.final()]);
      return {
        segmentSize: 2 ** log2Segment,
        noncePrefix: Buffer.from(h.subarray(OFF_NONCE_PREFIX, OFF_NONCE_PREFIX + NONCE_PREFIX_SIZE)),
        dataKey,
        keyId: keyId.toString('hex'),
        key,
      };
    } catch {
      // The key ID matched but the header was altered: try the other keys, then say so.
    }
  }
  if (idMatched) throw new FormatError('its encryption header failed authentication: the header was altered');
  const kind = kdf === KDF_RAW_KEY ? `a 256-bit key with key ID ${keyId.toString('hex')}` : 'a passphrase';
  const have = keys.length ? keys.map(k => k.source).join(', ') : 'none';
  throw new FormatError(`it was encrypted with ${kind} that none of the configured key files holds (${have}): wrong key file, or the header was altered`);
}

/** The 12-byte nonce of segment `index`. */
export function segmentNonce(prefix: Buffer, index: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0, 0, NONCE_PREFIX_SIZE);
  n.writeUInt32BE(index, NONCE_PREFIX_SIZE);
  n[11] = last ? 1 : 0;
  return n;
}

/** Ciphertext then tag of one segment. */
export function sealSegment(h: ObjectHeader, index: number, last: boolean, plain: Buffer): Buffer[] {
  const c = createCipheriv('aes-256-gcm', h.dataKey, segmentNonce(h.noncePrefix, index, last));
  const body = c.update(plain);
  c.final();
  return [body, c.getAuthTag()];
}

/** The plaintext of one segment (ciphertext + tag), or undefined if its tag does not verify. */
export function openSegment(h: ObjectHeader, index: number, last: boolean, sealed: Buffer): Buffer | undefined {
  if (sealed.length < TAG_SIZE || sealed.length > h.segmentSize + TAG_SIZE) return undefined;
  const d = createDecipheriv('aes-256-gcm', h.dataKey, segmentNonce(h.noncePrefix, index, last));
  d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  const plain = d.update(sealed.subarray(0, sealed.length - TAG_SIZE));
  try {
    d.final();
  } catch {
    return undefined;
  }
  return plain;
}

/** Object layout from its size: segments, plaintext size; undefined if no valid object has this size. */
export function layoutOf(objectSize: number, segmentSize: number): { segments: number; plainSize: number } | undefined {
  const body = objectSize - HEADER_SIZE;
  const stride = segmentSize + TAG_SIZE;
  if (body < TAG_SIZE) return undefined;
  const segments = Math.ceil(body / stride);
  const lastSealed = body - (segments - 1) * stride;
  if (lastSealed < TAG_SIZE || (segments > 1 && lastSealed === TAG_SIZE)) return undefined;
  return { segments, plainSize: body - segments * TAG_SIZE };
}

/** Encrypts a whole buffer (tests and small objects). */
export function encryptBuffer(plain: Buffer, key: UserKey, random: RandomBytes = secureRandom, segmentSize = DEFAULT_SEGMENT_SIZE): Buffer {
  const { bytes, header } = newObjectHeader(key, random, segmentSize);
  const out: Buffer[] = [bytes];
  const n = Math.max(1, Math.ceil(plain.length / segmentSize));
  for (let i = 0; i < n; i++) out.push(...sealSegment(header, i, i === n - 1, plain.subarray(i * segmentSize, (i + 1) * segmentSize)));
  return Buffer.concat(out);
}
