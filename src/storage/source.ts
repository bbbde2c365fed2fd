/**
 * Where an upload's bytes come from, read part by part into buffers the
 * caller supplies, with each part's CRC-32 computed as the bytes arrive
 * (while they are still in the CPU's cache).
 *
 * FdSource reads a file (a local file, or stdin redirected from one) straight
 * into the part buffer in large reads. PipeSource reads a pipe or socket
 * (stdin from gpbackup_helper or COPY ... PROGRAM) through the event loop, also
 * straight into the part buffer: no chunk is allocated per read, so there is
 * no garbage to collect and no copy.
 */
import { read } from 'node:fs';
import { Socket, type SocketConstructorOpts } from 'node:net';
import { crc32 } from './crc32.js';

export interface Part {
  data: Buffer;
  crc: number;
}

export interface PartSource {
  /**
   * Fills `into` exactly, unless the source ends first; returns the part filled and its CRC-32
   * (0 when `checksum` is false: a caller that uploads other bytes, as encryption does, has no use for it).
   */
  read(into: Buffer, checksum?: boolean): Promise<Part>;
  /** True once the source has no more bytes (reads ahead to know). */
  atEnd(): Promise<boolean>;
}

/** Rejects as soon as `signal` aborts, even if `p` never settles (a read from a pipe may wait forever). */
export function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      v => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      err => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Bytes read ahead to learn whether a source has ended. */
const LOOKAHEAD = 64 * 1024;

export class FdSource implements PartSource {
  private lookahead: Buffer | undefined;
  private ended = false;

  /** `onEnd` runs when the descriptor reports its end and may throw to refuse it. */
  constructor(
    private readonly fd: number,
    private readonly signal?: AbortSignal,
    private readonly onEnd?: () => void,
  ) {}

  /** One read (in the thread pool) into buf[offset..offset+length); 0 at the end. */
  private async readSome(buf: Buffer, offset: number, length: number): Promise<number> {
    const n = await abortable(
      new Promise<number>((resolve, reject) => read(this.fd, buf, offset, length, null, (err, got) => (err ? reject(err) : resolve(got)))),
      this.signal,
    );
    if (n === 0) {
      this.ended = true;
      this.onEnd?.();
    }
    return n;
  }

  async atEnd(): Promise<boolean> {
    if (this.lookahead?.length) return false;
    if (this.ended) return true;
    const buf = Buffer.allocUnsafe(LOOKAHEAD);
    const n = await this.readSome(buf, 0, LOOKAHEAD);
    this.lookahead = buf.subarray(0, n);
    return n === 0;
  }

  async read(into: Buffer, checksum = true): Promise<Part> {
    let filled = 0;
    let crc = 0;
    if (this.lookahead?.length) {
      const take = Math.min(this.lookahead.length, into.length);
      into.set(this.lookahead.subarray(0, take));
      if (checksum) crc = crc32(into.subarray(0, take));
      this.lookahead = this.lookahead.subarray(take);
      filled = take;
    }
    while (filled < into.length && !this.ended) {
      const n = await this.readSome(into, filled, into.length - filled);
      if (checksum) crc = crc32(into.subarray(filled, filled + n), crc);
      filled += n;
    }
    return { data: filled === into.length ? into : into.subarray(0, filled), crc };
  }
}

/** A pipe's capacity on Linux: no read returns more. */
const PIPE_READ = 64 * 1024;

interface Waiting {
  into: Buffer;
  filled: number;
  checksum: boolean;
  crc: number;
  resolve(part: Part): void;
  reject(err: Error): void;
}

export class PipeSource implements PartSource {
  private readonly socket: Socket;
  /** Where reads land while no part waits for bytes. */
  private readonly spare = Buffer.allocUnsafe(PIPE_READ);
  /** Bytes that arrived while no part waited for them. */
  private held: Buffer | undefined;
  private waiting: Waiting | undefined;
  private wakers: Array<() => void> = [];
  private ended = false;
  private failure: Error | undefined;

