// Deterministic pseudo-random bytes (xorshift32), different for every seed, so failures
// reproduce and a mix-up of two streams is caught. Plain JavaScript: the tests and
// scripts/demo.mjs (which runs without tsx) share it.

/** `size` bytes from `seed`. */
export function patternBytes(size, seed = 1) {
  const buf = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  for (; i < size; i++) buf[i] = (x = (x * 1103515245 + 12345) >>> 0) & 0xff;
  return buf;
}
