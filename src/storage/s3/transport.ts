/**
 * One HTTP exchange with the server: keep-alive sockets, connect and idle
 * timeouts, TLS verified against Node's CAs plus ca_bundle (or
 * AWS_CA_BUNDLE), an optional proxy, request bodies held to the upload
 * bandwidth. Resolves with the response as soon as its headers arrive.
 * GETs may instead go through DirectGetter (direct.ts), which reads their
 * bodies straight into the caller's buffers.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import * as tls from 'node:tls';
import type { PluginConfig } from '../../config/types.js';
import { PluginError } from '../../protocol/errors.js';
import { THROTTLE_SLICE, type Throttle } from '../throttle.js';
import { DirectFallback, DirectGetter, type DirectResponse } from './direct.js';
import type { Target } from './endpoint.js';
import { LowSpeedWatch, lowSpeedError, type LowSpeedLimit } from './lowspeed.js';
import { connectTimedOut, describeNetworkError, requestTimedOut } from './network.js';

export interface HttpRequest {
  method: string;
  target: Target;
  query: Record<string, string>;
  /** Lower-case names, signed already. */
  headers: Record<string, string>;
  body?: Buffer;
  /** Holds the body to the upload bandwidth. */
  throttle?: Throttle;
  signal?: AbortSignal;
}

