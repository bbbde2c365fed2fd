/**
 * What a failed answer means, worded to point at the fix: an S3 error (its code and message,
 * never an empty part), an answer that is not S3's at all (a web server, a load balancer's page,
 * a wrong port), and a connection that speaks the other protocol (TLS to a plain-http server,
 * plain http to a TLS port), which no retry can mend.
 */
import { connect as tlsConnect } from 'node:tls';
import type { Target } from './endpoint.js';
import { NetworkError } from './network.js';
import { text } from './xml.js';

/** An answer the server gave with an error status. `fromS3`: its body carried an S3 error code (or it had no body to carry one: HEAD). */
export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly region?: string,
    readonly fromS3 = true,
  ) {
    super(message);
  }
}

const MAX_ERROR_BODY = 64 * 1024;

const STATUS_TEXT: Record<number, [string, string]> = {
  301: ['PermanentRedirect', 'the bucket is in another region'],
  400: ['BadRequest', 'bad request'],
  403: ['AccessDenied', 'access denied'],
  407: ['ProxyAuthenticationRequired', 'the proxy wants credentials: put user:password@ in the proxy URL'],
  404: ['NotFound', 'not found'],
  405: ['MethodNotAllowed', 'method not allowed'],
  416: ['InvalidRange', 'the requested range is not satisfiable'],
};

interface ErrorAnswer extends AsyncIterable<Buffer> {
  statusCode?: number;
  statusMessage?: string;
  headers: Record<string, string | string[] | undefined>;
}

async function readLimited(res: ErrorAnswer, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    if (size < limit) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The error an answer with an error status stands for; `method` HEAD: an answer without a body, S3's or not. */
export async function serverError(res: ErrorAnswer, method: string): Promise<ServerError> {
  const status = res.statusCode ?? 0;
  const body = await readLimited(res, MAX_ERROR_BODY).catch(() => '');
  const [defaultCode, defaultMessage] = STATUS_TEXT[status] ?? [`HTTP${status}`, res.statusMessage || 'error'];
  const code = text(body, 'Code') || undefined;
  const regionHeader = res.headers['x-amz-bucket-region'];
  return new ServerError(
    status,
    code ?? defaultCode,
    // Ceph RGW sends an empty <Message/>: the status's own words stand in.
    text(body, 'Message') || (code ? '' : defaultMessage),
    (Array.isArray(regionHeader) ? regionHeader[0] : regionHeader) ?? text(body, 'Region'),
    code !== undefined || method === 'HEAD',
  );
}

/** `NoSuchKey: The specified key does not exist. (HTTP 404)`, or `SignatureDoesNotMatch (HTTP 403)` when the message is empty. */
export function describeServerError(err: ServerError): string {
  return `${err.code}${err.message ? `: ${err.message}` : ''} (HTTP ${err.status})`;
}

/** For an answer without an S3 error code: what came back, and what to check. */
export function notS3(err: ServerError, endpoint: string): string {
  return (
    `the endpoint ${endpoint} did not answer as S3 (HTTP ${err.status}${err.message ? ` ${err.message}` : ''}, with no S3 error code): ` +
    'check the endpoint option (scheme, host, port and path) names the S3 service itself, not a web server, a load balancer\'s default page or another port'
  );
}

/** OpenSSL's (and BoringSSL's) words for a handshake answered by something that is not TLS. */
const NOT_TLS = /WRONG_VERSION_NUMBER|wrong version number|packet length too long|unknown protocol|record layer failure/i;

/** Codes of a plain-http request a TLS server may answer with: a reset, a closed connection, bytes no HTTP parser reads. */
const HTTP_REFUSED = /^(ECONNRESET|EPIPE|HPE_.*)$/;

/** Answers of speaksTls by host:port: requests cut off side by side ask once. */
const tlsPorts = new Map<string, Promise<boolean>>();

/** Whether a TLS handshake with host:port completes (the certificate is not judged: only the protocol). */
function speaksTls(target: Target, timeoutMs: number): Promise<boolean> {
  const known = tlsPorts.get(`${target.hostname}:${target.port}`);
  if (known) return known;
  const answer = handshake(target, timeoutMs);
  tlsPorts.set(`${target.hostname}:${target.port}`, answer);
  return answer;
}

function handshake(target: Target, timeoutMs: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = tlsConnect({ host: target.hostname, port: target.port, rejectUnauthorized: false });
    const done = (yes: boolean) => {
      clearTimeout(timer);
      // A handshake that completed is closed politely (close_notify), so the server logs no failed handshake.
      if (yes) socket.end();
      else socket.destroy();
      resolve(yes);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * A connection failure that comes from speaking the wrong protocol, as an error that says which
 * option to change (and is not retried), or `err` as it was. A TLS handshake a plain-http server
 * answered is told by OpenSSL's words; a plain-http request a TLS port cut off is told by one
 * TLS handshake with that port.
 */
export async function protocolMismatch(err: unknown, target: Target, timeoutMs: number): Promise<unknown> {
  if (!(err instanceof NetworkError)) return err;
  const where = `${target.https ? 'https' : 'http'}://${target.host}`;
  if (target.https && NOT_TLS.test(err.message)) {
    return new NetworkError(
      `${where} does not speak TLS (the handshake was answered in plain text): it is a plain-http endpoint; set encryption: off (or give the endpoint as http://${target.host})`,
      'NotTls',
    );
  }
  if (!target.https && HTTP_REFUSED.test(err.code) && (await speaksTls(target, timeoutMs))) {
    return new NetworkError(
      `${where} is a TLS (https) port: it cut off the plain-http request; set encryption: on (or give the endpoint as https://${target.host})`,
      'TlsPort',
    );
  }
  return err;
}

/** Failures no retry mends: a certificate OpenSSL refuses, and a protocol mismatch. */
export const NOT_RETRIED_NETWORK_CODES = new Set(['TlsCertificate', 'NotTls', 'TlsPort']);
