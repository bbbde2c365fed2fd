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
 * Strict: this reader takes only answers it can read exactly, an HTTP/1.1
 * 200 or 206 whose body is framed by one numeric Content-Length (agreeing with
 * its Content-Range), with no Transfer-Encoding and no Content-Encoding. It
 * skips 1xx interim answers, delivers no byte past Content-Length, and keeps
 * a socket only when the answer allows it. Any other final answer (every error
 * answer among them) is refused before a byte of its body is taken: the bytes
 * received from its status line on, and the rest of the socket, are handed to
 * node:http's own client parser (DirectFallback.stream, read through
 * `http.request({ createConnection })` in transport.ts), which reads every
 * framing HTTP allows and keeps error codes and messages intact. Handing the
 * bytes over, rather than sending the request again, reads the very answer the
 * server gave, costs no second request, and keeps max_retries the bound on
 * attempts; a runtime whose node:http ignores createConnection (Bun did until
 * 2026) connects by host and port and sends the request again instead.
 *
 * Requests are never pipelined: a socket carries one exchange at a time, and
 * goes back to the idle list only once its answer was read to the end.
 */
import { connect, isIP, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as connectTls, type SecureContext } from 'node:tls';
import { crc32 } from '../crc32.js';
import type { Target } from './endpoint.js';
import { LowSpeedWatch, lowSpeedError, type LowSpeedLimit } from './lowspeed.js';
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
  /** The server ended its side (EOF), as opposed to a reset or an error. */
  peerEnded = false;
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
    this.socket.on('end', () => {
      this.peerEnded = true;
      close(new NetworkError(`${target.host} closed the connection`, 'ECONNRESET'));
    });
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

/**
 * The answer was not one the direct reader reads exactly (`reason` says why). `stream` holds it
 * from its status line on, then the rest of the connection, for node:http to read: a socket-like
 * stream whose writes (node:http's copy of the request, already sent) are dropped.
 */
export class DirectFallback extends Error {
  constructor(
    readonly reason: string,
    /** The final answer's status. */
    readonly status: number,
    readonly stream: Duplex,
  ) {
    super(`the direct GET path does not read this answer: ${reason}`);
    this.name = 'DirectFallback';
  }
}

/**
 * Hands a connection's bytes to a stream node:http reads, as a socket would give them, under the
 * same low-speed limit as an answer the direct reader reads itself (request_timeout stays the
 * connection's, set when the request was sent).
 */
class Forwarder implements Reader {
  readonly stream: Duplex;
  private forwarded = 0;
  private readonly watch: LowSpeedWatch;

  constructor(
    private readonly conn: Connection,
    received: Buffer,
    lowSpeed: LowSpeedLimit,
  ) {
    this.stream = new Duplex({
      read: () => conn.resume(),
      write: (_chunk, _encoding, callback) => callback(),
      destroy: (err, callback) => {
        this.watch.stop();
        if (conn.reader === this) conn.reader = undefined;
        conn.socket.destroy();
        callback(err);
      },
    });
    // node:http listens for the errors it reads; this one keeps an unread stream from crashing the process.
    this.stream.on('error', () => {});
    // While node:http has not taken what it was given, the slowness is ours, not the server's.
    this.watch = new LowSpeedWatch(
      lowSpeed,
      () => this.forwarded,
      () => conn.socket.destroy(lowSpeedError(conn.host, lowSpeed)),
      () => this.stream.readableLength > 0,
    );
    this.watch.start();
    this.stream.push(received);
  }

  buffer(): Uint8Array {
    return this.conn.scratch;
  }

  onData(n: number, buf: Uint8Array): boolean {
    this.forwarded += n;
    // Stop reading while node:http has not taken what it was given (read() resumes).
    return this.stream.push(Buffer.from(buf.subarray(0, n)));
  }

  onClose(err: Error): void {
    this.watch.stop();
    // The server's EOF is the end of the stream (an HTTP/1.0 body ends so); anything else fails it.
    if (this.conn.peerEnded) this.stream.push(null);
    else this.stream.destroy(err);
  }
}

/** A header field as RFC 9110 allows it: a token, a colon, a value (no obs-fold, no space before the colon). */
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: (.*))?$/;
/** Headers whose second copy would make the framing ambiguous. */
const SINGLE = new Set(['content-length', 'content-range', 'transfer-encoding', 'content-encoding']);

interface Head {
  statusCode: number;
  statusMessage: string;
  headers: Record<string, string>;
  /** Why this reader does not take the answer, if it does not. */
  refuse?: string;
  contentLength: number;
  keepAlive: boolean;
}

