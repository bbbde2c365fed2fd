/**
 * Ranged GETs over plain HTTP/1.1 on sockets of the plugin's own, so that a
 * body is read straight into the piece buffer that will hold it: each socket
 * read lands where the bytes belong (net.Socket's `onread` with a buffer
 * generator). Node's HTTP client allocates a 64 KiB chunk per read instead,
 * which the download then copies and the garbage collector finds late: that
 * cost more CPU than the rest of a restore and held tens of MiB of garbage
 * (docs/performance.md). Used for http and https endpoints without a proxy;
 * everything else goes through node:http(s) (transport.ts).
 *
 * Requests are never pipelined: a socket carries one exchange at a time, and
 * goes back to the idle list only once its answer was read to the end.
 */
import { connect, isIP, type Socket } from 'node:net';
import { connect as connectTls, type SecureContext } from 'node:tls';
import { crc32 } from '../crc32.js';
import type { Target } from './endpoint.js';
import { connectTimedOut, describeNetworkError, NetworkError, requestTimedOut } from './network.js';

/** Where reads land while no body buffer is waiting (the status line and headers, stray bytes). */
const SCRATCH = 64 * 1024;
/** The status line and headers may not be longer. */
const MAX_HEAD = 64 * 1024;
/** An idle socket is closed after this long: servers close theirs too, often after 5 s. */
const IDLE_MS = 4_000;

/** What a connection does with the bytes it reads: one of these at a time. */
interface Reader {
  buffer(): Uint8Array;
  /** Returns false to stop reading until asked again. */
  onData(n: number, buf: Uint8Array): boolean;
  onClose(err: Error): void;
}

class Connection {
  readonly socket: Socket;
  readonly scratch = Buffer.allocUnsafe(SCRATCH);
  reader: Reader | undefined;
  closed: Error | undefined;
  /** What the socket's inactivity timeout does now (it differs while idle and in an exchange). */
  onTimeout: () => void = () => this.socket.destroy();

  /** The endpoint's host[:port], for messages. */
  readonly host: string;

  constructor(
    readonly key: string,
    target: Target,
    connectTimeoutMs: number,
    trust: (() => SecureContext) | undefined,
    onIdleClose: (c: Connection) => void,
  ) {
    this.host = target.host;
    const onread = { buffer: () => this.reader?.buffer() ?? this.scratch, callback: (n: number, buf: Uint8Array) => this.onData(n, buf) };
    const address = { host: target.hostname, port: target.port, onread };
    // TLS decrypts into the same buffers (tls.connect takes onread too), verified as transport.ts verifies.
    this.socket = target.https
      ? connectTls({ ...address, servername: isIP(target.hostname) ? undefined : target.hostname, secureContext: trust?.(), rejectUnauthorized: true })
      : connect(address);
    this.socket.setNoDelay(true);
    this.socket.on('timeout', () => this.onTimeout());
    const timer = setTimeout(
      () => this.socket.destroy(connectTimedOut(target.host, connectTimeoutMs)),
      connectTimeoutMs,
    );
    this.socket.once(target.https ? 'secureConnect' : 'connect', () => clearTimeout(timer));
    const close = (err: Error) => {
      clearTimeout(timer);
      this.closed ??= err;
      const reader = this.reader;
      this.reader = undefined;
      if (reader) reader.onClose(this.closed);
      else onIdleClose(this);
    };
    this.socket.on('error', (err: NodeJS.ErrnoException) => close(describeNetworkError(err, target)));
    this.socket.on('end', () => close(new NetworkError(`${target.host} closed the connection`, 'ECONNRESET')));
    this.socket.on('close', () => close(new NetworkError(`the connection to ${target.host} was closed`, 'ECONNRESET')));
  }

  private onData(n: number, buf: Uint8Array): boolean {
    if (this.reader) return this.reader.onData(n, buf);
    // Bytes nobody asked for: the exchange on this socket is out of step.
    this.socket.destroy(new NetworkError('the server sent bytes outside an answer', 'ECONNRESET'));
    return false;
  }

  /** Reads again after a reader said stop. */
  resume(): void {
    this.socket.resume();
  }
}

/** An answer whose status line and headers have arrived; its body is read on demand. */
export class DirectResponse implements Reader {
  statusCode = 0;
  statusMessage = '';
  readonly headers: Record<string, string> = {};
  /** Body bytes still to come; undefined when the answer did not say (it is then read until close). */
  private remaining: number | undefined;
  private head: Buffer[] = [];
  private headBytes = 0;
  /** Body bytes that arrived with the headers (or in the scratch buffer). */
  private early: Buffer | undefined;
  private dest: { into: Buffer; pos: number; end: number; crc: number } | undefined;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private headersReady: { resolve(): void; reject(e: Error): void } | undefined;
  private keepAlive = true;
  private finished = false;
  private unlisten: (() => void) | undefined;

