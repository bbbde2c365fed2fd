/**
 * The ObjectStore over Amazon S3 and S3-compatible servers (AWS SDK v3).
 * Every error names the operation and the s3:// URL it was about.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import type { PluginConfig } from '../config/types.js';
import { PluginError } from '../protocol/errors.js';
import { s3Url } from './keys.js';
import {
  NotFoundError,
  type CompletedPart,
  type DeleteFailure,
  type ObjectInfo,
  type ObjectStore,
  type RangeResponse,
} from './store.js';

/** The region requests are signed for when only an endpoint is configured. */
export const DEFAULT_SIGNING_REGION = 'us-east-1';

interface SdkError {
  name?: string;
  message?: string;
  Code?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function statusOf(err: unknown): number | undefined {
  return (err as SdkError)?.$metadata?.httpStatusCode;
}

/** `NoSuchKey: The specified key does not exist. (HTTP 404)`, or the network error. */
export function describeSdkError(err: unknown): string {
  const e = err as SdkError;
  const code = e?.Code ?? (e?.name && e.name !== 'Error' ? e.name : e?.code);
  const status = statusOf(err);
  let message = e?.message && e.message !== 'UnknownError' ? e.message : '';
  if (!message && status === 404) message = 'not found';
  if (!message && status === 403) message = 'access denied';
  const text = [code && !message.startsWith(code) ? `${code}:` : '', message].filter(Boolean).join(' ');
  return (status ? `${text} (HTTP ${status})` : text || String(err)).replace(/\s*\n\s*/g, ' ');
}

function isNotFound(err: unknown): boolean {
  const e = err as SdkError;
  return statusOf(err) === 404 || e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.name === 'NoSuchBucket';
}

/** http(s)://host[:port] from the endpoint option, with the scheme `encryption` implies when none is given. */
export function endpointUrl(endpoint: string, useTls: boolean): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `${useTls ? 'https' : 'http'}://${endpoint}`;
  return withScheme.replace(/\/+$/, '');
}

/** Parses `bytes 0-99/1234` into the total size. */
function totalFromContentRange(contentRange: string | undefined): number | undefined {
  const m = contentRange && /\/(\d+)\s*$/.exec(contentRange);
  return m ? Number(m[1]) : undefined;
}

async function clientConfig(config: PluginConfig, maxSockets: number): Promise<S3ClientConfig> {
  const agentOptions = { keepAlive: true, maxSockets, rejectUnauthorized: true };
  let httpAgent: HttpAgent = new HttpAgent(agentOptions);
  let httpsAgent: HttpsAgent = new HttpsAgent(agentOptions);
  if (config.httpProxy) {
    // One proxy for every request, as the Go plugin's http_proxy option.
    const [{ HttpProxyAgent }, { HttpsProxyAgent }] = await Promise.all([
      import('http-proxy-agent'),
      import('https-proxy-agent'),
    ]);
    httpAgent = new HttpProxyAgent(config.httpProxy, agentOptions);
    httpsAgent = new HttpsProxyAgent(config.httpProxy, agentOptions);
  }
  return {
    region: config.region || DEFAULT_SIGNING_REGION,
    endpoint: config.endpoint ? endpointUrl(config.endpoint, config.useTls) : undefined,
    tls: config.useTls,
    forcePathStyle: true,
    credentials:
      config.accessKeyId && config.secretAccessKey
        ? {
            accessKeyId: config.accessKeyId,
            secretAccessKey: config.secretAccessKey,
            sessionToken: config.sessionToken,
          }
        : undefined, // the SDK's default chain: env, shared files, SSO, web identity, container and instance roles
    // Checksums only where S3 requires them (DeleteObjects): they cost CPU on every byte.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 5,
    requestHandler: new NodeHttpHandler({
      httpAgent,
      httpsAgent,
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    }),
  };
}

