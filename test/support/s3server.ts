/**
 * A real S3-compatible server on 127.0.0.1 for the integration tests, started
 * as its own process and stopped by the test that started it.
 *
 * Default: s3rver from npm (installed by `npm ci`). With S3_TEST_SERVER=moto,
 * `moto_server` is used instead where it is on the PATH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchS3rver } from './s3rver-launch.mjs';
import {
  CreateBucketCommand,
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
  kind: 's3rver' | 'moto';
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
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
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

export async function startS3Server(): Promise<TestS3Server> {
  const kind = process.env.S3_TEST_SERVER === 'moto' ? 'moto' : 's3rver';
  let child: ChildProcess;
  let port: number;
  let dataDir: string | undefined;
  if (kind === 's3rver') {
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
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY },
  });

  return {
    kind,
    endpoint,
    port,
    client,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async putObject(bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
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
    async listKeys(bucket, prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of r.Contents ?? []) keys.push(o.Key!);
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async listMultipartUploads(bucket) {
      const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (r.Uploads ?? []).map(u => u.Key!);
    },
    async stop() {
      client.destroy();
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