  /** `onEnd` runs when the writer closes its end and may throw to refuse it. */
  constructor(
    fd: number,
    signal?: AbortSignal,
    private readonly onEnd?: () => void,
  ) {
    // Each read lands in the buffer the generator returns: the waiting part's free space.
    // (Node's Socket takes `onread` as net.connect() does; its type declarations omit it.)
    const onread = { buffer: () => this.nextBuffer(), callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) };
    this.socket = new Socket({ fd, readable: true, writable: false, onread } as SocketConstructorOpts);
    this.socket.on('end', () => {
      this.ended = true;
      try {
        this.onEnd?.();
      } catch (err) {
        this.failure = err as Error;
      }
      this.wake();
    });
    this.socket.on('error', err => {
      this.failure ??= err;
      this.wake();
    });
    signal?.addEventListener(
      'abort',
      () => {
        this.failure ??= signal.reason as Error;
        this.socket.destroy();
        this.wake();
      },
      { once: true },
    );
  }

  private nextBuffer(): Uint8Array {
    const w = this.waiting;
    return w && !this.held && w.filled < w.into.length ? w.into.subarray(w.filled) : this.spare;
  }

  /** Returns false to stop reading until a part waits for bytes. */
  private onRead(n: number, buf: Uint8Array): boolean {
    const w = this.waiting;
    if (w && buf.buffer === w.into.buffer && buf.byteOffset === w.into.byteOffset + w.filled) {
      if (w.checksum) w.crc = crc32(w.into.subarray(w.filled, w.filled + n), w.crc);
      w.filled += n;
    } else {
      // In the spare buffer, which the next read reuses: keep a copy.
      const copy = Buffer.from(buf.subarray(0, n));
      this.held = this.held ? Buffer.concat([this.held, copy]) : copy;
      this.drainHeld();
    }
    this.wake();
    return this.waiting !== undefined && !this.held;
  }

  /** Moves held bytes into the waiting part. */
  private drainHeld(): void {
    const w = this.waiting;
    if (!w || !this.held) return;
    const take = Math.min(this.held.length, w.into.length - w.filled);
    w.into.set(this.held.subarray(0, take), w.filled);
    if (w.checksum) w.crc = crc32(w.into.subarray(w.filled, w.filled + take), w.crc);
    w.filled += take;
    this.held = take < this.held.length ? this.held.subarray(take) : undefined;
  }

  /** Settles the waiting part if it is full, the pipe ended, or it failed; wakes atEnd(). */
  private wake(): void {
    const w = this.waiting;
    if (w && this.failure) {
      this.waiting = undefined;
      w.reject(this.failure);
    } else if (w && (w.filled === w.into.length || (this.ended && !this.held))) {
      this.waiting = undefined;
      w.resolve({ data: w.filled === w.into.length ? w.into : w.into.subarray(0, w.filled), crc: w.crc });
    }
    for (const wakeUp of this.wakers.splice(0)) wakeUp();
  }

  read(into: Buffer, checksum = true): Promise<Part> {
    return new Promise<Part>((resolve, reject) => {
      this.waiting = { into, filled: 0, checksum, crc: 0, resolve, reject };
      this.drainHeld();
      this.wake();
      if (this.waiting) this.socket.resume();
    });
  }

  async atEnd(): Promise<boolean> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.held?.length) return false;
      if (this.ended) return true;
      await new Promise<void>(resolve => {
        this.wakers.push(resolve);
        this.socket.resume();
      });
    }
  }
}

/** Bytes already read from `rest` (`head`), then the rest of it: a source read ahead of its reader. */
export class PrefixedSource implements PartSource {
  constructor(
    private head: Buffer,
    private readonly rest: PartSource,
  ) {}

  async atEnd(): Promise<boolean> {
    return this.head.length === 0 && this.rest.atEnd();
  }

  async read(into: Buffer, checksum = true): Promise<Part> {
    const take = Math.min(this.head.length, into.length);
    into.set(this.head.subarray(0, take));
    this.head = this.head.subarray(take);
    let filled = take;
    if (filled < into.length) filled += (await this.rest.read(into.subarray(filled), false)).data.length;
    const data = filled === into.length ? into : into.subarray(0, filled);
    return { data, crc: checksum ? crc32(data) : 0 };
  }
}
