/**
 * Where downloaded bytes go, in order, with backpressure. A reader that has
 * gone away (EPIPE) fails the next write at once.
 */
import { write } from 'node:fs';
import type { Writable } from 'node:stream';

export interface Sink {
  write(buf: Buffer): Promise<void>;
}

function writeError(name: string, err: NodeJS.ErrnoException): Error {
  const why = err.code === 'EPIPE' ? 'the reader closed the pipe' : err.message;
  return new Error(`writing to ${name}: ${why}`);
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