/** Parses a status line and headers (without the blank line); throws a NetworkError if it is not HTTP at all. */
function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const status = STATUS_LINE.exec(lines[0] ?? '');
  if (!status) throw new NetworkError(`not an HTTP answer: ${JSON.stringify((lines[0] ?? '').slice(0, 40))}`, 'EPROTO');
  const head: Head = {
    statusCode: Number(status[3]),
    statusMessage: status[4] ?? '',
    headers: {},
    contentLength: 0,
    keepAlive: true,
  };
  const refuse = (why: string) => (head.refuse ??= why);
  if (status[1] !== '1' || status[2] !== '1') refuse(`HTTP/${status[1]}.${status[2]}`);
  for (const line of lines.slice(1)) {
    const field = HEADER_LINE.exec(line);
    if (!field) {
      refuse(`a header line ${JSON.stringify(line.slice(0, 40))}`);
      continue;
    }
    const name = field[1]!.toLowerCase();
    const value = field[2]!;
    if (head.headers[name] !== undefined) {
      if (SINGLE.has(name)) refuse(`${name} twice`);
      head.headers[name] += `, ${value}`;
    } else {
      head.headers[name] = value;
    }
  }
  const h = head.headers;
  if (h.connection?.split(',').some(t => t.trim().toLowerCase() === 'close')) head.keepAlive = false;
  if (head.statusCode !== 200 && head.statusCode !== 206) refuse(`status ${head.statusCode}`);
  if (h['transfer-encoding'] !== undefined) refuse(`Transfer-Encoding: ${h['transfer-encoding']}`);
  if (h['content-encoding'] !== undefined) refuse(`Content-Encoding: ${h['content-encoding']}`);
  const length = h['content-length'];
  if (length === undefined || !/^\d{1,15}$/.test(length)) refuse(`Content-Length: ${length ?? 'none'}`);
  else head.contentLength = Number(length);
  const range = h['content-range'];
  if (range !== undefined) {
    const r = /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)$/.exec(range);
    if (!r || Number(r[2]) - Number(r[1]) + 1 !== head.contentLength) refuse(`Content-Range: ${range} with Content-Length: ${length}`);
  } else if (head.statusCode === 206) {
    refuse('206 without Content-Range');
  }
  return head;
}

/** An answer whose status line and headers have arrived; its body is read on demand. */
export class DirectResponse implements Reader {
  statusCode = 0;
  statusMessage = '';
  headers: Record<string, string> = {};
  /** Body bytes still to come (the early ones included). */
  private remaining = 0;
  private head: Buffer[] = [];
  /** Body bytes that arrived with the headers (or in the scratch buffer), never more than `remaining`. */
  private early: Buffer | undefined;
  private dest: { into: Buffer; pos: number; end: number; crc: number } | undefined;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private headersReady: { resolve(): void; reject(e: Error): void } | undefined;
  private keepAlive = true;
  private finished = false;
  private unlisten: (() => void) | undefined;
  /** Answer bytes received, for the low-speed limit. */
  private received = 0;
  private readonly watch: LowSpeedWatch;

  constructor(
    private readonly conn: Connection,
    private readonly release: (c: Connection) => void,
    private readonly timeoutMs: number,
    private readonly lowSpeed: LowSpeedLimit,
  ) {
    this.watch = new LowSpeedWatch(
      lowSpeed,
      () => this.received,
      () => conn.socket.destroy(lowSpeedError(conn.host, lowSpeed)),
    );
  }

