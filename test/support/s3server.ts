/**
 * A real S3-compatible server on 127.0.0.1 for the integration tests, started
 * as its own process and stopped by the test that started it.
 *
 * Default: s3rver from npm (installed by `npm ci`). With S3_TEST_SERVER=moto,
 * `moto_server` is used instead where it is on the PATH. With S3_TEST_SERVER=rgw,
 * Ceph RGW (Debian's radosgw): the instance at RGW_ENDPOINT when set (scripts/test.mjs
 * starts one for the whole RGW tier), else one of its own (test/support/ceph-rgw.mjs,
 * ~15 s). RGW checks SigV4 signatures; a shared instance is cleaned by stop(): every
 * bucket this server created is emptied and deleted.
 *
 * The helper's own client writes as the Go plugin does, with no flexible
 * checksum: an object it puts has no stored CRC-32.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, stat, truncate } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchS3rver } from './s3rver-launch.mjs';
import { startRgw } from './ceph-rgw.mjs';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';

/** A key pair s3rver-main.cjs registers; the secret appears nowhere else, so output can be searched for it. */
export const TEST_ACCESS_KEY = 'GPBTESTACCESSKEY';
export const TEST_SECRET_KEY = 'gpb-Test/Secret+Key-do-not-print-0123456789';

export interface TestS3Server {
  kind: 's3rver' | 'moto' | 'rgw';
  endpoint: string;
  port: number;
  client: S3Client;
  createBucket(name: string): Promise<void>;
  putObject(bucket: string, key: string, body: Buffer | string): Promise<void>;
  getObject(bucket: string, key: string): Promise<Buffer | undefined>;
  headObject(bucket: string, key: string): Promise<{ size: number; metadata: Record<string, string> } | undefined>;
  deleteObject(bucket: string, key: string): Promise<void>;
  listKeys(bucket: string, prefix?: string): Promise<string[]>;
  listMultipartUploads(bucket: string): Promise<string[]>;
  /**
   * Whether the server keeps the flexible checksums (x-amz-checksum-crc32) it is sent and reports
   * them on HEAD, as AWS does (s3rver through s3rver-main.cjs, moto). Ceph RGW 16 accepts them,
   * validates none and stores none.
   */
  keepsChecksums: boolean;
  /** The x-amz-checksum-crc32 the server reports for the object with checksum mode on (base64), if any. */
  headChecksum(bucket: string, key: string): Promise<string | undefined>;
  /** s3rver only (undefined for moto and rgw): the file s3rver keeps the object's bytes in. */
  objectPath(bucket: string, key: string): string | undefined;
  /** s3rver only: flips every bit of the stored byte at `offset`, as bit rot would; the server notices nothing. */
  corruptObject(bucket: string, key: string, offset: number): Promise<void>;
  /** s3rver only: cuts the stored object to `newSize` bytes; the server then serves (and sizes) the shorter object. */
  truncateObject(bucket: string, key: string, newSize: number): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise(r => setTimeout(r, 100));
    }
  }
}

/** A server that dies before the test stops it says so, with the end of its output. */
function reportUnexpectedExit(child: ChildProcess, tail: () => string): void {
  child.once('exit', (code, signal) => {
    if (!stopping.has(child)) process.stderr.write(`S3 test server exited unexpectedly (${code ?? signal}):\n${tail()}\n`);
  });
}

const stopping = new WeakSet<ChildProcess>();

function serverKind(): TestS3Server['kind'] {
  const k = process.env.S3_TEST_SERVER;
  return k === 'moto' || k === 'rgw' ? k : 's3rver';
}

