/**
 * Proxies in front of the S3 test server that send its answers framed as
 * servers, gateways and proxies in the field do, byte for byte the same
 * content (issue 10 item 7):
 *
 * - `chunked`: every answer with a body (data and errors alike) goes out with
 *   `Transfer-Encoding: chunked` and no Content-Length, in chunks of varying
 *   sizes, as S3 gateways that transform objects and re-chunking proxies send it;
 * - `continue`: each final answer comes after a `100 Continue` interim answer,
 *   whether the client asked for one or not;
 * - `http10`: `HTTP/1.0` answers, alternately with `Connection: close` and
 *   without (HTTP/1.0 closes either way), and with a Content-Length and without
 *   one (read until the connection closes); the connection is closed after each,
 *   and a request a client sends on it anyway is counted in `reused`.
 *
 * Requests pass through unchanged (names, case, order, Host: the signature
 * covers them). s3rver never checks SigV4 signatures; with `verifySignatures`
 * the proxy checks each request's signature against the test key pair with the
 * AWS SDK's own signer (@smithy/signature-v4) and answers a mismatch with S3's
 * 403 SignatureDoesNotMatch, framed like every other answer.
 */
import { createHash, createHmac } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { TEST_ACCESS_KEY, TEST_SECRET_KEY } from '../s3server.js';

export type Framing = 'chunked' | 'continue' | 'http10';
export const FRAMINGS: readonly Framing[] = ['chunked', 'continue', 'http10'];

export interface FramingProxy {
  endpoint: string;
  /** Answers sent, by status. */
  answers: Map<number, number>;
  /** Requests sent on a connection after an HTTP/1.0 answer had ended it (http10). */
  readonly reused: number;
  stop(): Promise<void>;
}

/** Hop-by-hop headers and the framing ones this proxy sets itself. */
const FRAMING_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/** Bytes of what @smithy/signature-v4 hands a hash (strings, views, ArrayBuffers). */
type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytesOf = (d: SourceData) =>
  typeof d === 'string' ? Buffer.from(d) : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);

