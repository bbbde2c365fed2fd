/**
 * Under Bun, a young-generation collection; elsewhere nothing. Buffers that Bun allocates per
 * call and that the code drops at once (every socket read handed to JavaScript, up to 512 KiB;
 * every AES-GCM segment's output, 64 KiB) are freed, and their pages handed back to the OS, only
 * when a collection finds them: until then each new one lands on fresh pages, which the kernel
 * faults in and zeroes. Collected after every part, the next ones reuse those pages
 * (docs/performance.md: a fifth less CPU for a 256 MiB restore into a pipe, and less peak RSS).
 */
const bun = (globalThis as { Bun?: { gc(full: boolean): void } }).Bun;

export const collectYoungGarbage: () => void = bun ? () => bun.gc(false) : () => {};