  constructor(
    private readonly conn: Connection,
    private readonly release: (c: Connection) => void,
    private readonly timeoutMs: number,
  ) {}

  /** Sends the request and resolves once the answer's headers are in. */
  start(request: string, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.headersReady = { resolve, reject };
      const socket = this.conn.socket;
      this.conn.reader = this;
      this.conn.onTimeout = () => socket.destroy(requestTimedOut(this.conn.host, this.timeoutMs));
      socket.setTimeout(this.timeoutMs);
      if (signal) {
        const onAbort = () => socket.destroy(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
        this.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      if (this.conn.closed) return this.onClose(this.conn.closed);
      socket.write(request, 'latin1');
      this.conn.resume();
    });
  }

  buffer(): Uint8Array {
    const d = this.dest;
    if (d && !this.early && d.pos < d.end) return d.into.subarray(d.pos, d.end);
    return this.conn.scratch;
  }

  onData(n: number, buf: Uint8Array): boolean {
    const d = this.dest;
    if (d && buf.buffer === d.into.buffer && buf.byteOffset === d.into.byteOffset + d.pos) {
      d.crc = crc32(d.into.subarray(d.pos, d.pos + n), d.crc);
      d.pos += n;
      this.consumed(n);
    } else if (this.headersReady) {
      this.takeHead(Buffer.from(buf.subarray(0, n)));
    } else {
      const copy = Buffer.from(buf.subarray(0, n));
      this.early = this.early ? Buffer.concat([this.early, copy]) : copy;
      this.drainEarly();
    }
    this.wake?.();
    // Read on while the headers are incomplete or a buffer waits for body bytes.
    return this.headersReady !== undefined || (this.dest !== undefined && this.dest.pos < this.dest.end && !this.early);
  }

  onClose(err: Error): void {
    this.unlisten?.();
    if (this.remaining === undefined && !this.headersReady && !this.failure) {
      // A body without a length ends with the connection.
      this.finished = true;
      this.keepAlive = false;
    } else if (!this.finished) {
      this.failure ??= err;
    }
    const ready = this.headersReady;
    this.headersReady = undefined;
    ready?.reject(err);
    this.wake?.();
  }

