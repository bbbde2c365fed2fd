/**
 * S3 Object Lock with the built executable: on a server that implements it (Ceph RGW,
 * S3_TEST_SERVER=rgw), an encrypted, locked backup round-trips through every command, each
 * object carries the retention asked for, and delete_backup refuses it before deleting
 * anything. On any server, setup refuses a bucket without object lock when it is asked for.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectRetentionCommand } from '@aws-sdk/client-s3';
import { PluginEnv, patternBytes } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const MB = 1024 * 1024;
const PLAIN_BUCKET = 'gpbackup-nolock';
const LOCKED_BUCKET = 'gpbackup-locked';
const FOLDER = 'cluster1/locked';
const TS = '20240809101112';

let s3: TestS3Server;
let env: PluginEnv;
let keyFile: string;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(PLAIN_BUCKET);
  env = new PluginEnv();
  keyFile = env.writeFile('keys/k', 'c3'.repeat(32));
  chmodSync(keyFile, 0o600);
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

const keyOf = (file: string) => `${FOLDER}/backups/${TS.slice(0, 8)}/${TS}/${file}`;
const localDir = () => env.path('coordinator', 'backups', TS.slice(0, 8), TS);

test('setup_plugin_for_backup refuses object_lock_mode on a bucket without object lock, naming it', async () => {
  const cfg = env.writeConfig({ ...testOptions(s3, PLAIN_BUCKET, FOLDER), object_lock_mode: 'GOVERNANCE', object_lock_days: '1' }, 'nolock.yaml');
  const r = await env.run(['setup_plugin_for_backup', cfg, localDir(), 'master', '"-1"']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /setup_plugin_for_backup: object_lock_mode is GOVERNANCE but bucket gpbackup-nolock does not have S3 Object Lock enabled/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.deepEqual(await s3.listKeys(PLAIN_BUCKET), []);
});

test('object_lock_days without object_lock_mode, and the other way round, are config errors', async () => {
  for (const [opts, message] of [
    [{ object_lock_days: '3' }, /object_lock_days can only be used with object_lock_mode/],
    [{ object_lock_mode: 'COMPLIANCE' }, /object_lock_days must be set when object_lock_mode is/],
    [{ object_lock_mode: 'governance', object_lock_days: '3' }, /must be GOVERNANCE or COMPLIANCE/],
    [{ object_lock_mode: 'GOVERNANCE', object_lock_days: '0' }, /must be a whole number of days from 1 to 36500/],
  ] as const) {
    const cfg = env.writeConfig({ ...testOptions(s3, PLAIN_BUCKET, FOLDER), ...opts }, 'bad-lock.yaml');
    const r = await env.run(['setup_plugin_for_backup', cfg, localDir(), 'master', '"-1"']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, message);
  }
});

describe('an encrypted, locked backup (needs a server with object lock: S3_TEST_SERVER=rgw)', () => {
  let cfg: string;
  const data = patternBytes(6 * MB + 17, 5);
  const toc = patternBytes(2000, 6);
  let skip: string | false = false;

  before(async () => {
    if (s3.kind !== 'rgw') {
      skip = `${s3.kind} does not implement S3 Object Lock`;
      return;
    }
    await s3.client.send(new CreateBucketCommand({ Bucket: LOCKED_BUCKET, ObjectLockEnabledForBucket: true }));
    cfg = env.writeConfig(
      {
        ...testOptions(s3, LOCKED_BUCKET, FOLDER),
        client_side_encryption: 'on',
        encryption_key_file: keyFile,
        object_lock_mode: 'GOVERNANCE',
        object_lock_days: '2',
        restore_subset: 'on',
      },
      'locked.yaml',
    );
  });

  test('setup, backup_data (multipart), backup_file (single PUT), restores, list, then delete_backup refused', async t => {
    if (skip) return t.skip(skip);
    const setup = await env.run(['setup_plugin_for_backup', cfg, localDir(), 'master', '"-1"']);
    assert.equal(setup.code, 0, setup.stderr);
    const dataPath = env.backupPath(TS, `gpbackup_0_${TS}`);
    const up = await env.run(['backup_data', cfg, dataPath], { stdin: data });
    assert.equal(up.code, 0, up.stderr);
    const tocPath = env.writeFile(`coordinator/backups/${TS.slice(0, 8)}/${TS}/gpbackup_${TS}_toc.yaml`, toc);
    assert.equal((await env.run(['backup_file', cfg, tocPath])).code, 0);

    const before = Date.now();
    for (const file of [`gpbackup_0_${TS}`, `gpbackup_${TS}_toc.yaml`]) {
      const stored = await s3.getObject(LOCKED_BUCKET, keyOf(file));
      assert.equal(stored?.subarray(0, 8).toString('latin1'), '\0GPBKENC', `${file} is encrypted in the bucket`);
      const retention = await s3.client.send(new GetObjectRetentionCommand({ Bucket: LOCKED_BUCKET, Key: keyOf(file) }));
      assert.equal(retention.Retention?.Mode, 'GOVERNANCE');
      const days = (retention.Retention!.RetainUntilDate!.getTime() - before) / 86_400_000;
      assert.ok(days > 1.99 && days < 2.01, `${file}: retained for ${days} days`);
    }

    const restored = await env.run(['restore_data', cfg, dataPath]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.ok(restored.stdout.equals(data));
    const offsets = env.writeFile('offsets', `2 3 70000 ${5 * MB} ${6 * MB + 17}`);
    const subset = await env.run(['restore_data_subset', cfg, dataPath, offsets]);
    assert.equal(subset.code, 0, subset.stderr);
    assert.ok(subset.stdout.equals(Buffer.concat([data.subarray(3, 70000), data.subarray(5 * MB)])));
    rmSync(tocPath);
    assert.equal((await env.run(['restore_file', cfg, tocPath])).code, 0);
    assert.ok(readFileSync(tocPath).equals(toc));
    const listed = await env.run(['list_directory', cfg]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout.toString(), new RegExp(`gpbackup_0_${TS}\\t`));

    const del = await env.run(['delete_backup', cfg, TS]);
    assert.equal(del.code, 1, 'a locked backup must not be deleted');
    assert.match(del.stderr, /delete_backup 20240809101112: 3 of 3 objects under .* are under S3 Object Lock retention \(GOVERNANCE\) until as late as \d{4}-\d\d-\d\dT.*nothing was deleted/);
    assert.equal(del.stderr.trim().split('\n').length, 1, del.stderr);
    assert.deepEqual(
      (await s3.listKeys(LOCKED_BUCKET, keyOf(''))).sort(),
      // setup's empty report object (gpbackup replaces it) is the third.
      [keyOf(`gpbackup_0_${TS}`), keyOf(`gpbackup_${TS}_toc.yaml`), keyOf(`gpbackup_${TS}_report`)].sort(),
    );
  });
});
