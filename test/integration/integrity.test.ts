/**
 * End-to-end integrity: every object's CRC-32 reaches the server and is kept
 * there, and a restore checks every byte against it, so bytes that changed on
 * the server (a flipped bit, a cut object) fail the restore instead of reaching
 * gprestore. Objects written without a checksum (by the Go plugin) still restore.
 * Also the S3 checksum behaviour s3rver-main.cjs adds to s3rver, which the
 * plugin's tests rely on.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import {
  CompleteMultipartUploadCommand,
  type CompletedPart,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { PluginEnv, patternBytes, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const MB = 1024 * 1024;
const BUCKET = 'gpbackup-integrity';
const FOLDER = 'cluster1/integrity';
const TS = '20240607080910';

let s3: TestS3Server;
let env: PluginEnv;
let cfg: string;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER));
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

/** S3's form of a CRC-32: base64 of its 4 big-endian bytes. */
function crc32Base64(data: Buffer): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc32(data));
  return bytes.toString('base64');
}

function keyOf(file: string): string {
  return `${FOLDER}/backups/${TS.slice(0, 8)}/${TS}/${file}`;
}

/** backup_data of `data` as gpbackup_helper would; returns the local path and the object key. */
async function backupData(file: string, data: Buffer): Promise<{ path: string; key: string }> {
  const path = env.backupPath(TS, file);
  const r = await env.run(['backup_data', cfg, path], { stdin: data });
  assert.equal(r.code, 0, r.stderr);
  return { path, key: keyOf(file) };
}

/** A coordinator path for restore_file of the object `file`, in a directory holding only a placeholder. */
function restoreFileTarget(file: string): string {
  const dir = `coordinator-${file}/backups/${TS.slice(0, 8)}/${TS}`;
  return env.writeFile(`${dir}/placeholder`, '').replace(/placeholder$/, file);
}

function assertChecksumFailure(r: RunResult, what: string): void {
  assert.notEqual(r.code, 0, `${what} must fail`);
  assert.match(r.stderr, /checksum mismatch/, what);
  assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line on stderr, got ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /    at /, `${what}: no stack trace`);
}

/** restore_file must fail as restore_data does, and leave nothing in the directory but what was there. */
async function assertRestoreFileRefused(file: string): Promise<void> {
  const target = restoreFileTarget(file);
  const r = await env.run(['restore_file', cfg, target]);
  assertChecksumFailure(r, 'restore_file');
  assert.deepEqual(readdirSync(dirname(target)), ['placeholder'], 'restore_file left a file behind');
}

