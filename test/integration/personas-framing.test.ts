/**
 * The built plugin through proxies that frame the S3 test server's answers as
 * servers in the field do (test/support/personas/framing.ts): every answer
 * chunked, a 100 Continue before every answer, HTTP/1.0 with Connection: close.
 * Each command must move exactly the bytes it moves without them, and error
 * answers must keep their S3 code and message.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { FRAMINGS, startFramingProxy, type FramingProxy } from '../support/personas/framing.js';
import { PluginEnv, patternBytes } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const MB = 1024 * 1024;
const BUCKET = 'gpbackup-framing';
const FOLDER = 'cluster1/framing';

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

FRAMINGS.forEach((framing, n) => {
  describe(`answers framed ${framing}`, () => {
    let proxy: FramingProxy;
    let cfg: string;
    const ts = `2024060100000${n}`;
    const keyOf = (file: string) => `${FOLDER}/backups/${ts.slice(0, 8)}/${ts}/${file}`;
    const small = patternBytes(1024, 7 + n);
    const large = patternBytes(12 * MB + 3, 11 + n);
    const smallFile = `gpbackup_0_${ts}_16384`;
    const largeFile = `gpbackup_1_${ts}_16385`;

    before(async () => {
      proxy = await startFramingProxy(s3.endpoint, framing, { verifySignatures: true });
      cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: proxy.endpoint, backup_multipart_chunksize: '5MB' }), `${framing}.yaml`);
    });

    after(() => proxy?.stop());

    test('backup_data and restore_data: 1 KiB and a 12 MiB multipart stream round-trip exactly', async () => {
      for (const [file, data] of [[smallFile, small], [largeFile, large]] as const) {
        const path = env.backupPath(ts, file);
        const up = await env.run(['backup_data', cfg, path], { stdin: data });
        assert.equal(up.code, 0, up.stderr);
        assert.equal(up.stderr, '');
        assert.ok((await s3.getObject(BUCKET, keyOf(file)))?.equals(data), `${file} stored exactly`);
        const down = await env.run(['restore_data', cfg, path]);
        assert.equal(down.code, 0, down.stderr);
        assert.equal(down.stderr, '');
        assert.ok(down.stdout.equals(data), `${file} restored exactly`);
      }
      assert.ok((proxy.answers.get(200) ?? 0) + (proxy.answers.get(206) ?? 0) > 0, 'the answers went through the persona');
      assert.equal(proxy.reused, 0, 'no request on a connection an HTTP/1.0 answer ended');
    });

    test('restore_data_subset: ranges across parts', async () => {
      const ranges = [3, 10, 5 * MB - 7, 5 * MB + 9, 10 * MB + 1, 12 * MB + 3];
      const offsets = env.writeFile(`offsets-${framing}`, `3 ${ranges.join(' ')}`);
      const r = await env.run(['restore_data_subset', cfg, env.backupPath(ts, largeFile), offsets]);
      assert.equal(r.code, 0, r.stderr);
      const want = Buffer.concat([0, 2, 4].map(i => large.subarray(ranges[i], ranges[i + 1])));
      assert.ok(r.stdout.equals(want), 'the requested bytes, in order');
    });

    test('backup_file and restore_file', async () => {
      const content = patternBytes(6 * MB + 5, 3 + n);
      const path = env.writeFile(`coord/backups/${ts.slice(0, 8)}/${ts}/gpbackup_${ts}_metadata.sql`, content);
      const up = await env.run(['backup_file', cfg, path]);
      assert.equal(up.code, 0, up.stderr);
      writeFileSync(path, 'stale');
      const down = await env.run(['restore_file', cfg, path]);
      assert.equal(down.code, 0, down.stderr);
      assert.ok(readFileSync(path).equals(content));
    });

    test('list_directory and delete_backup', async () => {
      const list = await env.run(['list_directory', cfg, `backups/${ts.slice(0, 8)}/${ts}`]);
      assert.equal(list.code, 0, list.stderr);
      const lines = list.stdout.toString().trim().split('\n');
      assert.deepEqual(lines.slice(1).sort(), [
        `${keyOf(smallFile)}\t${small.length}`,
        `${keyOf(largeFile)}\t${large.length}`,
        `${keyOf(`gpbackup_${ts}_metadata.sql`)}\t${6 * MB + 5}`,
      ].sort());
      const del = await env.run(['delete_backup', cfg, ts]);
      assert.equal(del.code, 0, del.stderr);
      assert.deepEqual(await s3.listKeys(BUCKET, keyOf('')), []);
      assert.equal(proxy.reused, 0, 'no request on a connection an HTTP/1.0 answer ended');
    });
  });
});

describe('error answers keep their S3 code and message through chunked framing', () => {
  let proxy: FramingProxy;
  const ts = '20240602000000';
  const path = (file: string) => env.backupPath(ts, file);

  before(async () => {
    proxy = await startFramingProxy(s3.endpoint, 'chunked', { verifySignatures: true });
    await s3.putObject(BUCKET, `${FOLDER}/backups/20240602/${ts}/gpbackup_0_${ts}_1`, patternBytes(100_000, 1));
  });

  after(() => proxy?.stop());

  const config = (name: string, extra: Record<string, string>) =>
    env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: proxy.endpoint, max_retries: '0', ...extra }), name);

  test('a wrong secret key: SignatureDoesNotMatch, with its message, on backup and restore', async () => {
    const cfg = config('wrong-secret.yaml', { aws_secret_access_key: 'not-the-secret-key-0123456789' });
    const up = await env.run(['backup_data', cfg, path(`gpbackup_0_${ts}_2`)], { stdin: patternBytes(1024) });
    const down = await env.run(['restore_data', cfg, path(`gpbackup_0_${ts}_1`)]);
    for (const r of [up, down]) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided\. Check your key and signing method\. \(HTTP 403\): check aws_access_key_id and aws_secret_access_key/);
      assert.equal(r.stdout.length, 0);
    }
    assert.ok((proxy.answers.get(403) ?? 0) >= 2);
  });

  test('a missing bucket: NoSuchBucket, naming the bucket', async () => {
    const cfg = config('no-bucket.yaml', { bucket: 'no-such-bucket-framing' });
    for (const args of [['restore_data', cfg, path(`gpbackup_0_${ts}_1`)], ['backup_data', cfg, path(`gpbackup_0_${ts}_3`)]]) {
      const r = await env.run(args, { stdin: patternBytes(1024) });
      assert.equal(r.code, 1, args[0]);
      assert.match(r.stderr, /s3:\/\/no-such-bucket-framing\/.*: bucket "no-such-bucket-framing" does not exist/, args[0]);
    }
  });

  test('a missing object: no such object; an object there restores exactly', async () => {
    const cfg = config('chunked-errors.yaml', {});
    const missing = await env.run(['restore_data', cfg, path(`gpbackup_0_${ts}_404`)]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`s3://${BUCKET}/${FOLDER}/backups/20240602/${ts}/gpbackup_0_${ts}_404: no such object`));
    assert.equal(missing.stdout.length, 0);
    const there = await env.run(['restore_data', cfg, path(`gpbackup_0_${ts}_1`)]);
    assert.equal(there.code, 0, there.stderr);
    assert.ok(there.stdout.equals(patternBytes(100_000, 1)));
  });
});
