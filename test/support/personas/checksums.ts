/**
 * Proxies in front of the S3 test server (s3rver, patched by s3rver-main.cjs to behave as AWS
 * does with flexible checksums and SSE) that answer as servers in the field do:
 *
 * - `b2`: Backblaze B2 refuses every `x-amz-checksum-*` and `x-amz-sdk-checksum-algorithm`
 *   header, HEAD's `x-amz-checksum-mode` included, with 400 InvalidArgument "Unsupported header".
 * - `refuse501`: the same headers refused with 501 NotImplemented (as R2 has answered).
 * - `old-minio`: MinIO before full-object checksums: CRC-32s of PutObject and UploadPart are
 *   validated and echoed, but a CompleteMultipartUpload naming a FULL_OBJECT checksum fails with
 *   400 InvalidPart, and the checksum a HEAD reports for a multipart object is COMPOSITE (a
 *   checksum of the parts' checksums, `<crc>-<parts>`), not the content's.
 * - `rgw16`: Ceph RGW 16 accepts the checksum headers and ignores them (they are removed
 *   before s3rver sees them, and from every answer, XML results included), validates
 *   Content-MD5 (400 BadDigest, nothing stored), and accepts `x-amz-server-side-encryption`
 *   without encrypting or confirming it (removed from answers).
 *
 * Every persona can also flip a byte of a request body on its way to the server (`corrupt`),
 * before any check the server makes. s3rver checks no SigV4 signature, so headers the client
 * signed can be removed. Request bodies are read whole before they are passed on (test sizes).
 */
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type PersonaName = 'b2' | 'refuse501' | 'old-minio' | 'rgw16';

export const PERSONAS: readonly PersonaName[] = ['b2', 'refuse501', 'old-minio', 'rgw16'];

export interface PersonaRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The status the client got. */
  status: number;
  /** The request was refused or changed by the persona: what it did. */
  action?: 'refused' | 'corrupted' | 'bad-digest';
}

export interface PersonaOptions {
  /** Requests for which this is true have one byte of their body flipped on the way to the server. */
  corrupt?: (req: { method: string; path: string; query: URLSearchParams }) => boolean;
}

export interface PersonaProxy {
  endpoint: string;
  requests: PersonaRequest[];
  setOptions(o: PersonaOptions): void;
  stop(): Promise<void>;
}

/** Request headers of S3's flexible checksums. */
export function checksumHeaderNames(headers: IncomingHttpHeaders): string[] {
  return Object.keys(headers).filter(h => h.startsWith('x-amz-checksum-') || h === 'x-amz-sdk-checksum-algorithm');
}

const SSE_ANSWER_HEADERS = ['x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id'];

function errorBody(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>PERSONA</RequestId></Error>`;
}

function operationOf(method: string, query: URLSearchParams): string {
  if (method === 'POST' && query.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && query.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'PUT') return query.has('uploadId') ? 'UploadPart' : 'PutObject';
  return method;
}

async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startPersona(persona: PersonaName, target: string, initial: PersonaOptions = {}): Promise<PersonaProxy> {
  let opts = initial;
  const requests: PersonaRequest[] = [];
  const sockets = new Set<Socket>();
  const upstreamUrl = new URL(target);

  /** A refusal of the request, by this persona, or undefined. */
  function refusal(method: string, query: URLSearchParams, headers: IncomingHttpHeaders): { status: number; code: string; message: string } | undefined {
    const names = checksumHeaderNames(headers);
    if (persona === 'b2' && names.length) {
      return { status: 400, code: 'InvalidArgument', message: `Unsupported header '${names[0]}' received for this API call.` };
    }
    if (persona === 'refuse501' && names.length) {
      return { status: 501, code: 'NotImplemented', message: `Header '${names[0]}' with value '${headers[names[0]!]}' not implemented` };
    }
    if (
      persona === 'old-minio' &&
      operationOf(method, query) === 'CompleteMultipartUpload' &&
      (String(headers['x-amz-checksum-type'] ?? '').toUpperCase() === 'FULL_OBJECT' || headers['x-amz-checksum-crc32'] !== undefined)
    ) {
      return {
        status: 400,
        code: 'InvalidPart',
        message: 'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.',
      };
    }
    return undefined;
  }

  function answer(res: ServerResponse, method: string, status: number, code: string, message: string): void {
    const body = method === 'HEAD' ? '' : errorBody(code, message);
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** The answer's headers as the persona passes them on. */
  function answerHeaders(upstream: IncomingMessage): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value === undefined) continue;
      if (persona === 'rgw16' && (name.startsWith('x-amz-checksum-') || SSE_ANSWER_HEADERS.includes(name))) continue;
      out[name] = value;
    }
    if (persona === 'old-minio' && out['x-amz-checksum-type'] === 'FULL_OBJECT') {
      // A multipart object's checksum is the COMPOSITE kind: `<crc of the parts' crcs>-<parts>`.
      const parts = /-(\d+)"?$/.exec(String(out.etag ?? ''))?.[1];
      if (parts) {
        out['x-amz-checksum-type'] = 'COMPOSITE';
        out['x-amz-checksum-crc32'] = `${out['x-amz-checksum-crc32']}-${parts}`;
      }
    }
    return out;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://persona');
    const method = req.method ?? 'GET';
    const record: PersonaRequest = { method, path: url.pathname, query: url.searchParams, headers: req.headers, status: 0 };
    requests.push(record);
    let body = await readAll(req);

    const refused = refusal(method, url.searchParams, req.headers);
    if (refused) {
      record.status = refused.status;
      record.action = 'refused';
      return answer(res, method, refused.status, refused.code, refused.message);
    }
    if (body.length > 0 && opts.corrupt?.({ method, path: url.pathname, query: url.searchParams })) {
      body = Buffer.from(body);
      body[Math.floor(body.length / 2)]! ^= 0x01;
      record.action = 'corrupted';
    }
    const headers: IncomingHttpHeaders = { ...req.headers };
    if (persona === 'rgw16') {
      for (const name of checksumHeaderNames(headers)) delete headers[name];
      const md5 = headers['content-md5'];
      if (md5 !== undefined && createHash('md5').update(body).digest('base64') !== md5) {
        record.status = 400;
        record.action = 'bad-digest';
        return answer(res, method, 400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
      }
    }
    headers['content-length'] = String(body.length);
    delete headers['transfer-encoding'];

    const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
      const up = httpRequest({ host: upstreamUrl.hostname, port: upstreamUrl.port, method, path: req.url, headers });
      up.on('response', resolve);
      up.on('error', reject);
      up.end(body);
    });
    record.status = upstream.statusCode ?? 0;
    const outHeaders = answerHeaders(upstream);
    const operation = operationOf(method, url.searchParams);
    if (persona === 'rgw16' && operation === 'CompleteMultipartUpload') {
      // RGW 16's CompleteMultipartUploadResult names no checksum.
      const xml = (await readAll(upstream)).toString('utf8').replace(/<Checksum[A-Za-z0-9]*>[^<]*<\/Checksum[A-Za-z0-9]*>/g, '');
      outHeaders['content-length'] = String(Buffer.byteLength(xml));
      delete outHeaders['transfer-encoding'];
      res.writeHead(upstream.statusCode ?? 500, outHeaders);
      res.end(xml);
      return;
    }
    res.writeHead(upstream.statusCode ?? 500, outHeaders);
    upstream.pipe(res);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', s => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    setOptions(o) {
      opts = o;
    },
    stop: () =>
      new Promise<void>(resolve => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
