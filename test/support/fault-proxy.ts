/**
 * An HTTP proxy for the tests that sits between the plugin (its `endpoint`
 * points here) and the S3 test server, passes requests through unchanged, and
 * injects faults: error answers, connection resets on either side, stalls and
 * truncated bodies. Seeded, so a run can be repeated.
 *
 * Pass-through streams both ways and keeps the client's headers byte for byte
 * (names, order, values, Host): the plugin's SigV4 signature covers them.
 *
 * A fault never lets the server see a complete PUT or POST: the errors,
 * resetRequest and stall forward nothing, and resetResponse or truncate drawn
 * for a PUT/POST are applied as resetRequest (and recorded so). Otherwise a
 * lost answer to CreateMultipartUpload or CompleteMultipartUpload would leave
 * an upload or an object the client can know nothing of, which no client can
 * clean up and which would hide the leaks the tests look for.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FaultKind = 'status500' | 'slowdown503' | 'resetRequest' | 'resetResponse' | 'stall' | 'truncate';

export const FAULT_KINDS: readonly FaultKind[] = ['status500', 'slowdown503', 'resetRequest', 'resetResponse', 'stall', 'truncate'];

export interface ProxyRequestInfo {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Request body bytes the proxy received from the client. */
  bodyBytes: number;
  /** Status sent to the client (for resetResponse and truncate: the one whose body was cut). */
  status?: number;
  fault?: FaultKind | 'denied';
}

export interface FaultProxyOptions {
  /** http://127.0.0.1:<port> of the real server. */
  target: string;
  /** PRNG seed (deterministic runs). */
  seed?: number;
  /** Probability per request of a fault, 0..1 (default 0). */
  faultRate?: number;
  /** Kinds drawn from (default all). */
  faults?: FaultKind[];
  /**
   * If given, the n-th request (0-based) from when the schedule was set gets
   * schedule[n] (null = pass); once it is used up, requests pass.
   */
  schedule?: Array<FaultKind | null>;
  /** How long 'stall' holds the request (default 30000) before dropping the connection. */
  stallMs?: number;
  /**
   * Requests for which this is true get 403 with an S3 AccessDenied error body. Called when
   * the request's head arrives (bodyBytes is still 0); a denied request draws no fault.
   */
  deny?: (req: ProxyRequestInfo) => boolean;
}

export interface FaultProxy {
  endpoint: string;
  port: number;
  /** Every request seen, in order of arrival, with its fault if any. */
  requests: ProxyRequestInfo[];
  stats: { requests: number; faults: Record<FaultKind, number>; denied: number };
  setOptions(o: Partial<FaultProxyOptions>): void;
  stop(): Promise<void>;
}

/** mulberry32: small, fast, and good enough to draw faults (and test sizes) from. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function s3ErrorBody(code: string, message: string, resource: string): string {
  const escaped = resource.replace(/[<>&]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message><Resource>${escaped}</Resource>` +
    '<RequestId>FAULTPROXY</RequestId></Error>'
  );
}

const ERROR_ANSWERS = {
  status500: { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
  slowdown503: { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
  denied: { status: 403, code: 'AccessDenied', message: 'Access Denied' },
} as const;

/** How long a reset waits after its last write, so the bytes reach the client before the RST discards them. */
const RESET_SETTLE_MS = 30;