  private takeHead(chunk: Buffer): void {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const all = Buffer.concat(this.head);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headBytes > MAX_HEAD) this.conn.socket.destroy(new NetworkError('the answer\'s headers are too long', 'EPROTO'));
      return;
    }
    this.head = [];
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
    if (!status) {
      this.conn.socket.destroy(new NetworkError(`not an HTTP answer: ${JSON.stringify((lines[0] ?? '').slice(0, 40))}`, 'EPROTO'));
      return;
    }
    this.statusCode = Number(status[1]);
    this.statusMessage = status[2] ?? '';
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) this.headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = this.headers['content-length'];
    this.remaining = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
    if (this.headers['transfer-encoding'] || this.remaining === undefined) this.keepAlive = false;
    if (this.headers.connection?.toLowerCase() === 'close') this.keepAlive = false;
    if (this.headers['transfer-encoding']) this.remaining = 0; // chunked bodies are not read here: dropped with the socket
    const rest = all.subarray(end + 4);
    if (rest.length) this.early = Buffer.from(rest);
    this.clampEarly();
    const ready = this.headersReady!;
    this.headersReady = undefined;
    if (this.remaining === 0) this.done();
    ready.resolve();
  }

  /** Bytes beyond the announced body are a protocol error. */
  private clampEarly(): void {
    if (this.early && this.remaining !== undefined && this.early.length > this.remaining) {
      this.conn.socket.destroy(new NetworkError('the server sent more bytes than its answer announced', 'EPROTO'));
    }
  }

  private consumed(n: number): void {
    if (this.remaining === undefined) return;
    this.remaining -= n;
    if (this.remaining === 0) this.done();
  }

  private drainEarly(): void {
    const d = this.dest;
    if (!d || !this.early) return;
    const take = Math.min(this.early.length, d.end - d.pos);
    d.into.set(this.early.subarray(0, take), d.pos);
    d.crc = crc32(d.into.subarray(d.pos, d.pos + take), d.crc);
    d.pos += take;
    this.early = take < this.early.length ? this.early.subarray(take) : undefined;
    this.consumed(take);
  }

  /** The whole body has arrived: the socket is free for the next request, or closed. */
  private done(): void {
    if (this.finished) return;
    this.finished = true;
    this.unlisten?.();
    const socket = this.conn.socket;
    if (this.keepAlive && !this.early && !this.conn.closed) {
      this.conn.reader = undefined;
      this.conn.onTimeout = () => socket.destroy();
      socket.setTimeout(IDLE_MS);
      this.release(this.conn);
      // Read while idle, to notice the server closing the socket; not before the read that ended
      // the body has returned (it stops reading when its callback says so).
      setImmediate(() => this.conn.reader === undefined && this.conn.resume());
    } else {
      this.conn.reader = undefined;
      socket.destroy();
    }
  }

  /**
   * Reads `length` body bytes into `into` from `offset`, with their CRC-32 continued from `crc`.
   * Returns how far it got; `error` says why it stopped short.
   */
  async fill(into: Buffer, offset: number, length: number, crc: number): Promise<{ filled: number; crc: number; error?: Error }> {
    const d = { into, pos: offset, end: offset + length, crc };
    this.dest = d;
    try {
      this.drainEarly();
      while (d.pos < d.end && !this.failure && !(this.finished && !this.early)) {
        await new Promise<void>(resolve => {
          this.wake = resolve;
          if (!this.finished) this.conn.resume();
        });
        this.wake = undefined;
      }
    } finally {
      this.dest = undefined;
    }
    const error = d.pos < d.end ? (this.failure ?? new NetworkError('the connection ended early', 'ECONNRESET')) : undefined;
    return { filled: d.pos, crc: d.crc, error };
  }

  /** The body in chunks (error answers, and readers that want a stream). */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        // `remaining` counts the early bytes too: they are body bytes not yet handed out.
        const size = this.remaining === undefined ? (this.early?.length ?? SCRATCH) : Math.min(this.remaining, 1 << 20);
        if (size === 0 || (this.finished && !this.early)) return;
        const buf = Buffer.allocUnsafe(size);
        const got = await this.fill(buf, 0, buf.length, 0);
        if (got.filled > 0) yield buf.subarray(0, got.filled);
        if (got.error && !(this.finished && this.remaining === undefined)) throw got.error;
      }
    } finally {
      if (!this.finished) this.destroy();
    }
  }

  /** Drops the answer (and its socket) without reading the rest. */
  destroy(): void {
    if (this.finished) return;
    this.finished = true;
    this.unlisten?.();
    this.failure ??= new NetworkError('the answer was dropped', 'ECONNRESET');
    this.conn.reader = undefined;
    this.conn.socket.destroy();
  }

  /** Reads and discards the rest of the body, so the socket can serve again. */
  resume(): void {
    if (this.finished) return;
    void (async () => {
      for await (const _ of this) {
        // discarded
      }
    })().catch(() => {});
  }
}

export class DirectGetter {
  private readonly idle = new Map<string, Connection[]>();
  private readonly all = new Set<Connection>();

  /** `trust`: the TLS context https endpoints are verified with (trust.ts; Node's own roots when undefined). */
  constructor(
    private readonly connectTimeoutMs: number,
    private readonly requestTimeoutMs: number,
    private readonly trust?: () => SecureContext,
  ) {}

  /** Sends a GET (head of the request already signed) and resolves with the answer's headers in. */
  async get(target: Target, pathAndQuery: string, headers: Record<string, string>, signal?: AbortSignal): Promise<DirectResponse> {
    signal?.throwIfAborted();
    const key = `${target.hostname}:${target.port}`;
    const conn = this.idle.get(key)?.pop() ?? this.open(key, target);
    let request = `GET ${pathAndQuery} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(headers)) request += `${name}: ${value}\r\n`;
    request += '\r\n';
    const res = new DirectResponse(conn, c => this.park(c), this.requestTimeoutMs);
    try {
      await res.start(request, signal);
    } catch (err) {
      conn.socket.destroy();
      throw signal?.aborted ? signal.reason : err;
    }
    return res;
  }

  private open(key: string, target: Target): Connection {
    const conn = new Connection(key, target, this.connectTimeoutMs, this.trust, c => this.forget(c));
    this.all.add(conn);
    conn.socket.once('close', () => this.forget(conn));
    return conn;
  }

  private park(conn: Connection): void {
    const list = this.idle.get(conn.key) ?? [];
    list.push(conn);
    this.idle.set(conn.key, list);
  }

  private forget(conn: Connection): void {
    this.all.delete(conn);
    const list = this.idle.get(conn.key);
    const i = list?.indexOf(conn) ?? -1;
    if (i >= 0) list!.splice(i, 1);
  }

  destroy(): void {
    for (const conn of this.all) conn.socket.destroy();
    this.all.clear();
    this.idle.clear();
  }
}
