/**
 * Options whose only effect is on what reaches the server: the headers of
 * server_side_encryption and storage_class, the CRC-32 headers of every
 * upload, virtual-hosted addressing (force_path_style off), and the
 * bandwidth limits. A proxy with no faults records every request between the
 * built plugin and a real S3 server; every case also round-trips its data.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { crc32 } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { startFaultProxy, type FaultProxy, type ProxyRequestInfo } from '../support/fault-proxy.js';
import { PluginEnv, patternBytes, type Options, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const MiB = 1024 * 1024;
const BUCKET = 'gpbackup-options';
const TS = '20240102030405';

let s3: TestS3Server;
let env: PluginEnv;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

function b64crc(data: Buffer): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32(data));
  return b.toString('base64');
}

type Operation = 'PutObject' | 'CreateMultipartUpload' | 'UploadPart' | 'CompleteMultipartUpload' | 'GetObject' | 'HeadObject' | 'other';

function operation(r: ProxyRequestInfo): Operation {
  if (r.method === 'PUT') return r.query.has('uploadId') ? 'UploadPart' : 'PutObject';
  if (r.method === 'POST' && r.query.has('uploads')) return 'CreateMultipartUpload';
  if (r.method === 'POST' && r.query.has('uploadId')) return 'CompleteMultipartUpload';
  if (r.method === 'GET' && !r.query.has('list-type') && !r.query.has('uploads')) return 'GetObject';
  if (r.method === 'HEAD') return 'HeadObject';
  return 'other';
}

function ofOperation(requests: ProxyRequestInfo[], op: Operation): ProxyRequestInfo[] {
  return requests.filter(r => operation(r) === op);
}

interface Transfer {
  proxy: FaultProxy;
  /** Milliseconds from the first request reaching the proxy to the plugin's exit. */
  spanMs(): number;
  run(args: string[], stdin?: Buffer): Promise<RunResult>;
  stop(): Promise<void>;
}

/** A proxy in front of the server, a config pointing the plugin at it, and timing of what passes. */
async function through(folder: string, extra: Options, configName: string, pointAt: 'endpoint' | 'http_proxy' = 'endpoint'): Promise<Transfer> {
  let firstArrival: number | undefined;
  let exitedAt = 0;
  // deny() sees every request as it arrives: a timestamp, and nothing denied.
  const proxy = await startFaultProxy({
    target: s3.endpoint,
    deny: () => {
      firstArrival ??= performance.now();
      return false;
    },
  });
  const options: Options = { ...testOptions(s3, BUCKET, folder), ...extra };
  if (pointAt === 'endpoint') options.endpoint = proxy.endpoint;
  else {
    delete options.endpoint;
    options.http_proxy = proxy.endpoint;
  }
  const cfg = env.writeConfig(options, configName);
  return {
    proxy,
    spanMs: () => exitedAt - (firstArrival ?? exitedAt),
    async run(args, stdin) {
      const r = await env.run([args[0], cfg, ...args.slice(1)], { stdin });
      exitedAt = performance.now();
      return r;
    },
    stop: () => proxy.stop(),
  };
}

/** backup_data of `data`, then restore_data of it: both must succeed and the bytes match. */
async function roundTrip(t: Transfer, file: string, data: Buffer): Promise<void> {
  const path = env.backupPath(TS, file);
  const up = await t.run(['backup_data', path], data);
  assert.equal(up.code, 0, up.stderr);
  const down = await t.run(['restore_data', path]);
  assert.equal(down.code, 0, down.stderr);
  assert.ok(down.stdout.equals(data), `restored ${down.stdout.length} bytes of ${data.length}`);
}

const SMALL = patternBytes(1000, 3); // one PutObject
const LARGE = patternBytes(6 * MiB + 123, 4); // 5 MB parts: CreateMultipartUpload, two UploadParts, CompleteMultipartUpload

