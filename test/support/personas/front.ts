/**
 * An http front on 127.0.0.1 for the S3 test server, on which a persona decides per request:
 * answer itself, or pass the request on unchanged (headers byte for byte) and optionally
 * rewrite the answer's headers. The personas of this directory are built on it.
 */
import { createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Front {
  endpoint: string;
  port: number;
  /** Requests the front answered itself, and those it passed on. */
  answered: number;
  passed: number;
  stop(): Promise<void>;
}

export interface Persona {
  /** An answer of its own for `req`, or undefined to pass it on. */
  answer(req: IncomingMessage): { status: number; headers: OutgoingHttpHeaders; body?: string } | undefined;
  /** The request's raw header list as passed on (names and values alternate). */
  forwardHeaders?(raw: string[]): string[];
  /** Headers to set on a passed-on answer (for example a Date of the persona's clock). */
  rewrite?(headers: Record<string, string>): void;
}

/** An S3 error document. */
export function s3Error(code: string, message: string, extra = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>PERSONA</RequestId></Error>`;
}

export async function startFront(targetPort: number, persona: Persona): Promise<Front> {
  const counts = { answered: 0, passed: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const own = persona.answer(req);
    if (own) {
      counts.answered++;
      req.resume();
      // HEAD answers carry no body, as S3's do.
      const body = req.method === 'HEAD' ? undefined : own.body;
      res.writeHead(own.status, { ...own.headers, 'content-length': Buffer.byteLength(body ?? '') });
      res.end(body);
      return;
    }
    counts.passed++;
    const upstream = httpRequest({
      host: '127.0.0.1',
      port: targetPort,
      method: req.method,
      path: req.url,
      headers: (persona.forwardHeaders?.(req.rawHeaders) ?? req.rawHeaders) as unknown as Record<string, string>,
      setHost: false,
    });
    upstream.on('response', answer => {
      const headers: Record<string, string> = {};
      for (let i = 0; i < answer.rawHeaders.length; i += 2) headers[answer.rawHeaders[i]!.toLowerCase()] = answer.rawHeaders[i + 1]!;
      persona.rewrite?.(headers);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', s => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    get answered() {
      return counts.answered;
    },
    get passed() {
      return counts.passed;
    },
    async stop() {
      const closed = new Promise<void>(resolve => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
