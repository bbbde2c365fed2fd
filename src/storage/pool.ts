/**
 * Part-sized buffers used again and again. A transfer of any length then
 * holds a fixed set of buffers (memory bounded by part size x concurrency)
 * instead of leaving a trail of 16 MiB garbage for the collector to find late,
 * and the kernel is not asked for fresh pages for every part.
 */
export class BufferPool {
  private free: Buffer[] = [];

  constructor(private size: number) {}

  /** The size of the buffers it holds now. */
  get bufferSize(): number {
    return this.size;
  }

  /** A buffer of exactly `size` bytes, content undefined. A new size retires the old buffers. */
  take(size: number): Buffer {
    if (size !== this.size) {
      this.free = [];
      this.size = size;
    }
    return this.free.pop() ?? Buffer.allocUnsafeSlow(size);
  }

  /** Returns a buffer from take() (or a view of one starting at its first byte). */
  give(buf: Buffer): void {
    const whole = buf.length === this.size ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.buffer.byteLength - buf.byteOffset);
    if (whole.byteOffset === 0 && whole.length === this.size) this.free.push(whole);
  }
}
