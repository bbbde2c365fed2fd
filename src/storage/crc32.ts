/**
 * CRC-32 (IEEE 802.3, as zlib and S3's x-amz-checksum-crc32 compute it) of
 * whole objects: each upload part's CRC is computed once and the object's is
 * combined from them, so every byte is hashed once.
 */
type Crc32 = (data: Uint8Array | string, value?: number) => number;

/** Bun's own hasher, where the runtime is Bun: same results and speed (about 0.2 CPU-s/GiB) as
 * node:zlib's, without loading zlib (measured: 4.3 MiB more peak RSS per process, docs/performance.md). */
const bunCrc32 = (globalThis as { Bun?: { hash: { crc32: Crc32 } } }).Bun?.hash.crc32;

/** CRC-32 of `data`, continuing from `value` (the CRC of what came before it). */
export const crc32: Crc32 = bunCrc32 ?? process.getBuiltinModule('node:zlib').crc32;

/** The reflected CRC-32 polynomial. */
const POLY = 0xedb88320;

/** a(x) * b(x) modulo the CRC polynomial (bit-reflected representation). */
function multiplyModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) mod p for k = 0..31. */
const X_POW_2K: number[] = [];
let x = 0x40000000; // x^1
for (let k = 0; k < 32; k++) {
  X_POW_2K.push(x);
  x = multiplyModP(x, x);
}

/** x^(8 * bytes) mod p: the effect of `bytes` zero bytes. */
function xPowBytes(bytes: number): number {
  let p = 0x80000000; // x^0
  let k = 3; // 8 = 2^3
  for (let n = bytes; n > 0; n = Math.floor(n / 2), k++) {
    if (n % 2 === 1) p = multiplyModP(X_POW_2K[k % 32]!, p);
  }
  return p;
}

/** CRC of A followed by B, from crc(A), crc(B) and B's length. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multiplyModP(xPowBytes(lengthB), crcA) ^ crcB) >>> 0;
}

/** S3's form: base64 of the four bytes, big-endian. */
export function crc32ToBase64(crc: number): string {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(crc >>> 0);
  return b.toString('base64');
}

export function crc32FromBase64(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const b = Buffer.from(text.trim(), 'base64');
  return b.length === 4 ? b.readUInt32BE(0) : undefined;
}

/** `0x1a2b3c4d`, for messages. */
export function crc32Hex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}