export async function createS3Store(config: PluginConfig, maxSockets: number): Promise<S3Store> {
  const client = new S3Client(await clientConfig(config, maxSockets));
  if (config.removeDuplicateBucket) {
    // For endpoints that already route to the bucket: drop the /<bucket> path segment.
    client.middlewareStack.add(
      next => async args => {
        const req = args.request as { path?: string };
        const prefix = `/${config.bucket}`;
        if (req.path === prefix || req.path?.startsWith(`${prefix}/`)) req.path = req.path.slice(prefix.length) || '/';
        return next(args);
      },
      { step: 'build', name: 'removeDuplicateBucket' },
    );
  }
  return new S3Store(client, config.bucket);
}

export class S3Store implements ObjectStore {
  constructor(private readonly client: S3Client, readonly bucket: string) {}

  private fail(action: string, key: string, err: unknown): never {
    const where = s3Url(this.bucket, key);
    if (isNotFound(err)) {
      const e = err as SdkError;
      const bucketMissing = e?.name === 'NoSuchBucket' || e?.Code === 'NoSuchBucket';
      throw new NotFoundError(
        bucketMissing
          ? `${action} ${where}: bucket "${this.bucket}" does not exist`
          : `${action} ${where}: no such object`,
        bucketMissing ? 'NoSuchBucket' : 'NoSuchKey',
      );
    }
    throw new PluginError(`${action} ${where}: ${describeSdkError(err)}`);
  }

  async putObject(key: string, body: Buffer, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length }), {
        abortSignal: signal,
      });
    } catch (err) {
      this.fail('uploading', key, err);
    }
  }

  async createMultipartUpload(key: string): Promise<string> {
    try {
      const r = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }));
      if (!r.UploadId) throw new Error('the server returned no upload ID');
      return r.UploadId;
    } catch (err) {
      this.fail('starting multipart upload of', key, err);
    }
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, signal?: AbortSignal): Promise<string> {
    try {
      const r = await this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
        { abortSignal: signal },
      );
      if (!r.ETag) throw new Error('the server returned no ETag');
      return r.ETag;
    } catch (err) {
      this.fail(`uploading part ${partNumber} of`, key, err);
    }
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map(p => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
    } catch (err) {
      this.fail('completing multipart upload of', key, err);
    }
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if (statusOf(err) === 404) return; // NoSuchUpload: already gone
      this.fail('aborting multipart upload of', key, err);
    }
  }

  async getRange(key: string, start: number, end: number, signal?: AbortSignal): Promise<RangeResponse> {
    let r;
    try {
      r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }),
        { abortSignal: signal },
      );
    } catch (err) {
      // S3 answers a range on an empty object with 416: a range from 0 is unsatisfiable only then.
      if (statusOf(err) === 416 && start === 0) return { size: 0, start: 0, length: 0, body: Readable.from([]) };
      this.fail('downloading', key, err);
    }
    const body = r.Body as Readable;
    const size = totalFromContentRange(r.ContentRange) ?? (r.ContentRange ? undefined : r.ContentLength);
    if (size === undefined) {
      body.destroy();
      throw new PluginError(`downloading ${s3Url(this.bucket, key)}: the server's answer did not say the object's size`);
    }
    if (!r.ContentRange && start > 0) {
      body.destroy();
      throw new PluginError(`downloading ${s3Url(this.bucket, key)}: the server ignored the byte range`);
    }
    // The size is authoritative: some servers send a bogus body for an empty object's range.
    const length = Math.max(0, Math.min(end, size) - start);
    if (length === 0) body.destroy();
    return { size, start, length, body };
  }

  async headObject(key: string): Promise<number | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.ContentLength ?? 0;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      this.fail('reading the size of', key, err);
    }
  }

  async *listObjects(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let r;
      try {
        r = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
      } catch (err) {
        this.fail('listing', prefix, err);
      }
      for (const o of r.Contents ?? []) {
        if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0 };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async deleteObjects(keys: string[]): Promise<DeleteFailure[]> {
    if (keys.length === 0) return [];
    try {
      const r = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.map(Key => ({ Key })), Quiet: true },
        }),
      );
      return (r.Errors ?? []).map(e => ({
        key: e.Key ?? '?',
        message: [e.Code, e.Message].filter(Boolean).join(': ') || 'unknown error',
      }));
    } catch (err) {
      this.fail('deleting objects under', keys[0], err);
    }
  }
}
