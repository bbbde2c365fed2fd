/**
 * Where the built executable finds its keys when the config holds none: the
 * AWS_* environment variables (read directly, no SDK loaded), and a named
 * profile of ~/.aws/credentials (aws_profile: the AWS SDK's credential chain,
 * loaded lazily inside the executable). Both are proved by a round trip
 * against the real server; a profile that does not exist fails clearly.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { PluginEnv, patternBytes } from '../support/plugin.js';
import { startS3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-credentials';
const TS = '20240708091011';

let s3: TestS3Server;
let env: PluginEnv;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  env.writeFile(
    'home/.aws/credentials',
    `[default]\naws_access_key_id = NOSUCHKEY\naws_secret_access_key = nosuchsecret\n\n[gpbackup]\naws_access_key_id = ${TEST_ACCESS_KEY}\naws_secret_access_key = ${TEST_SECRET_KEY}\n`,
  );
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

/** Options without the key pair. */
function keyless(folder: string, extra: Record<string, string> = {}): Record<string, string> {
  const { aws_access_key_id: _id, aws_secret_access_key: _secret, ...rest } = testOptions(s3, BUCKET, folder);
  return { ...rest, ...extra };
}

async function roundTrip(cfg: string, file: string, runEnv: Record<string, string> = {}): Promise<void> {
  const data = patternBytes(70_000, file.length);
  const path = env.backupPath(TS, file);
  const up = await env.run(['backup_data', cfg, path], { stdin: data, env: runEnv });
  assert.equal(up.code, 0, up.stderr);
  const down = await env.run(['restore_data', cfg, path], { env: runEnv });
  assert.equal(down.code, 0, down.stderr);
  assert.ok(down.stdout.equals(data));
}

test('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment', async () => {
  const cfg = env.writeConfig(keyless('env'), 'env.yaml');
  await roundTrip(cfg, 'gpbackup_0_20240708091011_1', { AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: TEST_SECRET_KEY });
  assert.deepEqual(await s3.listKeys(BUCKET, 'env/'), [`env/backups/20240708/${TS}/gpbackup_0_20240708091011_1`]);
});

test('aws_profile: the named profile of ~/.aws/credentials, through the AWS SDK credential chain', async () => {
  const cfg = env.writeConfig(keyless('profile', { aws_profile: 'gpbackup' }), 'profile.yaml');
  await roundTrip(cfg, 'gpbackup_0_20240708091011_2');
  // aws_profile wins over the environment's keys, which would be refused here.
  await roundTrip(cfg, 'gpbackup_0_20240708091011_3', { AWS_ACCESS_KEY_ID: 'NOSUCHKEY', AWS_SECRET_ACCESS_KEY: 'x' });
  assert.equal((await s3.listKeys(BUCKET, 'profile/')).length, 2);
});

test('AWS_PROFILE without aws_profile selects the profile too', async () => {
  const cfg = env.writeConfig(keyless('awsprofile'), 'awsprofile.yaml');
  await roundTrip(cfg, 'gpbackup_0_20240708091011_4', { AWS_PROFILE: 'gpbackup' });
});

test('the default profile with a key the server does not know: a clear refusal naming the object', async t => {
  if (s3.kind === 'moto') return t.skip('moto_server accepts any key');
  const cfg = env.writeConfig(keyless('default'), 'default.yaml');
  const r = await env.run(['backup_data', cfg, env.backupPath(TS, 'gpbackup_0_20240708091011_5')], { stdin: 'x' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /backup_data: Error while uploading s3:\/\/gpbackup-credentials\/default\/backups\/.*InvalidAccessKeyId/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('a profile that does not exist fails with one line naming it', async () => {
  const cfg = env.writeConfig(keyless('missing', { aws_profile: 'nosuchprofile' }), 'missing.yaml');
  const r = await env.run(['backup_data', cfg, env.backupPath(TS, 'gpbackup_0_20240708091011_6')], { stdin: 'x' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no AWS credentials found for profile "nosuchprofile"/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.deepEqual(await s3.listKeys(BUCKET, 'missing/'), []);
});

test('keys in a config others can read: one warning from the coordinator setup, none from the data commands', async () => {
  const cfg = env.writeConfig(testOptions(s3, BUCKET, 'exposed'), 'exposed.yaml');
  chmodSync(cfg, 0o644);
  const logBefore = env.logText().length;
  const setup = await env.run(['setup_plugin_for_backup', cfg, env.path('coordinator/backups/20240708/20240708091011'), 'master', '"-1"']);
  assert.equal(setup.code, 0, setup.stderr);
  const path = env.backupPath(TS, 'gpbackup_0_20240708091011_7');
  assert.equal((await env.run(['backup_data', cfg, path], { stdin: 'x' })).code, 0);
  assert.equal((await env.run(['restore_data', cfg, path])).code, 0);
  const warnings = env
    .logText()
    .slice(logBefore)
    .split('\n')
    .filter(l => l.includes('[WARNING]'));
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /exposed\.yaml holds aws_secret_access_key and is readable by group or others \(mode 0644\): run chmod 600/);
  assert.equal(setup.stdout.length + setup.stderr.length, 0, 'a warning goes to the log only');

  chmodSync(cfg, 0o600);
  const quiet = env.logText().length;
  assert.equal((await env.run(['setup_plugin_for_backup', cfg, env.path('coordinator/backups/20240708/20240708091011'), 'master', '"-1"'])).code, 0);
  assert.ok(!env.logText().slice(quiet).includes('[WARNING]'));
});
