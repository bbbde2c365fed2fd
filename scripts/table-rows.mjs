// Text rows as COPY writes them, from a fixed seed (xorshift32: fast, and the same on every run),
// for the deduplication measurements (bench-dedup.mjs, dedup-chunk-sizes.ts).

/** A function of the row number giving the next row of the seed's sequence, some 70 bytes. */
export function rowWriter(seed) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const hex = () => next().toString(16).padStart(8, '0');
  return i => `${i}\t${hex()}${hex()}\tcustomer ${hex()}\t${next() % 1000000}.${next() % 100}\t2024-07-08\n`;
}

/** Rows changed by the "1% in 5 places" streams: 5 runs of 0.2% of `count` rows, spread over it. */
export function changedRuns(count) {
  return [0.1, 0.3, 0.5, 0.7, 0.9].map(f => [Math.round(count * f), Math.round(count * (f + 0.002))]);
}
