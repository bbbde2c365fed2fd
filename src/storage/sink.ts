/**
 * Where downloaded bytes go, in order, with backpressure. A reader that has
 * gone away (EPIPE) fails the next write at once.
 */
import { write, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';

export interface Sink {
  write(buf: Buffer): Promise<void>;
}

/** Keeps what it is given, each piece copied (the writer may reuse its buffer once write() returns). */
export class MemorySink implements Sink {
  private readonly pieces: Buffer[] = [];

  async write(buf: Buffer): Promise<void> {
    this.pieces.push(Buffer.from(buf));
  }

  bytes(): Buffer {
    return Buffer.concat(this.pieces);
  }
}

/**
 * The reader of `name` closed it before the end (EPIPE): not a download's failure. gpbackup_helper
 * does this on purpose in a filtered restore once it has its tables; the command still fails,
 * since the stream was not delivered whole.
 */
export class ReaderClosedError extends Error {
  constructor(readonly sinkName: string) {
    super(`the reader of ${sinkName} closed it before the end of the stream`);
    this.name = 'ReaderClosedError';
  }
}

function writeError(name: string, err: NodeJS.ErrnoException): Error {
  if (err.code === 'EPIPE') return new ReaderClosedError(name);
  return new Error(`writing to ${name}: ${err.message}`);
}

/**
 * A local file, written through the thread pool so that the downloads in
 * flight keep going while a write waits on the disk.
 */
export class FileSink implements Sink {
  constructor(private readonly fd: number, private readonly name: string) {}

  async write(buf: Buffer): Promise<void> {
    let offset = 0;
    while (offset < buf.length) {
      offset += await new Promise<number>((resolve, reject) =>
        write(this.fd, buf, offset, buf.length - offset, null, (err, n) => (err ? reject(writeError(this.name, err)) : resolve(n))),
      );
    }
  }
}

/** The most DescriptorSink writes at once: a pipe holds at least 16 KiB before it blocks. */
const SMALL_WRITE = 16 * 1024;

/**
 * stdout (fd 1) written directly, through the thread pool, as FileSink does: no copy into a stream's
 * queue, and process.stdout is never created (under Bun it costs about 3 MiB of peak RSS, and its
 * pipe writes were the slowest step of a restore into a pipe: docs/performance.md). A descriptor
 * the caller set non-blocking answers EAGAIN when its pipe is full: from then on the bytes go
 * through `fallback()` (process.stdout), which waits for the pipe through the event loop. An
 * interrupt does not wait for a reader that has stopped reading (the process is exiting).
 * A small first write, which an empty pipe takes whole, is made at once instead: a small restore
 * then never starts the thread pool (3 MiB of peak RSS under Bun).
 */
export class DescriptorSink implements Sink {
  private stream: StreamSink | undefined;
  private wroteAny = false;

  constructor(
    private readonly fd: number,
    private readonly name: string,
    private readonly fallback: () => Writable,
    private readonly signal?: AbortSignal,
  ) {}

  async write(buf: Buffer): Promise<void> {
    let offset = this.wroteAny ? 0 : this.writeFirstAtOnce(buf);
    this.wroteAny = true;
    while (offset < buf.length) {
      if (this.stream) return this.stream.write(offset === 0 ? buf : buf.subarray(offset));
      this.signal?.throwIfAborted();
      const n = await this.writeSome(buf, offset);
      if (n === undefined) this.stream = new StreamSink(this.fallback(), this.name, this.signal);
      else offset += n;
    }
  }

  /** Bytes of `buf` written by one write(2) now, if it is small enough not to wait on an empty pipe. */
  private writeFirstAtOnce(buf: Buffer): number {
    if (buf.length > SMALL_WRITE) return 0;
    this.signal?.throwIfAborted();
    try {
      return writeSync(this.fd, buf);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
      throw writeError(this.name, err as NodeJS.ErrnoException);
    }
  }

  /** One write(2) of buf[offset..]; undefined when the descriptor would block. */
  private writeSome(buf: Buffer, offset: number): Promise<number | undefined> {
    const signal = this.signal;
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      write(this.fd, buf, offset, buf.length - offset, null, (err, n) => {
        signal?.removeEventListener('abort', onAbort);
        if (err?.code === 'EAGAIN') resolve(undefined);
        else if (err) reject(writeError(this.name, err));
        else resolve(n);
      });
    });
  }

  /** Resolves once everything written has been handed to the OS (the process may exit right after). */
  async flush(): Promise<void> {
    await this.stream?.flush();
  }
}

/**
 * A stream such as process.stdout. A pipe to stdout may be non-blocking
 * (EAGAIN on a raw write); the stream waits for it through the event loop.
 */
export class StreamSink implements Sink {
  private failure: Error | undefined;

  constructor(
    private readonly stream: Writable,
    private readonly name: string,
    private readonly signal?: AbortSignal,
  ) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      this.failure ??= writeError(name, err);
    });
  }

  /**
   * Resolves once the stream has handed `buf` to the OS: the caller may then reuse it. An
   * interrupt does not wait for a reader that has stopped reading (the process is exiting).
   */
  async write(buf: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    const signal = this.signal;
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.stream.write(buf, err => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(this.failure ?? writeError(this.name, err));
        else resolve();
      });
    });
  }

  /** Resolves once everything written has been handed to the OS (the process may exit right after). */
  async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve, reject) =>
      this.stream.write(Buffer.alloc(0), err => (err ? reject(writeError(this.name, err)) : resolve())),
    );
  }
}