describe('headers of new objects', () => {
  for (const { name, extra, expected } of [
    {
      name: 'server_side_encryption AES256',
      extra: { server_side_encryption: 'AES256' },
      expected: { 'x-amz-server-side-encryption': 'AES256' },
    },
    {
      name: 'server_side_encryption aws:kms with sse_kms_key_id',
      extra: { server_side_encryption: 'aws:kms', sse_kms_key_id: 'alias/gpbackup' },
      expected: { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'alias/gpbackup' },
    },
    {
      name: 'storage_class STANDARD_IA',
      extra: { storage_class: 'STANDARD_IA' },
      expected: { 'x-amz-storage-class': 'STANDARD_IA' },
    },
  ]) {
    test(`${name}: on PutObject and CreateMultipartUpload, not on parts or completion`, async () => {
      const t = await through(`hdr-${Object.values(extra).join('-').replace(/\W/g, '')}`, extra, 'hdr.yaml');
      try {
        await roundTrip(t, 'small', SMALL);
        await roundTrip(t, 'large', LARGE);
        const reqs = t.proxy.requests;
        const withHeaders = [...ofOperation(reqs, 'PutObject'), ...ofOperation(reqs, 'CreateMultipartUpload')];
        const without = [...ofOperation(reqs, 'UploadPart'), ...ofOperation(reqs, 'CompleteMultipartUpload')];
        assert.equal(withHeaders.length, 2);
        assert.equal(without.length, 3);
        for (const r of withHeaders) {
          for (const [h, v] of Object.entries(expected)) assert.equal(r.headers[h], v, `${operation(r)} ${h}`);
        }
        for (const r of without) {
          for (const h of Object.keys(expected)) assert.equal(r.headers[h], undefined, `${operation(r)} ${h}`);
        }
      } finally {
        await t.stop();
      }
    });
  }

  test('without those options no such header is sent', async () => {
    const t = await through('hdr-none', {}, 'hdr.yaml');
    try {
      await roundTrip(t, 'small', SMALL);
      for (const r of t.proxy.requests) {
        for (const h of ['x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id', 'x-amz-storage-class']) {
          assert.equal(r.headers[h], undefined, `${operation(r)} ${h}`);
        }
      }
    } finally {
      await t.stop();
    }
  });
});

