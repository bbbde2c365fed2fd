/**
 * SigV4 against a server that checks it: Ceph RGW (S3_TEST_SERVER=rgw, the RGW tier
 * of scripts/test.mjs). s3rver and moto check no signature, so there these skip.
 * The right secret round-trips; a wrong one is refused by the server for its signature.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PluginEnv, patternBytes } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-sigv4';
const TS = '20240910111213';

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

test('the right secret: a multipart backup and its restore are accepted', async t => {
  if (s3.kind !== 'rgw') return t.skip(`${s3.kind} checks no signature`);
  const cfg = env.writeConfig(testOptions(s3, BUCKET, 'right'), 'right.yaml');
  const data = patternBytes(6 * 1024 * 1024 + 7, 3);
  const path = env.backupPath(TS, 'gpbackup_0_20240910111213_1');
  const up = await env.run(['backup_data', cfg, path], { stdin: data });
  assert.equal(up.code, 0, up.stderr);
  const down = await env.run(['restore_data', cfg, path]);
  assert.equal(down.code, 0, down.stderr);
  assert.ok(down.stdout.equals(data), 'restored bytes differ');
});

test('a wrong secret: SignatureDoesNotMatch, one line, nothing written', async t => {
  if (s3.kind !== 'rgw') return t.skip(`${s3.kind} checks no signature`);
  const cfg = env.writeConfig(testOptions(s3, BUCKET, 'wrong', { aws_secret_access_key: 'gpb-wrong-secret-never-printed-0042' }), 'wrong.yaml');
  const r = await env.run(['backup_data', cfg, env.backupPath(TS, 'gpbackup_0_20240910111213_2')], { stdin: 'x' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /SignatureDoesNotMatch/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.deepEqual(await s3.listKeys(BUCKET, 'wrong/'), []);
});
