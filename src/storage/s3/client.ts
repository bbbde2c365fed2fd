/**
 * The ObjectStore over Amazon S3 and S3-compatible servers: SigV4-signed
 * requests over node:http(s), retried with exponential backoff and full
 * jitter when the failure is transient. Every error names the operation and
 * the s3:// URL it was about.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { formatSize } from '../../config/size.js';
import type { PluginConfig } from '../../config/types.js';
import { log } from '../../log/gplog.js';
import { crc32FromBase64, crc32ToBase64 } from '../crc32.js';
import { s3Url } from '../keys.js';
import {
  NotFoundError,
  StoreRequestError,
  type CompletedPart,
  type DeleteFailure,
  type ObjectHead,
  type ObjectInfo,
  type ObjectStore,
  type RangeResponse,
} from '../store.js';
import { THROTTLE_SLICE, Throttle } from '../throttle.js';
import { credentialSource, type CredentialSource } from './credentials.js';
import { Endpoint, type Target } from './endpoint.js';
import { canonicalQuery, EMPTY_SHA256, sha256Hex, Signer, UNSIGNED_PAYLOAD } from './sigv4.js';
import { DirectResponse } from './direct.js';
import { NetworkError } from './network.js';
import { Transport } from './transport.js';
import { elements, text, xmlEncode } from './xml.js';

/** User metadata that carries a single-PUT object's CRC-32 on every GET, for servers that keep no S3 checksums. */
const CRC_METADATA = 'x-amz-meta-gpbackup-crc32';
const RETRY_BASE_MS = 100;
const RETRY_CAP_MS = 5_000;
/** Error bodies are short; a larger one is cut. */
const MAX_ERROR_BODY = 64 * 1024;

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
/** Error codes of a request signed with a clock too far from the server's. */
const CLOCK_SKEW_CODES = new Set(['RequestTimeTooSkewed', 'RequestExpired', 'RequestInTheFuture']);
/** A server Date this far from our signing clock means our clock is wrong (the AWS SDKs' threshold). */
const CLOCK_SKEW_THRESHOLD_MS = 5 * 60_000;
/** 307 Temporary Redirects followed per request. */
const MAX_REDIRECTS = 3;
const RETRYABLE_CODES = new Set(['SlowDown', 'RequestTimeout', 'InternalError', 'ServiceUnavailable', 'RequestTimeTooSkewed']);

interface RequestSpec {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  key?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Sign the body's SHA-256 (small XML bodies) instead of UNSIGNED-PAYLOAD. */
  signBody?: boolean;
  throttle?: Throttle;
  signal?: AbortSignal;
  /** The key (or prefix) messages name, when the request is on the bucket. */
  about?: string;
  /** Called before each retry. */
  onRetry?: () => void;
  /** A GET whose body is read straight into buffers (Transport.sendDirect). */
  direct?: boolean;
}

/** An error answer from the server. */
class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly region?: string,
  ) {
    super(message);
  }
}

/** Where a 307 sent a request: its Location, signed for that host. */
interface Redirect {
  target: Target;
  query: Record<string, string>;
}

/** The target and query of a Location header (relative to the request it answered). */
function redirectTo(location: string, from: Target): Redirect {
  const url = new URL(location, `${from.https ? 'https' : 'http'}://${from.host}${from.path}`);
  const https = url.protocol === 'https:';
  const target: Target = {
    https,
    hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : https ? 443 : 80,
    host: url.host,
    path: url.pathname,
  };
  return { target, query: Object.fromEntries(url.searchParams) };
}

/** The S3 API operation a request is, for the request log. */
function operationName(spec: RequestSpec): string {
  const q = spec.query ?? {};
  switch (spec.method) {
    case 'GET':
      if ('uploads' in q) return 'ListMultipartUploads';
      if ('list-type' in q) return 'ListObjectsV2';
      return 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'PUT':
      return 'partNumber' in q ? 'UploadPart' : 'PutObject';
    case 'POST':
      if ('uploads' in q) return 'CreateMultipartUpload';
      if ('uploadId' in q) return 'CompleteMultipartUpload';
      if ('delete' in q) return 'DeleteObjects';
      return 'POST';
    case 'DELETE':
      return 'uploadId' in q ? 'AbortMultipartUpload' : 'DeleteObject';
  }
}