describe('CRC-32 of every upload', () => {
  test('PutObject carries the checksum and the metadata copy; multipart declares CRC32 FULL_OBJECT, each part its own, completion the whole', async () => {
    const t = await through('crc', {}, 'crc.yaml');
    try {
      await roundTrip(t, 'small', SMALL);
      await roundTrip(t, 'large', LARGE);
      const reqs = t.proxy.requests;

      const [put] = ofOperation(reqs, 'PutObject');
      assert.equal(put.headers['x-amz-checksum-crc32'], b64crc(SMALL));
      assert.equal(put.headers['x-amz-meta-gpbackup-crc32'], b64crc(SMALL));
      assert.equal(put.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD');

      const [create] = ofOperation(reqs, 'CreateMultipartUpload');
      assert.equal(create.headers['x-amz-checksum-algorithm'], 'CRC32');
      assert.equal(create.headers['x-amz-checksum-type'], 'FULL_OBJECT');

      // Parts in part-number order, each checked against its slice of the data.
      const parts = ofOperation(reqs, 'UploadPart').sort((a, b) => Number(a.query.get('partNumber')) - Number(b.query.get('partNumber')));
      assert.equal(parts.length, 2);
      let offset = 0;
      for (const p of parts) {
        const slice = LARGE.subarray(offset, offset + p.bodyBytes);
        offset += p.bodyBytes;
        assert.equal(p.headers['x-amz-checksum-crc32'], b64crc(slice), `part ${p.query.get('partNumber')}`);
        assert.equal(p.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD');
      }
      assert.equal(offset, LARGE.length);

      const [complete] = ofOperation(reqs, 'CompleteMultipartUpload');
      assert.equal(complete.headers['x-amz-checksum-crc32'], b64crc(LARGE));
      assert.equal(complete.headers['x-amz-checksum-type'], 'FULL_OBJECT');
    } finally {
      await t.stop();
    }
  });
});

describe('addressing', () => {
  test('force_path_style on (default): the bucket is the first path segment, the Host the endpoint', async () => {
    const t = await through('addr-path', {}, 'path.yaml');
    try {
      await roundTrip(t, 'small', SMALL);
      for (const r of t.proxy.requests) {
        assert.equal(r.headers.host, `127.0.0.1:${t.proxy.port}`);
        assert.ok(r.path.startsWith(`/${BUCKET}/addr-path/`), r.path);
      }
    } finally {
      await t.stop();
    }
  });

  test('force_path_style off: Host <bucket>.<endpoint host>, the key alone in the path', async () => {
    // *.localhost does not resolve here, so the plugin reaches the server through
    // http_proxy: it asks the proxy for http://<bucket>.s3.us-east-1.amazonaws.com/<key>
    // (absolute form) and no name is ever looked up. AWS's own host name, because that
    // is the form s3rver (and S3) takes the bucket from.
    const t = await through('addr-vhost', { force_path_style: 'off', region: 'us-east-1' }, 'vhost.yaml', 'http_proxy');
    try {
      await roundTrip(t, 'small', SMALL);
      await roundTrip(t, 'large', LARGE);
      const list = await t.run(['list_directory']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout.toString(), /addr-vhost\/backups\/20240102\/20240102030405\/large\s+6291579/);
      assert.ok(t.proxy.requests.length >= 8);
      for (const r of t.proxy.requests) {
        assert.equal(r.headers.host, `${BUCKET}.s3.us-east-1.amazonaws.com`, `${r.method} ${r.path}`);
        assert.ok(!r.path.startsWith(`/${BUCKET}`), r.path);
        assert.ok(r.path === '/' || r.path.startsWith('/addr-vhost/'), r.path);
      }
      // The objects are where path-style requests find them.
      assert.ok((await s3.getObject(BUCKET, `addr-vhost/backups/20240102/${TS}/small`))?.equals(SMALL));
    } finally {
      await t.stop();
    }
  });
});

describe('bandwidth limits', () => {
  const DATA = patternBytes(12 * MiB, 5);
  const EXPECTED_MS = 3000; // 12 MiB at 4 MB/s (1024-based, as every size option)

  test('backup_max_bandwidth 4MB/s: a 12 MiB stream takes 3 s (+-10 %)', async t0 => {
    const t = await through('bw-up', { backup_max_bandwidth: '4MB/s' }, 'bw-up.yaml');
    try {
      const r = await t.run(['backup_data', env.backupPath(TS, 'bw')], DATA);
      assert.equal(r.code, 0, r.stderr);
      const ms = t.spanMs();
      t0.diagnostic(`${Math.round(ms)} ms`);
      assert.ok(Math.abs(ms - EXPECTED_MS) <= EXPECTED_MS * 0.1, `took ${Math.round(ms)} ms`);
      assert.equal(ofOperation(t.proxy.requests, 'UploadPart').reduce((n, p) => n + p.bodyBytes, 0), DATA.length);
    } finally {
      await t.stop();
    }
  });

  test('restore_max_bandwidth 4MB: restoring a 12 MiB object takes 3 s (+-10 %)', async t0 => {
    const up = await through('bw-down', {}, 'bw-down-up.yaml');
    try {
      const r = await up.run(['backup_data', env.backupPath(TS, 'bw')], DATA);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await up.stop();
    }
    const t = await through('bw-down', { restore_max_bandwidth: '4MB' }, 'bw-down.yaml');
    try {
      const r = await t.run(['restore_data', env.backupPath(TS, 'bw')]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(DATA));
      const ms = t.spanMs();
      t0.diagnostic(`${Math.round(ms)} ms`);
      assert.ok(Math.abs(ms - EXPECTED_MS) <= EXPECTED_MS * 0.1, `took ${Math.round(ms)} ms`);
    } finally {
      await t.stop();
    }
  });
});
