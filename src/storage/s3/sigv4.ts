/**
 * AWS Signature Version 4 for S3 requests, in the header form. Bodies are not
 * hashed (UNSIGNED-PAYLOAD): hashing every byte costs more CPU than the rest of
 * a transfer, and integrity comes from the CRC-32 checksums S3 validates.
 * Small XML bodies (CompleteMultipartUpload, DeleteObjects) are hashed: it is cheap.
 */
import { createHash, createHmac } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** RFC 3986 percent-encoding, as SigV4 wants it (`/` kept where `keepSlash`). */
export function uriEncode(text: string, keepSlash = false): string {
  const encoded = encodeURIComponent(text).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepSlash ? encoded.replace(/%2F/g, '/') : encoded;
}

/** `a=1&b=` sorted by name then value, each part encoded. */
export function canonicalQuery(query: Record<string, string>): string {
  return Object.entries(query)
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

export interface SignInput {
  method: string;
  /** Encoded path, exactly as it is sent. */
  path: string;
  query: Record<string, string>;
  /** Lower-case names, all signed. `host` must be among them; `authorization` must not. */
  headers: Record<string, string>;
  payloadHash: string;
}

/** `20240102T030405Z` */
export function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

export class Signer {
  /**
   * The server's clock minus ours, in ms: requests are signed with the server's time once a
   * RequestTimeTooSkewed answer has told it (S3 refuses a signature more than 15 minutes off).
   */
  clockOffsetMs = 0;
  private keyDate = '';
  private key: Buffer | undefined;
  private keySecret = '';

  constructor(
    private readonly region: string,
    private readonly service: string,
  ) {}

  /** Adds x-amz-date, x-amz-content-sha256, the session token and Authorization to `input.headers`. */
  sign(input: SignInput, creds: Credentials, now = new Date(Date.now() + this.clockOffsetMs)): void {
    const stamp = amzDate(now);
    const day = stamp.slice(0, 8);
    const headers = input.headers;
    headers['x-amz-date'] = stamp;
    headers['x-amz-content-sha256'] = input.payloadHash;
    if (creds.sessionToken) headers['x-amz-security-token'] = creds.sessionToken;
    // Every header the plugin sets is signed (host, range, content-*, x-amz-*): a proxy may not alter any.
    const names = Object.keys(headers).sort();
    const canonicalHeaders = names.map(n => `${n}:${headers[n]!.trim().replace(/\s+/g, ' ')}\n`).join('');
    const signedHeaders = names.join(';');
    const canonicalRequest = [
      input.method,
      input.path,
      canonicalQuery(input.query),
      canonicalHeaders,
      signedHeaders,
      input.payloadHash,
    ].join('\n');
    const scope = `${day}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', stamp, scope, sha256Hex(canonicalRequest)].join('\n');
    const signature = createHmac('sha256', this.signingKey(day, creds.secretAccessKey)).update(stringToSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  }

  /** The derived key changes once a day; a long transfer signs thousands of requests with it. */
  private signingKey(day: string, secret: string): Buffer {
    if (this.key && this.keyDate === day && this.keySecret === secret) return this.key;
    const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
    this.key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), this.region), this.service), 'aws4_request');
    this.keyDate = day;
    this.keySecret = secret;
    return this.key;
  }
}