/** An answer from node:http or from the direct GET path: status, headers, and a body to read or drop. */
type Answer = IncomingMessage | DirectResponse;

function header(res: Answer, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(res: Answer, limit = Number.POSITIVE_INFINITY): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (size < limit) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

const STATUS_TEXT: Record<number, [string, string]> = {
  301: ['PermanentRedirect', 'the bucket is in another region'],
  400: ['BadRequest', 'bad request'],
  403: ['AccessDenied', 'access denied'],
  407: ['ProxyAuthenticationRequired', 'the proxy wants credentials: put user:password@ in the proxy URL'],
  404: ['NotFound', 'not found'],
  405: ['MethodNotAllowed', 'method not allowed'],
  416: ['InvalidRange', 'the requested range is not satisfiable'],
};

async function serverError(res: Answer): Promise<ServerError> {
  const status = res.statusCode ?? 0;
  const body = await readBody(res, MAX_ERROR_BODY).catch(() => '');
  const [defaultCode, defaultMessage] = STATUS_TEXT[status] ?? [`HTTP${status}`, res.statusMessage || 'error'];
  return new ServerError(
    status,
    text(body, 'Code') ?? defaultCode,
    text(body, 'Message') ?? defaultMessage,
    header(res, 'x-amz-bucket-region') ?? text(body, 'Region'),
  );
}

function isRetryable(err: unknown): boolean {
  // An untrusted certificate stays untrusted.
  if (err instanceof NetworkError) return err.code !== 'TlsCertificate';
  return err instanceof ServerError && (RETRYABLE_STATUS.has(err.status) || RETRYABLE_CODES.has(err.code));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Yields the body's chunks no faster than the throttle allows. */
async function* throttled(body: Readable, throttle: Throttle, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for await (const chunk of body as AsyncIterable<Buffer>) {
    for (let offset = 0; offset < chunk.length; offset += THROTTLE_SLICE) {
      const slice = chunk.subarray(offset, offset + THROTTLE_SLICE);
      await throttle.take(slice.length, signal);
      yield slice;
    }
  }
}

export async function createS3Store(config: PluginConfig, maxSockets: number): Promise<S3Store> {
  const endpoint = new Endpoint(config);
  const transport = await Transport.create(config, maxSockets);
  const store = new S3Store(config, endpoint, transport, credentialSource(config, endpoint.region, () => transport.sdkRequestHandler()));
  if (log.enabled('VERBOSE')) {
    const target = endpoint.target();
    log.verbose(
      `S3: ${target.https ? 'https' : 'http'}://${target.host}, region ${endpoint.region}, ` +
        `${config.forcePathStyle ? 'path-style' : 'virtual-hosted'} addressing, ${transport.describeRoute(target)}; ` +
        `uploads in parts of ${formatSize(config.backupPartSize)}, ${config.backupConcurrency} at once; ` +
        `restores in ranges of ${formatSize(config.restorePartSize)}, ${config.restoreConcurrency} at once; checksums: ${store.checksumMode}`,
    );
  }
  return store;
}

export class S3Store implements ObjectStore {
  readonly bucket: string;
  /** How uploads are checked and restores verified, for the verbose log (checksum modes set it). */
  checksumMode = 'CRC-32 (x-amz-checksum-crc32, full object, and x-amz-meta-gpbackup-crc32 on single-PUT objects)';
  private readonly signer: Signer;
  private readonly upThrottle?: Throttle;
  private readonly downThrottle?: Throttle;
  /** Headers every new object gets: encryption and storage class. */
  private readonly objectHeaders: Record<string, string> = {};

  constructor(
    private readonly config: PluginConfig,
    private readonly endpoint: Endpoint,
    private readonly transport: Transport,
    private readonly credentials: CredentialSource,
  ) {
    this.bucket = config.bucket;
    this.signer = new Signer(endpoint.region, 's3');
    if (config.backupMaxBandwidth > 0) this.upThrottle = new Throttle(config.backupMaxBandwidth);
    if (config.restoreMaxBandwidth > 0) this.downThrottle = new Throttle(config.restoreMaxBandwidth);
    if (config.serverSideEncryption) this.objectHeaders['x-amz-server-side-encryption'] = config.serverSideEncryption;
    if (config.sseKmsKeyId) this.objectHeaders['x-amz-server-side-encryption-aws-kms-key-id'] = config.sseKmsKeyId;
    if (config.storageClass) this.objectHeaders['x-amz-storage-class'] = config.storageClass;
  }

  /**
   * Sends one request, retrying transient failures; resolves with a 2xx response, unread, or with
   * what `consume` makes of it. A retryable failure of `consume` (the answer cut off, an error
   * inside a 200) is retried like a failed request: max_retries bounds all attempts together.
   * Beyond max_retries, once each: a request refused for a skewed clock is signed again with the
   * server's time, and a 307 is followed (up to MAX_REDIRECTS times).
   */
  private async exchange(spec: RequestSpec, action: string): Promise<Answer>;
  private async exchange<T>(spec: RequestSpec, action: string, consume: (res: Answer) => Promise<T>): Promise<T>;
  private async exchange<T>(spec: RequestSpec, action: string, consume?: (res: Answer) => Promise<T>): Promise<T | Answer> {
    const attempts = this.config.maxRetries + 1;
    let clockCorrected = false;
    let redirect: Redirect | undefined;
    let redirects = 0;
    for (let attempt = 1; ; attempt++) {
      let err: unknown;
      const started = performance.now();
      try {
        const res = await this.sendOnce(spec, redirect);
        const status = res.statusCode ?? 0;
        this.logRequest(spec, redirect, attempt, started, status, res);
        if (status < 300) return consume ? await consume(res) : res;
        const location = header(res, 'location');
        if (status === 307 && location && redirects < MAX_REDIRECTS) {
          res.resume();
          redirect = redirectTo(location, redirect?.target ?? this.endpoint.target(spec.key));
          redirects++;
          log.verbose(`${action} ${this.url(spec.key ?? spec.about)}: redirected (307) to ${redirect.target.https ? 'https' : 'http'}://${redirect.target.host}`);
          attempt--;
          continue;
        }
        const serverDate = header(res, 'date');
        err = await serverError(res);
        if (!clockCorrected && this.correctClock(err as ServerError, serverDate)) {
          clockCorrected = true;
          attempt--;
          continue;
        }
      } catch (e) {
        if (spec.signal?.aborted) throw spec.signal.reason;
        err = e;
        if (!(e instanceof ServerError)) this.logRequest(spec, redirect, attempt, started, undefined, undefined, e);
      }
      if (!isRetryable(err) || attempt >= attempts) throw this.wrap(action, spec.key ?? spec.about, err, attempt);
      await this.backoff(spec, action, err, attempt);
    }
  }

  /**
   * On RequestTimeTooSkewed (or a 403 without a body to say why, as HEAD gets), a server
   * Date more than 5 minutes from our signing clock becomes the signer's offset, as AWS SDKs do.
   * Returns whether the request should be signed again.
   */
  private correctClock(err: ServerError, serverDate: string | undefined): boolean {
    if (!(CLOCK_SKEW_CODES.has(err.code) || err.status === 403) || !serverDate) return false;
    const server = Date.parse(serverDate);
    if (Number.isNaN(server)) return false;
    const offset = server - Date.now();
    if (Math.abs(offset - this.signer.clockOffsetMs) < CLOCK_SKEW_THRESHOLD_MS) return false;
    this.signer.clockOffsetMs = offset;
    log.warn(
      `the server's clock is ${Math.round(Math.abs(offset) / 1000)} s ${offset > 0 ? 'ahead of' : 'behind'} this host's (${err.code}); ` +
        'signing requests with the server\'s time: fix this host\'s clock (NTP)',
    );
    return true;
  }

  /** At logger_verbosity debug: one line per request sent. Names keys, never a header value. */
  private logRequest(spec: RequestSpec, redirect: Redirect | undefined, attempt: number, started: number, status?: number, res?: Answer, err?: unknown): void {
    if (!log.enabled('DEBUG')) return;
    const ms = Math.round(performance.now() - started);
    const key = spec.key ?? spec.about;
    const range = spec.headers?.range;
    const bytes = spec.body?.length || Number(res ? (header(res, 'content-length') ?? 0) : 0);
    const outcome = status !== undefined ? `status=${status}` : `error=${(err as NetworkError)?.code ?? 'unknown'}`;
    log.debug(
      `request ${operationName(spec)}${key !== undefined ? ` key=${key}` : ''}${range ? ` range=${range.replace(/^bytes=/, '')}` : ''} ` +
        `${outcome} bytes=${bytes} ms=${ms} attempt=${attempt}${redirect ? ` host=${redirect.target.host}` : ''}`,
    );
  }

  private async sendOnce(spec: RequestSpec, redirect?: Redirect): Promise<Answer> {
    const target = redirect?.target ?? this.endpoint.target(spec.key);
    const query = redirect?.query ?? spec.query ?? {};
    const headers: Record<string, string> = { host: target.host, ...spec.headers };
    const body = spec.body;
    if (body) headers['content-length'] = String(body.length);
    else if (spec.method === 'PUT' || spec.method === 'POST') headers['content-length'] = '0';
    const payloadHash = !body || body.length === 0 ? EMPTY_SHA256 : spec.signBody ? sha256Hex(body) : UNSIGNED_PAYLOAD;
    this.signer.sign({ method: spec.method, path: target.path, query, headers, payloadHash }, await this.credentials());
    const req = { method: spec.method, target, query, headers, body, throttle: spec.throttle, signal: spec.signal };
    // The direct path serves the configured endpoint only; a redirected GET goes through node:http.
    return spec.direct && !redirect ? this.transport.sendDirect(req, canonicalQuery(query)) : this.transport.send(req, canonicalQuery(query));
  }

  private url(key: string | undefined): string {
    return s3Url(this.bucket, key ?? '');
  }

  private describe(err: unknown): string {
    if (err instanceof ServerError) return `${err.code}: ${err.message} (HTTP ${err.status})`;
    return (err as Error)?.message ?? String(err);
  }

  private wrap(action: string, key: string | undefined, err: unknown, attempts: number): Error {
    const where = `${action} ${this.url(key)}`;
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    if (err instanceof ServerError) {
      if (err.code === 'NoSuchBucket') return new NotFoundError(`${where}: bucket "${this.bucket}" does not exist`, 'NoSuchBucket');
      if (err.code === 'NoSuchKey' || (err.status === 404 && err.code === 'NotFound')) {
        return new NotFoundError(`${where}: no such object`, 'NoSuchKey');
      }
      let hint = '';
      if (err.region && err.region !== this.endpoint.region && (err.status === 301 || err.status === 400)) {
        hint = `: the bucket is in region ${err.region}, set region: ${err.region}`;
      } else if (err.code === 'SignatureDoesNotMatch' || err.code === 'InvalidAccessKeyId') {
        hint = ': check aws_access_key_id and aws_secret_access_key';
      }
      return new StoreRequestError(`${where}: ${this.describe(err)}${hint}${tries}`, err.status, err.code);
    }
    return new StoreRequestError(`${where}: ${(err as Error)?.message ?? String(err)}${tries}`, undefined, (err as NetworkError)?.code);
  }

  private async backoff(spec: RequestSpec, action: string, err: unknown, attempt: number): Promise<void> {
    const delay = Math.random() * Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt - 1));
    log.verbose(
      `${action} ${this.url(spec.key ?? spec.about)}: attempt ${attempt} of ${this.config.maxRetries + 1} failed (${this.describe(err)}); retrying in ${Math.round(delay)} ms`,
    );
    spec.onRetry?.();
    await sleep(delay, spec.signal);
  }

  /** A 2xx answer's XML, read whole. S3 may answer CompleteMultipartUpload with 200 and an error inside. */
  private xmlResult(spec: RequestSpec, action: string): Promise<string> {
    return this.exchange(spec, action, async res => {
      let body: string;
      try {
        body = await readBody(res);
      } catch (e) {
        throw new NetworkError(`the answer was cut off: ${(e as Error).message}`, 'ECONNRESET');
      }
      if (/^\s*(<\?xml[^>]*>\s*)?<Error>/.test(body)) {
        throw new ServerError(res.statusCode ?? 200, text(body, 'Code') ?? 'InternalError', text(body, 'Message') ?? 'error');
      }
      return body;
    });
  }

  async putObject(key: string, body: Buffer, crc32: number, signal?: AbortSignal): Promise<void> {
    const crc = crc32ToBase64(crc32);
    const res = await this.exchange(
      {
        method: 'PUT',
        key,
        body,
        // x-amz-sdk-checksum-algorithm: what AWS SDKs send beside the checksum; some servers (moto) keep it only then.
        headers: { ...this.objectHeaders, 'x-amz-sdk-checksum-algorithm': 'CRC32', 'x-amz-checksum-crc32': crc, [CRC_METADATA]: crc },
        throttle: this.upThrottle,
        signal,
      },
      'uploading',
    );
    res.resume();
  }

  async createMultipartUpload(key: string): Promise<string> {
    // A create retried after a lost answer may have started an upload whose ID nobody knows:
    // after any retry, uploads of this key other than ours are aborted.
    let retried = false;
    const action = 'starting multipart upload of';
    const xml = await this.xmlResult(
      {
        method: 'POST',
        key,
        query: { uploads: '' },
        headers: { ...this.objectHeaders, 'x-amz-checksum-algorithm': 'CRC32', 'x-amz-checksum-type': 'FULL_OBJECT' },
        onRetry: () => (retried = true),
      },
      action,
    );
    const uploadId = text(xml, 'UploadId');
    if (!uploadId) throw new StoreRequestError(`${action} ${this.url(key)}: the server returned no upload ID`);
    if (retried) await this.abortOtherUploads(key, uploadId);
    return uploadId;
  }

  /** Aborts uploads of `key` other than `keep`: those whose create answer was lost. */
  private async abortOtherUploads(key: string, keep: string): Promise<void> {
    try {
      const xml = await this.xmlResult({ method: 'GET', query: { uploads: '', prefix: key }, about: key }, 'listing multipart uploads of');
      for (const upload of elements(xml, 'Upload')) {
        const id = text(upload, 'UploadId');
        if (text(upload, 'Key') === key && id && id !== keep) await this.abortMultipartUpload(key, id);
      }
    } catch (err) {
      log.warn(`a multipart upload of ${this.url(key)} may be left behind: ${(err as Error).message}`);
    }
  }

  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
    crc32: number,
    signal?: AbortSignal,
  ): Promise<string> {
    const res = await this.exchange(
      {
        method: 'PUT',
        key,
        query: { partNumber: String(partNumber), uploadId },
        headers: { 'x-amz-checksum-crc32': crc32ToBase64(crc32) },
        body,
        throttle: this.upThrottle,
        signal,
      },
      `uploading part ${partNumber} of`,
    );
    res.resume();
    const etag = header(res, 'etag');
    if (!etag) throw new StoreRequestError(`uploading part ${partNumber} of ${this.url(key)}: the server returned no ETag`);
    return etag;
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[], crc32: number): Promise<void> {
    const xml =
      '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      parts
        .map(
          p =>
            `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${xmlEncode(p.etag)}</ETag>` +
            `<ChecksumCRC32>${crc32ToBase64(p.crc32)}</ChecksumCRC32></Part>`,
        )
        .join('') +
      '</CompleteMultipartUpload>';
    try {
      await this.xmlResult(
        {
          method: 'POST',
          key,
          query: { uploadId },
          headers: {
            'content-type': 'application/xml',
            'x-amz-checksum-crc32': crc32ToBase64(crc32),
            'x-amz-checksum-type': 'FULL_OBJECT',
          },
          body: Buffer.from(xml),
          signBody: true,
        },
        'completing multipart upload of',
      );
    } catch (err) {
      // A retried complete whose first try went through finds the upload gone: the object tells.
      if ((err as StoreRequestError).code === 'NoSuchUpload') {
        const head = await this.headObject(key);
        if (head && head.crc32 === crc32) return;
      }
      throw err;
    }
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    try {
      const res = await this.exchange({ method: 'DELETE', key, query: { uploadId } }, 'aborting multipart upload of');
      res.resume();
    } catch (err) {
      if ((err as StoreRequestError).status === 404 || err instanceof NotFoundError) return; // NoSuchUpload: already gone
      throw err;
    }
  }

  async getRange(key: string, start: number, end: number, signal?: AbortSignal): Promise<RangeResponse> {
    // Straight into the caller's buffers unless through a proxy or throttled (that reads chunk by chunk).
    const direct = !this.downThrottle && this.transport.canSendDirect;
    let res: Answer;
    try {
      res = await this.exchange({ method: 'GET', key, headers: { range: `bytes=${start}-${end - 1}` }, signal, direct }, 'downloading');
    } catch (err) {
      // S3 answers a range on an empty object with 416: a range from 0 is unsatisfiable only then.
      if ((err as StoreRequestError).status === 416 && start === 0) return { size: 0, start: 0, length: 0, body: Readable.from([]) };
      throw err;
    }
    const contentRange = header(res, 'content-range');
    const total = contentRange ? /\/(\d+)\s*$/.exec(contentRange)?.[1] : header(res, 'content-length');
    const fail = (why: string): never => {
      res.destroy();
      throw new StoreRequestError(`downloading ${this.url(key)}: ${why}`);
    };
    if (total === undefined) fail("the server's answer did not say the object's size");
    if (!contentRange && start > 0) fail('the server ignored the byte range');
    const size = Number(total);
    // The size is authoritative: some servers send a bogus body for an empty object's range.
    const length = Math.max(0, Math.min(end, size) - start);
    if (length === 0) res.destroy();
    const multipart = /-\d+"?$/.test(header(res, 'etag') ?? '');
    const crc32 = crc32FromBase64(header(res, CRC_METADATA));
    if (res instanceof DirectResponse) {
      const answer = res;
      return {
        size,
        start,
        length,
        body: Readable.from(answer),
        crc32,
        multipart,
        fill: (into, offset, crc) => answer.fill(into, offset, into.length - offset, crc),
      };
    }
    const body = this.downThrottle ? Readable.from(throttled(res, this.downThrottle, signal)) : res;
    return { size, start, length, body, crc32, multipart };
  }

  async headObject(key: string): Promise<ObjectHead | undefined> {
    let res: Answer;
    try {
      res = await this.exchange({ method: 'HEAD', key, headers: { 'x-amz-checksum-mode': 'ENABLED' } }, 'reading the size of');
    } catch (err) {
      if (err instanceof NotFoundError && err.code === 'NoSuchKey') return undefined;
      throw err;
    }
    res.resume();
    // A COMPOSITE checksum (checksum of the parts' checksums) is not the content's CRC.
    const native = header(res, 'x-amz-checksum-type') === 'COMPOSITE' ? undefined : header(res, 'x-amz-checksum-crc32');
    const crc32 = crc32FromBase64(native?.includes('-') ? undefined : native) ?? crc32FromBase64(header(res, CRC_METADATA));
    return { size: Number(header(res, 'content-length') ?? 0), crc32 };
  }

  async *listObjects(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix, 'encoding-type': 'url' };
      if (token) query['continuation-token'] = token;
      const xml = await this.xmlResult({ method: 'GET', query, about: prefix }, 'listing');
      // With encoding-type=url the server percent-encodes keys; a server that ignores it says no EncodingType.
      const decode = text(xml, 'EncodingType') === 'url' ? (k: string) => decodeURIComponent(k.replace(/\+/g, ' ')) : (k: string) => k;
      for (const item of elements(xml, 'Contents')) {
        const key = text(item, 'Key');
        if (key !== undefined) yield { key: decode(key), size: Number(text(item, 'Size') ?? 0) };
      }
      token = text(xml, 'IsTruncated') === 'true' ? text(xml, 'NextContinuationToken') : undefined;
    } while (token);
  }

  async deleteObjects(keys: string[]): Promise<DeleteFailure[]> {
    if (keys.length === 0) return [];
    const xml =
      '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>' +
      keys.map(k => `<Object><Key>${xmlEncode(k)}</Key></Object>`).join('') +
      '</Delete>';
    const body = Buffer.from(xml);
    const result = await this.xmlResult(
      {
        method: 'POST',
        query: { delete: '' },
        // S3 requires an integrity header on multi-object delete.
        headers: { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(body).digest('base64') },
        body,
        signBody: true,
        about: keys[0],
      },
      keys.length > 1 ? `deleting ${keys.length} objects from` : 'deleting',
    );
    return elements(result, 'Error').map(e => ({
      key: text(e, 'Key') ?? '?',
      message: [text(e, 'Code'), text(e, 'Message')].filter(Boolean).join(': ') || 'unknown error',
    }));
  }

  destroy(): void {
    this.transport.destroy();
  }
}
