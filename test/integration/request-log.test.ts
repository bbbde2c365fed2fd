/**
 * logger_verbosity debug: one line per request (operation, key, range, status, bytes, ms,
 * attempt), never a secret, a signature or an Authorization header; verbose: the choices made.
 * And no runtime warning on stderr with bandwidth limits (a listener was once left per slice).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PluginEnv, patternBytes } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const MB = 1024 * 1024;
const BUCKET = 'gpbackup-log';
const TS = '20250303030303';
let s3: TestS3Server;
let env: PluginEnv;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
});

after(async () => {
  await s3?.stop();
  env?.cleanup(); // fails if a log holds a registered secret
});

test('debug: a line per request, no signature, no Authorization, no secret', async () => {
  const cfg = env.writeConfig(testOptions(s3, BUCKET, 'log', { logger_verbosity: 'debug' }), 'debug.yaml');
  const data = patternBytes(11 * MB, 7);
  const path = env.backupPath(TS, `gpbackup_0_${TS}_1`);
  assert.equal((await env.run(['backup_data', cfg, path], { stdin: data })).code, 0);
  const down = await env.run(['restore_data', cfg, path]);
  assert.equal(down.code, 0, down.stderr);
  assert.ok(down.stdout.equals(data));
  assert.equal((await env.run(['delete_backup', cfg, TS])).code, 0);
  const text = env.logText();
  const key = `log/backups/${TS.slice(0, 8)}/${TS}/gpbackup_0_${TS}_1`;
  assert.match(text, new RegExp(`request CreateMultipartUpload key=${key} status=200 bytes=\\d+ ms=\\d+ attempt=1`));
  assert.equal((text.match(/request UploadPart key=\S+ status=200 bytes=5242880 ms=\d+ attempt=1/g) ?? []).length, 2);
  assert.match(text, /request UploadPart key=\S+ status=200 bytes=1048576 /);
  assert.match(text, /request CompleteMultipartUpload /);
  assert.match(text, new RegExp(`request GetObject key=${key} range=0-5242879 status=206 bytes=5242880 ms=\\d+ attempt=1`));
  assert.match(text, /request ListObjectsV2 key=\S+ status=200/);
  assert.match(text, /request DeleteObjects /);
  assert.match(text, /S3: http:\/\/127\.0\.0\.1:\d+, region us-east-1, path-style addressing, no proxy, .*uploads in parts of 5MiB, 3 at once; restores in ranges of 5MiB, 3 at once; checksums: /);
  assert.doesNotMatch(text, /Signature=|AWS4-HMAC-SHA256|authorization|x-amz-security-token/i);
});

test('info: no request lines', async () => {
  const cfg = env.writeConfig(testOptions(s3, BUCKET, 'loginfo', { logger_verbosity: 'info' }), 'info.yaml');
  const before = env.logText().length;
  assert.equal((await env.run(['backup_data', cfg, env.backupPath(TS, `gpbackup_0_${TS}_2`)], { stdin: 'abc' })).code, 0);
  assert.doesNotMatch(env.logText().slice(before), /request PutObject|S3: http/);
});

test('bandwidth limits: no warning on stderr of any command (no listener left per slice)', async () => {
  const cfg = env.writeConfig(
    testOptions(s3, BUCKET, 'bw', { backup_max_bandwidth: '200MB/s', restore_max_bandwidth: '200MB/s' }),
    'bandwidth.yaml',
  );
  const data = patternBytes(11 * MB, 8);
  const path = env.backupPath(TS, `gpbackup_0_${TS}_3`);
  const up = await env.run(['backup_data', cfg, path], { stdin: data });
  assert.equal(up.code, 0, up.stderr);
  assert.equal(up.stderr, '');
  const file = env.writeFile(`data/gpseg-1/backups/${TS.slice(0, 8)}/${TS}/gpbackup_${TS}_report`, patternBytes(3 * MB, 9));
  const upFile = await env.run(['backup_file', cfg, file]);
  assert.equal(upFile.code, 0, upFile.stderr);
  assert.equal(upFile.stderr, '');
  const down = await env.run(['restore_data', cfg, path]);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(down.stderr, '');
  assert.ok(down.stdout.equals(data));
  const offsets = env.writeFile('bw-offsets', `1 100 ${6 * MB}`);
  const subset = await env.run(['restore_data_subset', cfg, path, offsets]);
  assert.equal(subset.code, 0, subset.stderr);
  assert.equal(subset.stderr, '');
  assert.ok(subset.stdout.equals(data.subarray(100, 6 * MB)));
});
