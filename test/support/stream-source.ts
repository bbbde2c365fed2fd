/**
 * A PartSource over any async iterable of chunks, for unit tests: chunks of
 * any size and timing, a source that fails or stalls, without a descriptor.
 */
import { crc32 } from '../../src/storage/crc32.js';
import { abortable, type Part, type PartSource } from '../../src/storage/source.js';

export class StreamSource implements PartSource {
  private readonly it: AsyncIterator<Uint8Array>;
  private pending: Uint8Array | undefined;
  private ended = false;

  constructor(
    source: AsyncIterable<Uint8Array>,
    private readonly signal?: AbortSignal,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  async atEnd(): Promise<boolean> {
    while (!this.pending?.length) {
      if (this.ended) return true;
      const r = await abortable(this.it.next(), this.signal);
      if (r.done) this.ended = true;
      else this.pending = r.value;
    }
    return false;
  }

  async read(into: Buffer): Promise<Part> {
    let filled = 0;
    let crc = 0;
    while (filled < into.length && !(await this.atEnd())) {
      const chunk = this.pending!;
      const take = Math.min(chunk.length, into.length - filled);
      const piece = take === chunk.length ? chunk : chunk.subarray(0, take);
      into.set(piece, filled);
      crc = crc32(piece, crc);
      this.pending = take === chunk.length ? undefined : chunk.subarray(take);
      filled += take;
    }
    return { data: filled === into.length ? into : into.subarray(0, filled), crc };
  }
}