export async function startFaultProxy(initial: FaultProxyOptions): Promise<FaultProxy> {
  let opts: FaultProxyOptions = { ...initial };
  let random = prng(opts.seed ?? 1);
  let scheduleStart = 0;
  const requests: ProxyRequestInfo[] = [];
  const stats: FaultProxy['stats'] = {
    requests: 0,
    faults: Object.fromEntries(FAULT_KINDS.map(k => [k, 0])) as Record<FaultKind, number>,
    denied: 0,
  };
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  // Upstream connections are reused, as a client's would be.
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let stopped = false;

  const later = (ms: number, fn: () => void) => {
    if (stopped) return;
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  function drawFault(index: number): FaultKind | null {
    if (opts.schedule) {
      const n = index - scheduleStart;
      return n < opts.schedule.length ? opts.schedule[n] : null;
    }
    const rate = opts.faultRate ?? 0;
    if (rate <= 0 || random() >= rate) return null;
    const kinds = opts.faults && opts.faults.length > 0 ? opts.faults : FAULT_KINDS;
    return kinds[Math.floor(random() * kinds.length)];
  }

  /** A socket reset as a failing network does it: RST, not FIN. */
  function reset(socket: Socket): void {
    if (socket.destroyed) return;
    socket.resetAndDestroy();
  }

  function answerError(
    req: IncomingMessage,
    res: ServerResponse,
    which: keyof typeof ERROR_ANSWERS,
    info: ProxyRequestInfo,
    expectsContinue: boolean,
  ): void {
    const { status, code, message } = ERROR_ANSWERS[which];
    const body = s3ErrorBody(code, message, info.path);
    info.status = status;
    const send = () => {
      if (res.writableEnded || res.destroyed) return;
      res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    // Answer once the body is in (as S3 does): answering mid-upload would turn the
    // error into a reset on the client's side, another fault kind. A client waiting
    // for `100 Continue` sends no body: it gets the answer at once.
    if (req.complete || expectsContinue) send();
    else req.once('end', send);
    req.resume();
  }

  /** Reads part of the request body (none if it has none), then resets the client's connection. */
  function resetRequest(req: IncomingMessage, socket: Socket): void {
    const length = Number(req.headers['content-length'] ?? 0);
    const hasBody = length > 0 || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody) {
      reset(socket);
      return;
    }
    // Somewhere within the body, never all of it.
    const cutAt = length > 0 ? Math.floor(random() * length) : 1;
    let seen = 0;
    const check = () => {
      if (seen >= cutAt || req.complete) reset(socket);
    };
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      check();
    });
    check();
  }

  function passThrough(req: IncomingMessage, res: ServerResponse, info: ProxyRequestInfo, fault: 'resetResponse' | 'truncate' | null): void {
    const target = new URL(opts.target);
    const upstream = httpRequest({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      // The raw list keeps names, case, order and duplicates as the client sent them, Host included.
      headers: req.rawHeaders,
      setHost: false,
      agent,
    });
    const clientSocket = req.socket;
    upstream.on('error', () => {
      if (!res.headersSent) reset(clientSocket);
      else clientSocket.destroy();
    });
    // The client gave up: the server must not see the rest of the request either.
    req.on('close', () => {
      if (!req.complete) upstream.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.on('response', up => {
      info.status = up.statusCode;
      const rawHeaders = up.rawHeaders;
      if (fault === null) {
        res.writeHead(up.statusCode!, up.statusMessage, rawHeaders);
        // The head goes out now, as the server sent it, not with the first body byte: a
        // body that never comes (s3rver's 206 for an empty object announces 1 byte) must
        // not hold back the status and headers the client acts on.
        res.flushHeaders();
        up.pipe(res);
        return;
      }
      const length = Number(up.headers['content-length'] ?? -1);
      const bodyless = req.method === 'HEAD' || up.statusCode === 204 || up.statusCode === 304 || length === 0;
      const cut = () => {
        upstream.destroy();
        if (fault === 'resetResponse') later(RESET_SETTLE_MS, () => reset(clientSocket));
        else clientSocket.end();
      };
      if (bodyless) {
        // Nothing to cut in a body: the answer is lost before its status line.
        cut();
        return;
      }
      res.writeHead(up.statusCode!, up.statusMessage, rawHeaders);
      // A part of the body, never all of it (unknown length: part of the first chunk).
      let budget = length > 0 ? Math.floor(random() * length) : -1;
      let done = false;
      up.on('data', (chunk: Buffer) => {
        if (done) return;
        if (budget < 0) budget = Math.floor(chunk.length / 2);
        const part = chunk.subarray(0, Math.min(budget, chunk.length));
        budget -= part.length;
        const last = budget === 0;
        if (last) {
          done = true;
          up.pause();
        }
        const ok = res.write(part, () => {
          if (last) cut();
        });
        if (!ok && !last) {
          up.pause();
          res.once('drain', () => up.resume());
        }
      });
      const cutNow = () => {
        if (done) return;
        done = true;
        res.write(Buffer.alloc(0), () => cut());
      };
      if (budget === 0) cutNow();
      // A body shorter than announced (s3rver's empty-object 206) ends before the cut point.
      up.on('end', cutNow);
    });
    req.pipe(upstream);
  }

  function handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const info: ProxyRequestInfo = {
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      bodyBytes: 0,
    };
    const index = requests.length;
    requests.push(info);
    stats.requests++;
    req.on('data', (chunk: Buffer) => (info.bodyBytes += chunk.length));
    req.on('error', () => {});
    res.on('error', () => {});

    if (opts.deny?.(info)) {
      info.fault = 'denied';
      stats.denied++;
      answerError(req, res, 'denied', info, expectsContinue);
      return;
    }

    let fault = drawFault(index);
    const sendsBody = req.method === 'PUT' || req.method === 'POST';
    if (sendsBody && (fault === 'resetResponse' || fault === 'truncate')) fault = 'resetRequest';
    if (fault) {
      info.fault = fault;
      stats.faults[fault]++;
    }
    // With `Expect: 100-continue`, the error answers go out without letting the body come.
    if (expectsContinue && fault !== 'status500' && fault !== 'slowdown503') res.writeContinue();

    switch (fault) {
      case 'status500':
      case 'slowdown503':
        answerError(req, res, fault, info, expectsContinue);
        return;
      case 'resetRequest':
        resetRequest(req, req.socket);
        return;
      case 'stall': {
        req.resume();
        const socket = req.socket;
        later(opts.stallMs ?? 30_000, () => socket.destroy());
        return;
      }
      default:
        passThrough(req, res, info, fault);
    }
  }

  const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => handle(req, res, false));
  server.on('checkContinue', (req, res) => handle(req, res, true));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    stats,
    setOptions(o) {
      opts = { ...opts, ...o };
      if (o.seed !== undefined) random = prng(o.seed);
      if (o.schedule !== undefined) scheduleStart = requests.length;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const closed = new Promise<void>(resolve => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