for (const [name, size] of [
  ['single PUT', 300_001],
  ['multipart, three parts and a byte', 15 * MB + 1],
] as const) {
  describe(`a checksummed object: ${name} (${size} bytes)`, () => {
    test('round trip is bit-exact and the server holds the object\'s CRC-32', async () => {
      const data = patternBytes(size, size);
      const { path, key } = await backupData(`gpbackup_0_${TS}_${size}_ok`, data);
      // Ceph RGW 16 accepts the checksum and keeps none: nothing to find on HEAD.
      assert.equal(await s3.headChecksum(BUCKET, key), s3.keepsChecksums ? crc32Base64(data) : undefined);
      if (size < 5 * MB) {
        // A single PUT also keeps it as user metadata, which every GET returns.
        assert.equal((await s3.headObject(BUCKET, key))?.metadata['gpbackup-crc32'], crc32Base64(data));
      }
      const r = await env.run(['restore_data', cfg, path]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.equal(r.stdout.length, size);
      assert.ok(r.stdout.equals(data), 'restored bytes differ');
    });

    test('one byte corrupted on the server: restore_data and restore_file fail with a checksum mismatch', async t => {
      if (!s3.objectPath(BUCKET, 'any')) return t.skip('changes stored bytes: s3rver only');
      const data = patternBytes(size, size + 1);
      const file = `gpbackup_0_${TS}_${size}_corrupt`;
      const { path, key } = await backupData(file, data);
      const offset = Math.floor(size * 0.6); // inside a middle part of the multipart object
      await s3.corruptObject(BUCKET, key, offset);
      const served = await s3.getObject(BUCKET, key);
      assert.equal(served?.length, size);
      assert.notEqual(served![offset], data[offset], 'the server must serve the corrupted byte');

      assertChecksumFailure(await env.run(['restore_data', cfg, path]), 'restore_data');
      await assertRestoreFileRefused(file);
    });

    test('object truncated on the server: restore_data and restore_file fail with a checksum mismatch', async t => {
      if (!s3.objectPath(BUCKET, 'any')) return t.skip('changes stored bytes: s3rver only');
      const data = patternBytes(size, size + 2);
      const file = `gpbackup_0_${TS}_${size}_truncated`;
      const { path, key } = await backupData(file, data);
      const shorter = size - 4097;
      await s3.truncateObject(BUCKET, key, shorter);
      assert.equal((await s3.headObject(BUCKET, key))?.size, shorter, 'the server must serve the shorter object');

      assertChecksumFailure(await env.run(['restore_data', cfg, path]), 'restore_data');
      await assertRestoreFileRefused(file);
    });
  });
}

describe('objects written without a checksum, as the Go plugin writes them', () => {
  for (const size of [1000, 11 * MB + 3]) {
    test(`${size} bytes restore unverified with restore_data and restore_file`, async () => {
      const data = patternBytes(size, 7 + size);
      const file = `gpbackup_1_${TS}_${size}_unchecked`;
      await s3.putObject(BUCKET, keyOf(file), data);
      assert.equal(await s3.headChecksum(BUCKET, keyOf(file)), undefined, 'the object must have no stored checksum');

      const r = await env.run(['restore_data', cfg, env.backupPath(TS, file)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.ok(r.stdout.equals(data), 'restored bytes differ');

      const target = restoreFileTarget(file);
      const f = await env.run(['restore_file', cfg, target]);
      assert.equal(f.code, 0, f.stderr);
      assert.ok(readFileSync(target).equals(data), 'restored file differs');
    });
  }
});

describe('restore_data_subset of a checksummed object', () => {
  const size = 12 * MB + 5;
  const data = patternBytes(size, 41);
  const file = `gpbackup_2_${TS}_subset`;
  let path: string;
  before(async () => {
    ({ path } = await backupData(file, data));
    assert.equal(await s3.headChecksum(BUCKET, keyOf(file)), s3.keepsChecksums ? crc32Base64(data) : undefined);
  });

  for (const offsets of ['1 0 10', `3 5 6 ${5 * MB - 3} ${10 * MB + 7} ${12 * MB} ${size}`]) {
    test(`ranges ${offsets}: the bytes asked for, no failure`, async () => {
      const offsetsFile = env.writeFile(`offsets-${offsets.length}`, offsets);
      const r = await env.run(['restore_data_subset', cfg, path, offsetsFile]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      const bounds = offsets.split(' ').map(Number).slice(1);
      const expected: Buffer[] = [];
      for (let i = 0; i < bounds.length; i += 2) expected.push(data.subarray(bounds[i], bounds[i + 1]));
      assert.ok(r.stdout.equals(Buffer.concat(expected)), 'restored ranges differ');
    });
  }
});

describe('the test server keeps CRC32 checksums as S3 does (s3rver-main.cjs)', () => {
  /** An S3 request the server must refuse with HTTP 400 and this error code. */
  async function assertRefused(request: Promise<unknown>, code: string): Promise<void> {
    await assert.rejects(request, (err: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(err.$metadata?.httpStatusCode, 400);
      assert.equal(err.name, code);
      return true;
    });
  }

  test('PutObject: a wrong x-amz-checksum-crc32 is refused (400 BadDigest), nothing stored; a right one is kept', async t => {
    if (s3.kind !== 's3rver') return t.skip('tests the s3rver extension');
    const key = 'server/put';
    const data = patternBytes(70_000, 3);
    const wrong = crc32Base64(patternBytes(70_000, 4));
    await assertRefused(s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data, ChecksumCRC32: wrong })), 'BadDigest');
    assert.equal(await s3.headObject(BUCKET, key), undefined, 'a refused PUT must store nothing');

    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data, ChecksumCRC32: crc32Base64(data) }));
    assert.equal(await s3.headChecksum(BUCKET, key), crc32Base64(data));
    // A whole GET in checksum mode carries it (and the SDK checks the body against it); a ranged one does not.
    const whole = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: 'ENABLED' }));
    assert.equal(whole.ChecksumCRC32, crc32Base64(data));
    assert.equal(whole.ChecksumType, 'FULL_OBJECT');
    assert.ok(Buffer.from(await whole.Body!.transformToByteArray()).equals(data));
    const ranged = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: 'bytes=0-9', ChecksumMode: 'ENABLED' }));
    await ranged.Body!.transformToByteArray();
    assert.equal(ranged.ChecksumCRC32, undefined);
    // Without checksum mode, none.
    const plain = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    await plain.Body!.transformToByteArray();
    assert.equal(plain.ChecksumCRC32, undefined);

    // A copy keeps it; an overwrite without one leaves none behind.
    await s3.client.send(new CopyObjectCommand({ Bucket: BUCKET, Key: `${key}-copy`, CopySource: `${BUCKET}/${key}` }));
    assert.equal(await s3.headChecksum(BUCKET, `${key}-copy`), crc32Base64(data));
    await s3.putObject(BUCKET, key, Buffer.from('other bytes'));
    assert.equal(await s3.headChecksum(BUCKET, key), undefined, 'a stale checksum outlived its object');
  });

  test('UploadPart and CompleteMultipartUpload: wrong checksums are refused with 400, the upload is left intact', async t => {
    if (s3.kind !== 's3rver') return t.skip('tests the s3rver extension');
    const key = 'server/multipart';
    const parts = [patternBytes(5 * MB, 11), patternBytes(5 * MB, 12), patternBytes(1234, 13)];
    const whole = Buffer.concat(parts);
    const { UploadId } = await s3.client.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' }),
    );
    const uploadPart = (n: number, checksum: string) =>
      s3.client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: n, Body: parts[n - 1], ChecksumCRC32: checksum }));

    await assertRefused(uploadPart(1, crc32Base64(parts[1]!)), 'BadDigest');
    const completed: CompletedPart[] = [];
    for (let n = 1; n <= parts.length; n++) {
      const { ETag } = await uploadPart(n, crc32Base64(parts[n - 1]!));
      completed.push({ PartNumber: n, ETag: ETag!, ChecksumCRC32: crc32Base64(parts[n - 1]!) });
    }
    const complete = (objectChecksum: string, listed = completed) =>
      s3.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId,
          ChecksumCRC32: objectChecksum,
          ChecksumType: 'FULL_OBJECT',
          MultipartUpload: { Parts: listed },
        }),
      );

    await assertRefused(complete(crc32Base64(parts[0]!)), 'BadDigest');
    const wrongPart = completed.map((p, i) => (i === 1 ? { ...p, ChecksumCRC32: crc32Base64(parts[0]!) } : p));
    await assertRefused(complete(crc32Base64(whole), wrongPart), 'InvalidPart');
    assert.equal(await s3.headObject(BUCKET, key), undefined);
    assert.deepEqual(await s3.listMultipartUploads(BUCKET), [key], 'a refused completion must leave the upload');

    const done = await complete(crc32Base64(whole));
    assert.equal(done.ChecksumCRC32, crc32Base64(whole));
    assert.match(done.ETag ?? '', /^"[0-9a-f]{32}-3"$/, 'a multipart object has an ETag of the form "<md5>-<parts>"');
    assert.equal(await s3.headChecksum(BUCKET, key), crc32Base64(whole));
    assert.ok((await s3.getObject(BUCKET, key))?.equals(whole));
    assert.deepEqual(await s3.listMultipartUploads(BUCKET), []);
  });
});
