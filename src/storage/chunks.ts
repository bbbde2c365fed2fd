/** Cuts a stream of arbitrary chunks into buffers of the sizes asked for. */
export class ChunkReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private pending: Uint8Array | undefined;
  private ended = false;

  constructor(source: AsyncIterable<Uint8Array>, private readonly signal?: AbortSignal) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** True once the source has no more bytes (pulls one chunk ahead to know). */
  async atEnd(): Promise<boolean> {
    while (!this.pending?.length) {
      if (this.ended) return true;
      const r = await this.next();
      if (r.done) this.ended = true;
      else this.pending = r.value;
    }
    return false;
  }

  /** Up to `size` bytes: exactly `size` unless the source ends first. */
  async read(size: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size && !(await this.atEnd())) {
      const chunk = this.pending!;
      const take = Math.min(chunk.length, size - filled);
      buf.set(take === chunk.length ? chunk : chunk.subarray(0, take), filled);
      this.pending = take === chunk.length ? undefined : chunk.subarray(take);
      filled += take;
    }
    return filled === size ? buf : buf.subarray(0, filled);
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    const signal = this.signal;
    if (!signal) return this.it.next();
    signal.throwIfAborted();
    // A read from a pipe may wait forever: an abort must not.
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.it.next().then(
        r => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        err => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }
}