/** node:crypto in the shape @smithy/signature-v4 takes (an HMAC when given a secret). */
export class Sha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytesOf(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

/** Whether the request's SigV4 Authorization header is right for the test key pair. */
async function signatureMatches(req: IncomingMessage): Promise<boolean> {
  const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(
    String(req.headers.authorization ?? ''),
  );
  if (!auth) return false;
  const [, keyId, , region, service, signedHeaders, signature] = auth;
  if (keyId !== TEST_ACCESS_KEY) return true; // an unknown key is the server's to refuse
  const url = new URL(req.url ?? '/', 'http://x');
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const headers: Record<string, string> = {};
  for (const name of signedHeaders!.split(';')) headers[name] = String(req.headers[name] ?? '');
  const date = String(req.headers['x-amz-date'] ?? '');
  const signingDate = new Date(date.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
  const signer = new SignatureV4({
    credentials: { accessKeyId: keyId!, secretAccessKey: TEST_SECRET_KEY },
    region: region!,
    service: service!,
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    { method: req.method ?? 'GET', protocol: 'http:', hostname: headers.host ?? '', path: url.pathname, query, headers },
    { signingDate },
  );
  return String(signed.headers.authorization ?? '').endsWith(`Signature=${signature}`);
}

const SIGNATURE_ERROR =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>' +
  '<Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message>' +
  '<RequestId>FRAMINGPROXY</RequestId></Error>';

export async function startFramingProxy(target: string, framing: Framing, opts: { verifySignatures?: boolean } = {}): Promise<FramingProxy> {
  const upstreamUrl = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();
  const answers = new Map<number, number>();
  let chunkSeed = 1;
  let http10Answers = 0;
  /** Connections an HTTP/1.0 answer ended; a request on one of them is counted in `reused`. */
  const answered = new WeakSet<Socket>();
  const state = { reused: 0 };

  /** Writes an answer (status, headers from upstream, body from a stream or a buffer) in the persona's framing. */
  function send(req: IncomingMessage, res: ServerResponse, status: number, message: string, rawHeaders: string[], body: AsyncIterable<Buffer> | Buffer): void {
    answers.set(status, (answers.get(status) ?? 0) + 1);
    const bodyless = req.method === 'HEAD' || status === 204 || status === 304;
    // A HEAD keeps its Content-Length: it is the object's size, not a framing of this answer.
    const keep = (name: string) => !FRAMING_HEADERS.has(name.toLowerCase()) || (bodyless && name.toLowerCase() === 'content-length');
    const headers: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) if (keep(rawHeaders[i]!)) headers.push(rawHeaders[i]!, rawHeaders[i + 1]!);
    const chunks = Buffer.isBuffer(body) ? [body] : body;

    if (framing === 'http10') {
      // Alternately with and without Content-Length, and with and without `Connection: close`
      // (HTTP/1.0 closes either way): the connection ends after the answer.
      const n = http10Answers++;
      const upstreamLength = rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-length');
      const withLength = !bodyless && n % 2 === 0 && upstreamLength >= 0;
      if (withLength) headers.push('Content-Length', rawHeaders[upstreamLength + 1]!);
      const socket = req.socket;
      let head = `HTTP/1.0 ${status} ${message}\r\n`;
      for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
      if ((n >> 1) % 2 === 0) head += 'Connection: close\r\n';
      head += '\r\n';
      void (async () => {
        socket.write(head, 'latin1');
        if (!bodyless) for await (const c of chunks) if (!socket.write(c)) await new Promise(r => socket.once('drain', r));
        answered.add(socket);
        // A framed body ends without the close: wait a moment, so a client that sends
        // another request on this connection is seen doing it (counted in `reused`).
        if (withLength || bodyless) setTimeout(() => socket.end(), 100).unref();
        else socket.end();
      })().catch(() => socket.destroy());
      return;
    }
    if (framing === 'continue') res.writeContinue();
    if (framing === 'chunked') {
      // No Content-Length: node:http frames the body chunked.
      res.writeHead(status, message, headers);
      if (bodyless) {
        res.end();
        return;
      }
      void (async () => {
        for await (const c of chunks) {
          // Chunks of varying sizes, not the ones upstream sent.
          for (let at = 0; at < c.length; ) {
            chunkSeed = (chunkSeed * 1103515245 + 12345) >>> 0;
            const n = 1 + (chunkSeed % 40_000);
            if (!res.write(c.subarray(at, at + n))) await new Promise(r => res.once('drain', r));
            at += n;
          }
        }
        res.end();
      })().catch(() => res.destroy());
      return;
    }
    // continue: the answer as upstream framed it.
    const length = rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-length');
    if (length >= 0 && !bodyless) headers.push('Content-Length', rawHeaders[length + 1]!);
    res.writeHead(status, message, headers);
    void (async () => {
      if (!bodyless) for await (const c of chunks) if (!res.write(c)) await new Promise(r => res.once('drain', r));
      res.end();
    })().catch(() => res.destroy());
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => {});
    res.on('error', () => {});
    if (answered.has(req.socket)) {
      state.reused++;
      req.socket.destroy();
      return;
    }
    if (opts.verifySignatures && !(await signatureMatches(req))) {
      req.resume();
      await new Promise(r => (req.complete ? r(undefined) : req.once('end', r)));
      const body = Buffer.from(SIGNATURE_ERROR);
      send(req, res, 403, 'Forbidden', ['Content-Type', 'application/xml', 'Content-Length', String(body.length)], body);
      return;
    }
    const upstream = httpRequest({
      host: upstreamUrl.hostname,
      port: upstreamUrl.port,
      method: req.method,
      path: req.url,
      headers: req.rawHeaders,
      setHost: false,
      agent,
    });
    upstream.on('error', () => req.socket.destroy());
    req.on('close', () => {
      if (!req.complete) upstream.destroy();
    });
    upstream.on('response', up => send(req, res, up.statusCode!, up.statusMessage ?? '', up.rawHeaders, up));
    req.pipe(upstream);
  }

  const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => void handle(req, res));
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
    answers,
    get reused() {
      return state.reused;
    },
    async stop() {
      const closed = new Promise<void>(resolve => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
