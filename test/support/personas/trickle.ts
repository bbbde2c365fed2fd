/**
 * A proxy in front of the S3 test server that sends the bodies of GET answers
 * a byte at a time, one every `intervalMs` (the status line and headers go out
 * at once): a server that never stalls long enough for an idle timeout, and
 * never finishes. Every other request passes through unchanged. With `chunked`, a GET's
 * trickled body goes without its Content-Length, in chunks of one byte (a re-chunking proxy).
 */
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface TrickleProxy {
  endpoint: string;
  /** GET answers trickled so far. */
  trickled: number;
  stop(): Promise<void>;
}

export async function startTrickleProxy(target: string, intervalMs: number, chunked = false): Promise<TrickleProxy> {
  const upstreamUrl = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const state = { trickled: 0 };

  const server = createServer((req, res) => {
    req.on('error', () => {});
    res.on('error', () => {});
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
    upstream.on('response', async up => {
      const trickle = req.method === 'GET' && up.statusCode! < 300;
      const headers = trickle && chunked ? withoutContentLength(up.rawHeaders) : up.rawHeaders;
      res.writeHead(up.statusCode!, up.statusMessage, headers);
      res.flushHeaders();
      if (!trickle) {
        up.pipe(res);
        return;
      }
      state.trickled++;
      const chunks: Buffer[] = [];
      for await (const c of up) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed || at >= body.length) {
          clearInterval(timer);
          timers.delete(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(body.subarray(at, at + 1));
        at++;
      }, intervalMs);
      timers.add(timer);
    });
    req.pipe(upstream);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get trickled() {
      return state.trickled;
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      const closed = new Promise<void>(resolve => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}

/** Raw headers (name, value, name, value, ...) without Content-Length: node:http then sends the body chunked. */
function withoutContentLength(raw: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== 'content-length') kept.push(raw[i]!, raw[i + 1]!);
  return kept;
}