export async function startS3Server(): Promise<TestS3Server> {
  const kind = serverKind();
  let child: ChildProcess | undefined;
  let port: number;
  let dataDir: string | undefined;
  let endpoint: string;
  let stopRgw: (() => Promise<void>) | undefined;
  if (kind === 'rgw') {
    if (process.env.RGW_ENDPOINT) {
      endpoint = process.env.RGW_ENDPOINT.replace(/\/$/, '');
    } else {
      const rgw = await startRgw();
      endpoint = rgw.endpoint;
      stopRgw = rgw.stop;
    }
    port = Number(new URL(endpoint).port);
  } else if (kind === 's3rver') {
    dataDir = mkdtempSync(join(tmpdir(), 's3rver-'));
    const server = launchS3rver(dataDir);
    child = server.child;
    port = await server.port;
    reportUnexpectedExit(child, server.tail);
  } else {
    port = await freePort();
    child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    reportUnexpectedExit(child, () => tail);
    await waitForHttp(`http://127.0.0.1:${port}/`, 20_000);
  }
  endpoint ??= `http://127.0.0.1:${port}`;
  // The SDK (here an independent client beside the plugin's own) would warn that it drops Node 20 in 2027.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY },
    // No CRC-32 unless a test gives one, and none checked unless asked for (ChecksumMode).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });

  function objectPath(bucket: string, key: string): string | undefined {
    if (!dataDir) return undefined;
    // s3rver's filesystem store: <dir>/<bucket>/<key's directories>/<key's last segment>._S3rver_object
    const segments = key.split('/');
    const last = segments.pop();
    return join(dataDir, bucket, ...segments, `${last}._S3rver_object`);
  }

  /** Deletes every object and multipart upload of a bucket (RGW instances are shared by test files). */
  async function emptyBucket(bucket: string): Promise<void> {
    for (const key of await listKeysOf(bucket)) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of r.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
  }

  async function listKeysOf(bucket: string, prefix?: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of r.Contents ?? []) keys.push(o.Key!);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  const created = new Set<string>();

  function storedFile(bucket: string, key: string): string {
    const path = objectPath(bucket, key);
    if (!path) throw new Error(`changing stored objects needs s3rver, not ${kind}`);
    return path;
  }

  return {
    kind,
    endpoint,
    port,
    client,
    keepsChecksums: kind !== 'rgw',
    async createBucket(name) {
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } catch (err) {
        // A shared RGW may still hold the bucket from an interrupted run: start from an empty one.
        if (kind !== 'rgw' || (err as { name?: string }).name !== 'BucketAlreadyExists') throw err;
        await emptyBucket(name);
      }
      created.add(name);
    },
    async putObject(bucket, key, body) {
      // The length is given: the SDK measures no string body itself, and warns of an unknown length.
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body) }));
    },
    async getObject(bucket, key) {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await r.Body!.transformToByteArray());
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
        throw err;
      }
    },
    async headObject(bucket, key) {
      try {
        const r = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { size: r.ContentLength ?? 0, metadata: r.Metadata ?? {} };
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
        throw err;
      }
    },
    async deleteObject(bucket, key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    listKeys: listKeysOf,
    async listMultipartUploads(bucket) {
      const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (r.Uploads ?? []).map(u => u.Key!);
    },
    async headChecksum(bucket, key) {
      const r = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
      return r.ChecksumCRC32;
    },
    objectPath,
    async corruptObject(bucket, key, offset) {
      const file = await open(storedFile(bucket, key), 'r+');
      try {
        const byte = Buffer.alloc(1);
        const { bytesRead } = await file.read(byte, 0, 1, offset);
        if (bytesRead !== 1) throw new Error(`s3://${bucket}/${key} has no byte at offset ${offset}`);
        byte[0] ^= 0xff;
        await file.write(byte, 0, 1, offset);
      } finally {
        await file.close();
      }
    },
    async truncateObject(bucket, key, newSize) {
      // s3rver takes an object's Content-Length from its file's size: cutting the file is all it takes.
      const path = storedFile(bucket, key);
      const { size } = await stat(path);
      if (newSize >= size) throw new Error(`s3://${bucket}/${key} has ${size} bytes: cannot truncate it to ${newSize}`);
      await truncate(path, newSize);
    },
    async stop() {
      if (kind === 'rgw') {
        if (!stopRgw) {
          for (const b of created) {
            await emptyBucket(b);
            await client.send(new DeleteBucketCommand({ Bucket: b }));
          }
        }
        client.destroy();
        await stopRgw?.();
        return;
      }
      client.destroy();
      if (!child) return;
      stopping.add(child);
      if (child.exitCode === null) {
        const exited = new Promise(r => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Plugin options for a test server, as gpbackup's per-host copy holds them
 * (pgport and backup_plugin_version injected), with small parts so that a few
 * MB exercise multipart uploads and parallel ranged GETs.
 */
export function testOptions(server: TestS3Server, bucket: string, folder: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    endpoint: server.endpoint,
    bucket,
    folder,
    aws_access_key_id: TEST_ACCESS_KEY,
    aws_secret_access_key: TEST_SECRET_KEY,
    encryption: 'off',
    backup_multipart_chunksize: '5MB',
    backup_max_concurrent_requests: '3',
    restore_multipart_chunksize: '5MB',
    restore_max_concurrent_requests: '3',
    restore_subset: 'on',
    pgport: '5432',
    backup_plugin_version: '',
    ...overrides,
  };
}