function trustedCas(config: PluginConfig): string[] | undefined {
  const file = config.caBundle ?? (process.env.AWS_CA_BUNDLE || undefined);
  if (!file) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    const what = config.caBundle ? 'ca_bundle' : 'AWS_CA_BUNDLE';
    throw new PluginError(`reading ${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  // An explicit `ca` replaces Node's list: keep Node's (with NODE_EXTRA_CA_CERTS) and add the bundle.
  const getCa = (tls as { getCACertificates?: (type: string) => string[] }).getCACertificates;
  const defaults = getCa ? getCa('default') : [...tls.rootCertificates];
  return [...defaults, pem];
}

/** Resolves when `r` can take more, or is closed; leaves no listener behind (a body has thousands of slices). */
function drained(r: ClientRequest): Promise<void> {
  return new Promise<void>(resolve => {
    const done = () => {
      r.off('drain', done);
      r.off('close', done);
      resolve();
    };
    r.on('drain', done);
    r.on('close', done);
  });
}

export class Transport {
  private constructor(
    private readonly http: HttpAgent,
    private readonly https: HttpsAgent,
    private readonly connectTimeoutMs: number,
    private readonly requestTimeoutMs: number,
    /** GETs without a proxy, read straight into their buffers (direct.ts). */
    private readonly direct: DirectGetter | undefined,
    private readonly lowSpeed: LowSpeedLimit,
  ) {}

  /** Set once a server answered a GET with a 2xx the direct reader does not read (chunked, HTTP/1.0...). */
  private directRefused = false;

  /** Whether GETs can go through sendDirect() (not through a proxy, nor to a server whose framing it refused). */
  get canSendDirect(): boolean {
    return this.direct !== undefined && !this.directRefused;
  }

  /**
   * A GET whose body the caller reads into its own buffers (DirectResponse.fill); an answer the
   * direct reader does not read exactly (an error, chunked, HTTP/1.0, ...) is read by node:http.
   */
  async sendDirect(req: HttpRequest, queryString: string): Promise<DirectResponse | IncomingMessage> {
    const { target } = req;
    const path = queryString ? `${target.path}?${queryString}` : target.path;
    try {
      return await this.direct!.get(target, path, req.headers, req.signal);
    } catch (err) {
      if (!(err instanceof DirectFallback)) throw err;
      // A server that frames its data so will frame the next answers so too: spare them the
      // refused first attempt. Error answers say nothing about how data is framed.
      if (err.status >= 200 && err.status < 300) this.directRefused = true;
      return this.readFallback(err, req, path);
    }
  }

  /** node:http's client reads an answer the direct reader refused, from the bytes it received on. */
  readFallback(fallback: DirectFallback, req: HttpRequest, path: string): Promise<IncomingMessage> {
    const { target } = req;
    return new Promise((resolve, reject) => {
      const r = httpRequest({
        method: req.method,
        host: target.hostname,
        port: target.port,
        path,
        headers: req.headers,
        createConnection: () => fallback.stream,
      });
      let settled = false;
      const signal = req.signal;
      const onAbort = () => r.destroy(signal!.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      r.on('close', () => signal?.removeEventListener('abort', onAbort));
      r.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        reject(signal?.aborted ? (signal.reason as Error) : describeNetworkError(err, target));
      });
      r.on('response', res => {
        settled = true;
        resolve(res);
      });
      r.end();
    });
  }

  static async create(config: PluginConfig, maxSockets: number): Promise<Transport> {
    const ca = trustedCas(config);
    const options = { keepAlive: true, maxSockets, ca, rejectUnauthorized: true };
    let http: HttpAgent = new HttpAgent(options);
    let https: HttpsAgent = new HttpsAgent(options);
    if (config.httpProxy) {
      // One proxy for every request, as the Go plugin's http_proxy option.
      const [{ HttpProxyAgent }, { HttpsProxyAgent }] = await Promise.all([
        import('http-proxy-agent'),
        import('https-proxy-agent'),
      ]);
      http = new HttpProxyAgent(config.httpProxy, options);
      https = new HttpsProxyAgent(config.httpProxy, options);
    }
    const lowSpeed = { bytesPerSecond: config.lowSpeedLimit, timeMs: config.lowSpeedTimeMs };
    const direct = config.httpProxy ? undefined : new DirectGetter(config.connectTimeoutMs, config.requestTimeoutMs, ca, lowSpeed);
    return new Transport(http, https, config.connectTimeoutMs, config.requestTimeoutMs, direct, lowSpeed);
  }

  send(req: HttpRequest, queryString: string): Promise<IncomingMessage> {
    const { target } = req;
    return new Promise((resolve, reject) => {
      const signal = req.signal;
      if (signal?.aborted) return reject(signal.reason);
      const options = {
        method: req.method,
        host: target.hostname,
        port: target.port,
        path: queryString ? `${target.path}?${queryString}` : target.path,
        headers: req.headers,
        agent: target.https ? this.https : this.http,
        servername: target.https && !isIP(target.hostname) ? target.hostname : undefined,
      };
      const r: ClientRequest = (target.https ? httpsRequest : httpRequest)(options);
      let settled = false;
      const fail = (err: Error) => {
        if (!settled) {
          settled = true;
          reject(err);
        }
      };
      const onAbort = () => r.destroy(signal!.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      r.on('close', () => signal?.removeEventListener('abort', onAbort));
      r.on('error', (err: NodeJS.ErrnoException) => fail(signal?.aborted ? (signal.reason as Error) : describeNetworkError(err, target)));
      r.setTimeout(this.requestTimeoutMs, () =>
        r.destroy(requestTimedOut(target.host, this.requestTimeoutMs)),
      );
      r.on('socket', socket => {
        if (!socket.connecting) return;
        const timer = setTimeout(
          () => r.destroy(connectTimedOut(target.host, this.connectTimeoutMs)),
          this.connectTimeoutMs,
        );
        socket.once(target.https ? 'secureConnect' : 'connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      r.on('response', res => {
        settled = true;
        resolve(res);
      });
      this.watchSpeed(r, target);
      this.writeBody(r, req).catch(err => r.destroy(err as Error));
    });
  }

  /**
   * The low-speed limit on a node:http exchange, from the socket's counters: bytes whose write
   * completed while the body goes out, bytes read from the answer's head to its end. Not while
   * the answer's reader holds bytes it has not taken (the slowness is then ours).
   */
  private watchSpeed(r: ClientRequest, target: Target): void {
    let socket: Socket | undefined;
    let answer: IncomingMessage | undefined;
    const moved = () => (socket ? socket.bytesRead + socket.bytesWritten - socket.writableLength : 0);
    const held = () => (answer?.readableLength ?? 0) > 0;
    // Cut mid-answer, the answer's reader gets this error itself (not node:http's "aborted").
    const slow = () => {
      const err = lowSpeedError(target.host, this.lowSpeed);
      if (answer) answer.destroy(err);
      else r.destroy(err);
    };
    const watch = new LowSpeedWatch(this.lowSpeed, moved, slow, held);
    if (!watch.enabled) return;
    let sent = false;
    const hasBody = Number(r.getHeader('content-length') ?? 0) > 0;
    r.on('socket', s => {
      socket = s;
      if (!hasBody) return;
      if (!s.connecting) watch.start();
      else s.once(target.https ? 'secureConnect' : 'connect', () => !sent && watch.start());
    });
    r.on('finish', () => {
      sent = true;
      watch.stop();
    });
    r.on('response', res => {
      answer = res;
      watch.start();
      res.on('close', () => watch.stop());
    });
    r.on('close', () => watch.stop());
  }

  private async writeBody(r: ClientRequest, req: HttpRequest): Promise<void> {
    const body = req.body;
    // Under the low-speed limit, a large body goes in slices, so that its progress shows.
    const sliced = req.throttle || (this.lowSpeed.bytesPerSecond > 0 && (body?.length ?? 0) > THROTTLE_SLICE);
    if (!body || body.length === 0 || !sliced) {
      r.end(body);
      return;
    }
    for (let offset = 0; offset < body.length; offset += THROTTLE_SLICE) {
      const slice = body.subarray(offset, offset + THROTTLE_SLICE);
      await req.throttle?.take(slice.length, req.signal);
      if (r.destroyed) return;
      if (!r.write(slice)) await drained(r);
    }
    r.end();
  }

  destroy(): void {
    this.http.destroy();
    this.https.destroy();
    this.direct?.destroy();
  }
}
