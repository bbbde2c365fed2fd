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
import { contentMd5, objectLockHeaders } from '../object-lock.js';
import { log } from '../../log/gplog.js';
import { crc32FromBase64, crc32Hex, crc32ToBase64 } from '../crc32.js';
import { s3Url } from '../keys.js';
import {
  NotFoundError,
  StoreRequestError,
  type CompletedPart,
  type DeleteFailure,
  type MultipartUploadInfo,
  type ObjectHead,
  type ObjectInfo,
  type ObjectStore,
  type PartLayout,
  type RangeResponse,
} from '../store.js';
import { ChecksumPolicy, isChecksumRefusal, md5Base64 } from './checksums.js';
import { THROTTLE_SLICE, Throttle } from '../throttle.js';
import { credentialSource, type CredentialSource } from './credentials.js';
import { Endpoint, type Target } from './endpoint.js';
import { canonicalQuery, EMPTY_SHA256, sha256Hex, Signer, UNSIGNED_PAYLOAD } from './sigv4.js';
import { DirectResponse } from './direct.js';
import { NetworkError } from './network.js';
import { describeServerError, NOT_RETRIED_NETWORK_CODES, notS3, protocolMismatch, ServerError, serverError } from './answers.js';
import { Transport } from './transport.js';
import { dateOf, elements, text, xmlEncode } from './xml.js';

/** User metadata that carries a single-PUT object's CRC-32 on every GET, for servers that keep no S3 checksums. */
const CRC_METADATA = 'x-amz-meta-gpbackup-crc32';
/**
 * User metadata of a multipart object: its part layout, `<first part size>,<parts per doubling>`.
 * Where the server keeps no full-object CRC-32 (it ignores or refuses flexible checksums), a
 * restore recomputes the parts' MD5s from it and checks them against the object's ETag
 * (`<MD5 of the parts' MD5s>-<parts>`, computed by the server from the bytes it received). The
 * layout is the one thing a restore needs that the server does not keep, and it is known at
 * CreateMultipartUpload, the only time metadata can be given; a whole-object CRC-32 is known
 * only at the end, when the metadata can no longer change (short of copying the object).
 */
const LAYOUT_METADATA = 'x-amz-meta-gpbackup-part-layout';
const SSE_HEADER = 'x-amz-server-side-encryption';
const RETRY_BASE_MS = 100;
const RETRY_CAP_MS = 5_000;
/** How long the one TLS handshake that tells a TLS port from a plain-http one may take (answers.ts). */
const PROTOCOL_PROBE_MS = 2_000;

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
  /** Attempts in all, instead of max_retries + 1. */
  attempts?: number;
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