  /** Sends the request and resolves once the final answer's headers are in. */
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
    // Never more room than the body has bytes left: a read cannot run past Content-Length.
    if (d && !this.early && d.pos < d.end) return d.into.subarray(d.pos, Math.min(d.end, d.pos + this.remaining));
    return this.conn.scratch;
  }

  onData(n: number, buf: Uint8Array): boolean {
    this.received += n;
    const d = this.dest;
    if (d && buf.buffer === d.into.buffer && buf.byteOffset === d.into.byteOffset + d.pos) {
      d.crc = crc32(d.into.subarray(d.pos, d.pos + n), d.crc);
      d.pos += n;
      this.consumed(n);
    } else if (this.headersReady) {
      this.watch.start();
      this.takeHead(Buffer.from(buf.subarray(0, n)));
    } else {
      this.addEarly(Buffer.from(buf.subarray(0, n)));
      this.drainEarly();
    }
    this.wake?.();
    // Read on while the headers are incomplete or a buffer waits for body bytes.
    return this.headersReady !== undefined || (this.dest !== undefined && this.dest.pos < this.dest.end && !this.early && !this.finished);
  }

  onClose(err: Error): void {
    this.unlisten?.();
    this.watch.stop();
    if (!this.finished) this.failure ??= err;
    const ready = this.headersReady;
    this.headersReady = undefined;
    ready?.reject(err);
    this.wake?.();
  }

  private takeHead(chunk: Buffer): void {
    this.head.push(chunk);
    let all = Buffer.concat(this.head);
    this.head = [all];
    for (;;) {
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        if (all.length > MAX_HEAD) this.conn.socket.destroy(new NetworkError("the answer's headers are too long", 'EPROTO'));
        return;
      }
      let head: Head;
      try {
        head = parseHead(all.subarray(0, end).toString('latin1'));
      } catch (err) {
        this.conn.socket.destroy(err as Error);
        return;
      }
      const rest = all.subarray(end + 4);
      // 1xx interim answers (100 Continue, 103 Early Hints) have no body: the final answer follows.
      if (head.statusCode >= 100 && head.statusCode < 200 && head.statusCode !== 101) {
        all = rest;
        this.head = [all];
        continue;
      }
      this.head = [];
      const ready = this.headersReady!;
      this.headersReady = undefined;
      this.watch.stop();
      if (head.refuse) {
        this.finished = true;
        this.unlisten?.();
        const forwarder = new Forwarder(this.conn, all, this.lowSpeed);
        this.conn.reader = forwarder;
        ready.reject(new DirectFallback(head.refuse, head.statusCode, forwarder.stream));
        return;
      }
      this.statusCode = head.statusCode;
      this.statusMessage = head.statusMessage;
      this.headers = head.headers;
      this.keepAlive = head.keepAlive;
      this.remaining = head.contentLength;
      if (rest.length) this.addEarly(Buffer.from(rest));
      if (this.remaining === 0 && !this.failure) this.done();
      ready.resolve();
      return;
    }
  }

  /**
   * Keeps body bytes that came before a buffer waits for them. Bytes past the body's end in the
   * same read fail the answer, as node:http's parser fails it: the server is out of step, and its
   * Content-Length may be what is wrong. None of them is delivered.
   */
  private addEarly(bytes: Buffer): void {
    const room = this.remaining - (this.early?.length ?? 0);
    if (bytes.length > room) {
      this.keepAlive = false;
      this.failure ??= new NetworkError('the server sent more bytes than its answer announced', 'EPROTO');
      this.conn.socket.destroy(this.failure);
      bytes = bytes.subarray(0, room);
    }
    if (bytes.length) this.early = this.early ? Buffer.concat([this.early, bytes]) : bytes;
  }

  private consumed(n: number): void {
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
    this.watch.stop();
    const socket = this.conn.socket;
    this.conn.reader = undefined;
    if (this.keepAlive && !this.conn.closed) {
      this.conn.onTimeout = () => socket.destroy();
      socket.setTimeout(IDLE_MS);
      this.release(this.conn);
      // Read while idle, to notice the server closing the socket; not before the read that ended
      // the body has returned (it stops reading when its callback says so).
      setImmediate(() => this.conn.reader === undefined && this.conn.resume());
    } else {
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
      if (d.pos < d.end && !this.finished) this.watch.start();
      while (d.pos < d.end && !this.failure && !this.finished) {
        await new Promise<void>(resolve => {
          this.wake = resolve;
          this.conn.resume();
        });
        this.wake = undefined;
      }
    } finally {
      this.dest = undefined;
      this.watch.stop();
    }
    // A failure is set only before the body was whole: even a full buffer is then no success.
    const error = this.failure ?? (d.pos < d.end ? new NetworkError('the connection ended early', 'ECONNRESET') : undefined);
    return { filled: d.pos, crc: d.crc, error };
  }

  /** The body in chunks (for readers that want a stream). */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      while (this.remaining > 0 && !this.finished) {
        const buf = Buffer.allocUnsafe(Math.min(this.remaining, 1 << 20));
        const got = await this.fill(buf, 0, buf.length, 0);
        if (got.filled > 0) yield buf.subarray(0, got.filled);
        if (got.error) throw got.error;
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
    this.watch.stop();
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
    private readonly lowSpeed: LowSpeedLimit = { bytesPerSecond: 0, timeMs: 0 },
  ) {}

  /**
   * Sends a GET (head of the request already signed) and resolves with the answer's headers in;
   * rejects with DirectFallback for an answer to be read by node:http instead.
   */
  async get(target: Target, pathAndQuery: string, headers: Record<string, string>, signal?: AbortSignal): Promise<DirectResponse> {
    signal?.throwIfAborted();
    const key = `${target.hostname}:${target.port}`;
    const conn = this.idle.get(key)?.pop() ?? this.open(key, target);
    let request = `GET ${pathAndQuery} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(headers)) request += `${name}: ${value}\r\n`;
    request += '\r\n';
    const res = new DirectResponse(conn, c => this.park(c), this.requestTimeoutMs, this.lowSpeed);
    try {
      await res.start(request, signal);
    } catch (err) {
      if (err instanceof DirectFallback) throw err; // its stream has the socket now
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