async function readBody(res: Answer): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function isRetryable(err: unknown): boolean {
  // An untrusted certificate stays untrusted.
  if (err instanceof NetworkError) return !NOT_RETRIED_NETWORK_CODES.has(err.code);
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

/** LAYOUT_METADATA's value, if well formed. */
function parseLayout(value: string | undefined): PartLayout | undefined {
  const m = /^\s*(\d+),(\d+)\s*$/.exec(value ?? '');
  if (!m) return undefined;
  const layout = { partSize: Number(m[1]), partsPerDoubling: Number(m[2]) };
  return layout.partSize > 0 && layout.partsPerDoubling > 0 ? layout : undefined;
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
  /** What the server does with flexible checksums, learnt from its answers. */
  private readonly checksums: ChecksumPolicy;
  /** Uploads created with the flexible-checksum headers (their parts and completion may carry CRC-32s). */
  private readonly flexibleUploads = new Set<string>();

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
    this.checksums = new ChecksumPolicy(config.checksums ?? 'auto');
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
    const attempts = spec.attempts ?? this.config.maxRetries + 1;
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
        err = await serverError(res, spec.method);
        if (!clockCorrected && this.correctClock(err as ServerError, serverDate)) {
          clockCorrected = true;
          attempt--;
          continue;
        }
      } catch (e) {
        if (spec.signal?.aborted) throw spec.signal.reason;
        err = e;
        if (!(e instanceof ServerError)) this.logRequest(spec, redirect, attempt, started, undefined, undefined, e);
        if (attempt === 1) err = await protocolMismatch(e, redirect?.target ?? this.endpoint.target(spec.key), PROTOCOL_PROBE_MS);
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
    if (err instanceof ServerError) return describeServerError(err);
    return (err as Error)?.message ?? String(err);
  }

  private wrap(action: string, key: string | undefined, err: unknown, attempts: number): Error {
    const where = `${action} ${this.url(key)}`;
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    if (err instanceof ServerError) {
      if (!err.fromS3) return new StoreRequestError(`${where}: ${notS3(err, this.endpoint.shown)}${tries}`, err.status, err.code);
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
  private async xmlResult(spec: RequestSpec, action: string): Promise<string> {
    return (await this.xmlAnswer(spec, action)).body;
  }

  /** As xmlResult, with the answer's headers. */
  private xmlAnswer(spec: RequestSpec, action: string): Promise<{ body: string; res: Answer }> {
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
      return { body, res };
    });
  }

  /**
   * Sends an upload request (PutObject, UploadPart) checked the way the server allows: with the
   * CRC-32 flexible checksum (`flexibleHeaders`) and/or Content-MD5, as the policy says; sent
   * again without the flexible headers if the server refuses them. Returns the 2xx answer.
   */
  private async sendUpload(
    spec: RequestSpec & { body: Buffer },
    action: string,
    operation: string,
    crc32: number,
    flexibleHeaders: Record<string, string> | undefined,
    /** Removes what an answered request stored, when the answer shows it must not stand (a single PUT's object). */
    remove?: () => Promise<void>,
  ): Promise<Answer> {
    const fail = async (why: string, code?: string): Promise<never> => {
      if (remove) await this.removeAndFail(spec.key!, why, remove, 'it was deleted');
      throw new StoreRequestError(`${action} ${this.url(spec.key)}: ${why}`, code ? 400 : undefined, code);
    };
    let flexible = flexibleHeaders !== undefined && this.checksums.sendFlexible;
    let withMd5 = this.checksums.sendMd5;
    let md5: string | undefined;
    for (;;) {
      const headers = { ...spec.headers, ...(flexible ? flexibleHeaders : {}) };
      if (withMd5) headers['content-md5'] = md5 ??= md5Base64(spec.body);
      let res: Answer;
      try {
        res = await this.exchange({ ...spec, headers }, action);
      } catch (err) {
        if (flexible && this.checksums.mayFallBack && isChecksumRefusal(err)) {
          this.checksums.refused(operation, this.describeStoreError(err));
          flexible = false;
          withMd5 = this.checksums.sendMd5;
          continue;
        }
        if (flexible && isChecksumRefusal(err)) throw this.withHint(err, 'the server refuses flexible checksums: set checksums: auto (or md5)');
        throw err;
      }
      res.resume();
      if (!flexible) return res;
      const echoed = crc32FromBase64(header(res, 'x-amz-checksum-crc32'));
      if (echoed === crc32) {
        this.checksums.validated(operation);
        return res;
      }
      if (echoed !== undefined) {
        await fail(`the server computed CRC-32 ${crc32Hex(echoed)} of the bytes it received, not ${crc32Hex(crc32)}: they were altered on the way`, 'BadDigest');
      }
      if (!this.checksums.mayFallBack) {
        await fail(
          "checksums: crc32 is set, but the server's answer did not echo the CRC-32 (x-amz-checksum-crc32): it does not validate it; set checksums: auto (or md5)",
        );
      }
      this.checksums.ignored(operation);
      if (withMd5) return res; // the server validated Content-MD5
      // Sent with the CRC-32 alone to a server that ignored it: sent again, checked by Content-MD5.
      flexible = false;
      withMd5 = true;
    }
  }

  private describeStoreError(err: unknown): string {
    const { code, status } = err as StoreRequestError;
    return code ? `${code}${status ? `, HTTP ${status}` : ''}` : (err as Error).message;
  }

  private withHint(err: unknown, hint: string): Error {
    const e = err as StoreRequestError;
    return new StoreRequestError(`${e.message}: ${hint}`, e.status, e.code);
  }

  /**
   * With server_side_encryption set, the answer must confirm it (x-amz-server-side-encryption):
   * a server that accepts the header and stores plaintext (Ceph RGW 16) says nothing. Returns
   * the reason the answer does not confirm it, or undefined.
   */
  private unconfirmedEncryption(res: Answer, operation: string): string | undefined {
    const wanted = this.config.serverSideEncryption;
    if (!wanted) return undefined;
    const answered = header(res, SSE_HEADER);
    if (answered === wanted) return undefined;
    const said = answered === undefined ? `said nothing of it (no ${SSE_HEADER} header)` : `said ${SSE_HEADER}: ${answered}`;
    return `server_side_encryption: ${wanted} is set, but the server's answer to ${operation} ${said}: it may store the object unencrypted (use a server that encrypts, or remove server_side_encryption)`;
  }

  /** Fails an upload whose result cannot stand, removing what it stored. */
  private async removeAndFail(key: string, why: string, remove: () => Promise<void>, removed: string): Promise<never> {
    let outcome = removed;
    try {
      await remove();
    } catch (err) {
      outcome = `removing it failed too: ${(err as Error).message}`;
    }
    throw new StoreRequestError(`uploading ${this.url(key)}: ${why}; ${outcome}`);
  }

  private async deleteObject(key: string): Promise<void> {
    const res = await this.exchange({ method: 'DELETE', key }, 'deleting');
    res.resume();
  }

  async putObject(key: string, body: Buffer, crc32: number, signal?: AbortSignal): Promise<void> {
    const crc = crc32ToBase64(crc32);
    const res = await this.sendUpload(
      {
        method: 'PUT',
        key,
        body,
        headers: { ...this.objectHeaders, [CRC_METADATA]: crc, ...this.lockHeaders(key, body) },
        throttle: this.upThrottle,
        signal,
      },
      'uploading',
      'PutObject',
      crc32,
      // x-amz-sdk-checksum-algorithm: what AWS SDKs send beside the checksum; some servers (moto) keep it only then.
      { 'x-amz-sdk-checksum-algorithm': 'CRC32', 'x-amz-checksum-crc32': crc },
      () => this.deleteObject(key),
    );
    const unencrypted = this.unconfirmedEncryption(res, 'PutObject');
    if (unencrypted) await this.removeAndFail(key, unencrypted, () => this.deleteObject(key), 'it was deleted');
  }

  /** object_lock_mode: the retention of a new object, and for a PUT the Content-MD5 S3 requires with it. */
  private lockHeaders(key: string, body?: Buffer): Record<string, string> {
    const lock = objectLockHeaders(key, this.config.objectLockMode, this.config.objectLockDays);
    return body && lock['x-amz-object-lock-mode'] ? { ...lock, 'content-md5': contentMd5(body) } : lock;
  }

  /** Whether the bucket has S3 Object Lock enabled (GET ?object-lock); undefined when access to that is denied. */
  async objectLockEnabled(): Promise<boolean | undefined> {
    try {
      const xml = await this.xmlResult({ method: 'GET', query: { 'object-lock': '' }, about: '' }, 'reading the object lock configuration of');
      return text(xml, 'ObjectLockEnabled') === 'Enabled';
    } catch (err) {
      const code = (err as StoreRequestError).code;
      if (code === 'AccessDenied') return undefined;
      // Not configured, or a server without object lock.
      if (code === 'ObjectLockConfigurationNotFoundError' || code === 'NotImplemented' || (err as StoreRequestError).status === 501) return false;
      throw err;
    }
  }

  /** PUT ?retention: the object's retention set after it was written (for servers that drop it on multipart uploads). */
  async putObjectRetention(key: string, mode: string, retainUntil: string): Promise<void> {
    const body = Buffer.from(
      `<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>${xmlEncode(mode)}</Mode><RetainUntilDate>${xmlEncode(retainUntil)}</RetainUntilDate></Retention>`,
    );
    const res = await this.exchange(
      { method: 'PUT', key, query: { retention: '' }, headers: { 'content-type': 'application/xml', 'content-md5': contentMd5(body) }, body, signBody: true },
      'setting the object lock retention of',
    );
    res.resume();
  }

  async createMultipartUpload(key: string, layout?: PartLayout): Promise<string> {
    // A create retried after a lost answer may have started an upload whose ID nobody knows:
    // after any retry, uploads of this key other than ours are aborted.
    let retried = false;
    const action = 'starting multipart upload of';
    const headers = { ...this.objectHeaders, ...this.lockHeaders(key) };
    if (layout) headers[LAYOUT_METADATA] = `${layout.partSize},${layout.partsPerDoubling}`;
    let flexible = this.checksums.sendFlexible;
    let answer: { body: string; res: Answer };
    for (;;) {
      const spec: RequestSpec = {
        method: 'POST',
        key,
        query: { uploads: '' },
        headers: flexible ? { ...headers, 'x-amz-checksum-algorithm': 'CRC32', 'x-amz-checksum-type': 'FULL_OBJECT' } : headers,
        onRetry: () => (retried = true),
      };
      try {
        answer = await this.xmlAnswer(spec, action);
        break;
      } catch (err) {
        if (!flexible || !isChecksumRefusal(err)) throw err;
        if (!this.checksums.mayFallBack) throw this.withHint(err, 'the server refuses flexible checksums: set checksums: auto (or md5)');
        this.checksums.refused('CreateMultipartUpload', this.describeStoreError(err));
        flexible = false;
      }
    }
    const uploadId = text(answer.body, 'UploadId');
    if (!uploadId) throw new StoreRequestError(`${action} ${this.url(key)}: the server returned no upload ID`);
    if (retried) await this.abortOtherUploads(key, uploadId);
    if (flexible) this.flexibleUploads.add(uploadId);
    const unencrypted = this.unconfirmedEncryption(answer.res, 'CreateMultipartUpload');
    if (unencrypted) {
      await this.removeAndFail(key, unencrypted, () => this.abortMultipartUpload(key, uploadId), 'its multipart upload was aborted');
    }
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
    const res = await this.sendUpload(
      {
        method: 'PUT',
        key,
        query: { partNumber: String(partNumber), uploadId },
        // Object lock: S3 requires Content-MD5 (or a checksum it validates) with retention.
        headers: this.config.objectLockMode ? { 'content-md5': contentMd5(body) } : {},
        body,
        throttle: this.upThrottle,
        signal,
      },
      `uploading part ${partNumber} of`,
      'UploadPart',
      crc32,
      this.flexibleUploads.has(uploadId) ? { 'x-amz-checksum-crc32': crc32ToBase64(crc32) } : undefined,
    );
    const etag = header(res, 'etag');
    if (!etag) throw new StoreRequestError(`uploading part ${partNumber} of ${this.url(key)}: the server returned no ETag`);
    return etag;
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[], crc32: number): Promise<void> {
    // Parts' CRC-32s for an upload created with them, unless the server showed it ignores or refuses them.
    const partChecksums = this.flexibleUploads.has(uploadId) && this.checksums.sendFlexible;
    const xml =
      '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      parts
        .map(
          p =>
            `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${xmlEncode(p.etag)}</ETag>` +
            (partChecksums ? `<ChecksumCRC32>${crc32ToBase64(p.crc32)}</ChecksumCRC32>` : '') +
            '</Part>',
        )
        .join('') +
      '</CompleteMultipartUpload>';
    let fullObject = partChecksums && !this.checksums.fullObjectRefused;
    let answer: { body: string; res: Answer };
    for (;;) {
      const headers: Record<string, string> = { 'content-type': 'application/xml' };
      if (fullObject) Object.assign(headers, { 'x-amz-checksum-crc32': crc32ToBase64(crc32), 'x-amz-checksum-type': 'FULL_OBJECT' });
      try {
        answer = await this.xmlAnswer(
          { method: 'POST', key, query: { uploadId }, headers, body: Buffer.from(xml), signBody: true },
          'completing multipart upload of',
        );
        break;
      } catch (err) {
        // A retried complete whose first try went through finds the upload gone: the object tells.
        if ((err as StoreRequestError).code === 'NoSuchUpload') {
          const head = await this.headObject(key);
          if (head && head.crc32 === crc32) return;
        }
        if (fullObject && this.checksums.mayFallBack && isChecksumRefusal(err, true)) {
          log.verbose(
            `checksums: the server refused the full-object CRC-32 of CompleteMultipartUpload (${this.describeStoreError(err)}); completing without it (each part was checked on its way)`,
          );
          this.checksums.fullObjectRefused = true;
          fullObject = false;
          continue;
        }
        throw err;
      }
    }
    this.flexibleUploads.delete(uploadId);
    if (fullObject) {
      const answered = crc32FromBase64(text(answer.body, 'ChecksumCRC32') ?? header(answer.res, 'x-amz-checksum-crc32'));
      if (answered !== undefined && answered !== crc32) {
        await this.removeAndFail(
          key,
          `the server gives the object CRC-32 ${crc32Hex(answered)}, not ${crc32Hex(crc32)}: it was assembled wrong`,
          () => this.deleteObject(key),
          'it was deleted',
        );
      }
    }
    const unencrypted = this.unconfirmedEncryption(answer.res, 'CompleteMultipartUpload');
    if (unencrypted) await this.removeAndFail(key, unencrypted, () => this.deleteObject(key), 'it was deleted');
  }

  async abortMultipartUpload(key: string, uploadId: string, opts: { deadlineMs?: number } = {}): Promise<void> {
    const action = 'aborting multipart upload of';
    const deadline = opts.deadlineMs === undefined ? undefined : AbortSignal.timeout(opts.deadlineMs);
    try {
      const res = await this.exchange(
        { method: 'DELETE', key, query: { uploadId }, signal: deadline, attempts: deadline ? 1 : undefined },
        action,
      );
      res.resume();
    } catch (err) {
      if ((err as StoreRequestError).status === 404 || err instanceof NotFoundError) return; // NoSuchUpload: already gone
      if (deadline?.aborted) throw new StoreRequestError(`${action} ${this.url(key)}: no answer within ${opts.deadlineMs} ms`);
      throw err;
    }
  }

  async *listMultipartUploads(prefix: string): AsyncIterable<MultipartUploadInfo> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const query: Record<string, string> = { uploads: '', prefix };
      if (keyMarker !== undefined) query['key-marker'] = keyMarker;
      if (uploadIdMarker !== undefined) query['upload-id-marker'] = uploadIdMarker;
      const xml = await this.xmlResult({ method: 'GET', query, about: prefix }, 'listing multipart uploads under');
      for (const upload of elements(xml, 'Upload')) {
        const key = text(upload, 'Key');
        const uploadId = text(upload, 'UploadId');
        // A server that ignores the prefix must not hand out other backups' uploads.
        if (key === undefined || uploadId === undefined || !key.startsWith(prefix)) continue;
        yield { key, uploadId, initiated: new Date(text(upload, 'Initiated') ?? Number.NaN) };
      }
      const more = text(xml, 'IsTruncated') === 'true';
      keyMarker = more ? text(xml, 'NextKeyMarker') : undefined;
      uploadIdMarker = more ? text(xml, 'NextUploadIdMarker') : undefined;
    } while (keyMarker);
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
    const checks = { etag: header(res, 'etag')?.replace(/"/g, ''), partLayout: parseLayout(header(res, LAYOUT_METADATA)), encrypted: header(res, SSE_HEADER) !== undefined };
    if (res instanceof DirectResponse) {
      const answer = res;
      return {
        size,
        start,
        length,
        body: Readable.from(answer),
        crc32,
        multipart,
        ...checks,
        fill: (into, offset, crc) => answer.fill(into, offset, into.length - offset, crc),
      };
    }
    const body = this.downThrottle ? Readable.from(throttled(res, this.downThrottle, signal)) : res;
    return { size, start, length, body, crc32, multipart, ...checks };
  }

  async headObject(key: string): Promise<ObjectHead | undefined> {
    let res: Answer;
    let checksumMode = this.checksums.askChecksumMode;
    for (;;) {
      try {
        const headers: Record<string, string> = checksumMode ? { 'x-amz-checksum-mode': 'ENABLED' } : {};
        res = await this.exchange({ method: 'HEAD', key, headers }, 'reading the size of');
        break;
      } catch (err) {
        if (err instanceof NotFoundError && err.code === 'NoSuchKey') return undefined;
        // B2 refuses x-amz-checksum-mode (400, and a HEAD's answer has no body to say why).
        if (!checksumMode || !isChecksumRefusal(err)) throw err;
        log.verbose(`checksums: the server refused x-amz-checksum-mode on HeadObject (${this.describeStoreError(err)}); asking again without it, and no later HEAD asks`);
        this.checksums.headModeRefused = true;
        checksumMode = false;
      }
    }
    res.resume();
    // A COMPOSITE checksum (checksum of the parts' checksums) is not the content's CRC.
    const native = header(res, 'x-amz-checksum-type') === 'COMPOSITE' ? undefined : header(res, 'x-amz-checksum-crc32');
    const crc32 = crc32FromBase64(native?.includes('-') ? undefined : native) ?? crc32FromBase64(header(res, CRC_METADATA));
    const lockedUntil = header(res, 'x-amz-object-lock-retain-until-date');
    const lockMode = header(res, 'x-amz-object-lock-mode');
    return { size: Number(header(res, 'content-length') ?? 0), crc32, ...(lockedUntil ? { lockedUntil, lockMode } : {}) };
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
        if (key !== undefined) yield { key: decode(key), size: Number(text(item, 'Size') ?? 0), lastModified: dateOf(text(item, 'LastModified')) };
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
