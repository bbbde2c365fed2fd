/**
 * Client-side encryption end to end, with the built executable against a real S3 server: every
 * data command round-trips, the bucket holds no plaintext, plain and encrypted objects restore
 * side by side, a wrong or missing key fails clearly, the decrypt subcommand recovers an object
 * with nothing but the key file, and tampering at rest (s3rver) is caught.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { PluginEnv, patternBytes, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const MB = 1024 * 1024;
const BUCKET = 'gpbackup-encryption';
const FOLDER = 'cluster1/enc';
const TS = '20240708091011';
const HEADER = 108;
const SEG = 65536;
const STRIDE = SEG + 16;

let s3: TestS3Server;
let env: PluginEnv;
let cfg: string;
let plainCfg: string;
let keyFile: string;
let oldKeyFile: string;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  keyFile = env.writeFile('keys/current.key', 'a1'.repeat(32) + '\n');
  oldKeyFile = env.writeFile('keys/old.key', 'an older passphrase, still long enough\n');
  chmodSync(keyFile, 0o600);
  chmodSync(oldKeyFile, 0o600);
  const base = testOptions(s3, BUCKET, FOLDER);
  cfg = env.writeConfig({ ...base, client_side_encryption: 'on', encryption_key_file: keyFile, encryption_old_key_files: oldKeyFile });
  plainCfg = env.writeConfig(base, 'plain.yaml');
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

const keyOf = (file: string, ts = TS) => `${FOLDER}/backups/${ts.slice(0, 8)}/${ts}/${file}`;

function assertOneLineFailure(r: RunResult, pattern: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what} must fail: ${r.stderr}`);
  assert.match(r.stderr, pattern, what);
  assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line on stderr, got ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /    at /, `${what}: no stack trace`);
}

describe('encrypted backup_data, restore_data and restore_data_subset', () => {
  for (const size of [0, 1, SEG, SEG + 1, 5 * MB - HEADER - 16 * 80, 17 * MB + 3]) {
    test(`${size} bytes round-trip; the bucket holds ciphertext`, async () => {
      const data = patternBytes(size, size + 5);
      const path = env.backupPath(TS, `gpbackup_0_${TS}_${size}`);
      const up = await env.run(['backup_data', cfg, path], { stdin: data });
      assert.equal(up.code, 0, up.stderr);
      const stored = await s3.getObject(BUCKET, keyOf(`gpbackup_0_${TS}_${size}`));
      assert.ok(stored);
      assert.equal(stored.length, HEADER + size + Math.max(1, Math.ceil(size / SEG)) * 16);
      assert.equal(stored.subarray(0, 8).toString('latin1'), '\0GPBKENC');
      if (size >= 64) assert.equal(stored.indexOf(data.subarray(0, 64)), -1, 'plaintext in the bucket');
      const down = await env.run(['restore_data', cfg, path]);
      assert.equal(down.code, 0, down.stderr);
      assert.ok(down.stdout.equals(data));
    });
  }

  test('restore_data_subset fetches and decrypts only the segments of the ranges', async () => {
    const data = patternBytes(12 * MB + 5, 77);
    const path = env.backupPath(TS, `gpbackup_0_${TS}`);
    assert.equal((await env.run(['backup_data', cfg, path], { stdin: data })).code, 0);
    const subsetCfg = env.writeConfig(
      { ...testOptions(s3, BUCKET, FOLDER), restore_subset: 'on', client_side_encryption: 'on', encryption_key_file: keyFile },
      'subset.yaml',
    );
    const offsets = `3 5 6 ${SEG - 2} ${5 * MB + 7} ${12 * MB} ${12 * MB + 5}`;
    const r = await env.run(['restore_data_subset', subsetCfg, path, env.writeFile('offsets', offsets)]);
    assert.equal(r.code, 0, r.stderr);
    const nums = offsets.split(' ').map(Number).slice(1);
    const parts: Buffer[] = [];
    for (let i = 0; i < nums.length; i += 2) parts.push(data.subarray(nums[i], nums[i + 1]));
    assert.ok(r.stdout.equals(Buffer.concat(parts)));
    assert.match(env.logText(), /is client-side encrypted: \d+ of 193 segment\(s\) fetched, decrypted and verified/);
    const past = await env.run(['restore_data_subset', subsetCfg, path, env.writeFile('offsets-past', `1 0 ${12 * MB + 6}`)]);
    assertOneLineFailure(past, /beyond the end of .*\(decrypted\)/, 'a range past the plaintext');
    assert.equal(past.stdout.length, 0);
  });
});

describe('encrypted backup_file and restore_file', () => {
  for (const size of [0, 3000, 6 * MB + 1]) {
    test(`${size} bytes round-trip`, async () => {
      const data = patternBytes(size, size + 9);
      const file = env.writeFile(`coordinator/backups/${TS.slice(0, 8)}/${TS}/gpbackup_${TS}_toc_${size}.yaml`, data);
      assert.equal((await env.run(['backup_file', cfg, file])).code, 0);
      const stored = await s3.getObject(BUCKET, keyOf(`gpbackup_${TS}_toc_${size}.yaml`));
      assert.equal(stored?.subarray(0, 8).toString('latin1'), '\0GPBKENC');
      rmSync(file);
      const r = await env.run(['restore_file', cfg, file]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(file).equals(data));
    });
  }
});

describe('mixed folders, key rotation, wrong and missing keys, decrypt', () => {
  test('a plain object (older backup, Go plugin) and an encrypted one restore with the same config, the log saying which', async () => {
    const plain = patternBytes(3000, 1);
    await s3.putObject(BUCKET, keyOf('gpbackup_0_plain'), plain);
    const r = await env.run(['restore_data', cfg, env.backupPath(TS, 'gpbackup_0_plain')]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(plain));
    assert.match(env.logText(), /gpbackup_0_plain is not client-side encrypted: restored as stored/);
    assert.match(env.logText(), /is client-side encrypted: every segment decrypted and verified \(key ID [0-9a-f]{16}\)/);
  });

  test('after a rotation the old key, named in encryption_old_key_files, still reads what it wrote', async () => {
    const data = patternBytes(200_000, 4);
    const oldCfg = env.writeConfig({ ...testOptions(s3, BUCKET, FOLDER), client_side_encryption: 'on', encryption_key_file: oldKeyFile }, 'old.yaml');
    const path = env.backupPath(TS, 'gpbackup_0_old');
    assert.equal((await env.run(['backup_data', oldCfg, path], { stdin: data })).code, 0);
    const r = await env.run(['restore_data', cfg, path]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(data));
    // Without the old key: refused, naming the object.
    const onlyNew = env.writeConfig({ ...testOptions(s3, BUCKET, FOLDER), client_side_encryption: 'on', encryption_key_file: keyFile }, 'new.yaml');
    const refused = await env.run(['restore_data', onlyNew, path]);
    assertOneLineFailure(refused, /restore_data: Error while downloading \S+: decrypting s3:\/\/gpbackup-encryption\/.*gpbackup_0_old: it was encrypted with a passphrase that none of the configured key files holds/, 'wrong key');
    assert.equal(refused.stdout.length, 0);
    const noKey = await env.run(['restore_data', plainCfg, path]);
    assertOneLineFailure(noKey, /is encrypted by the plugin's client_side_encryption, and no key is configured/, 'no key');
    assert.equal(noKey.stdout.length, 0);
  });

  test('a missing or exposed key file is a config error before anything moves', async () => {
    const missing = env.writeConfig({ ...testOptions(s3, BUCKET, FOLDER), client_side_encryption: 'on', encryption_key_file: env.path('nokey') }, 'missing.yaml');
    const r = await env.run(['backup_data', missing, env.backupPath(TS, 'gpbackup_0_never')], { stdin: Buffer.from('x') });
    assertOneLineFailure(r, /option "encryption_key_file" \(line \d+\): cannot read .*nokey: no such file/, 'missing key file');
    const exposed = env.writeFile('keys/exposed.key', 'b2'.repeat(32));
    chmodSync(exposed, 0o644);
    const bad = env.writeConfig({ ...testOptions(s3, BUCKET, FOLDER), client_side_encryption: 'on', encryption_key_file: exposed }, 'exposed.yaml');
    assertOneLineFailure(await env.run(['restore_data', bad, env.backupPath(TS, 'gpbackup_0_1')]), /mode 0644\): run chmod 600/, 'exposed key file');
    const noFile = env.writeConfig({ ...testOptions(s3, BUCKET, FOLDER), client_side_encryption: 'on' }, 'nofile.yaml');
    assertOneLineFailure(await env.run(['restore_data', noFile, env.backupPath(TS, 'gpbackup_0_1')]), /encryption_key_file must be set when client_side_encryption is on/, 'no key file');
    assert.equal(await s3.getObject(BUCKET, keyOf('gpbackup_0_never')), undefined);
  });

  test('decrypt recovers an object from stdin with only the key file; a wrong key fails', async () => {
    const data = patternBytes(300_000, 8);
    const path = env.backupPath(TS, 'gpbackup_0_decrypt');
    assert.equal((await env.run(['backup_data', cfg, path], { stdin: data })).code, 0);
    const stored = (await s3.getObject(BUCKET, keyOf('gpbackup_0_decrypt')))!;
    const r = await env.run(['decrypt', '--key-file', keyFile], { stdin: stored });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(data));
    const wrong = await env.run(['decrypt', '--key-file', oldKeyFile], { stdin: stored });
    assertOneLineFailure(wrong, /decrypt: decrypting stdin: it was encrypted with a 256-bit key with key ID/, 'decrypt with a wrong key');
    assert.equal(wrong.stdout.length, 0);
    const cut = await env.run(['decrypt', '--key-file', keyFile], { stdin: stored.subarray(0, stored.length - 1) });
    assertOneLineFailure(cut, /failed authentication as the last segment/, 'decrypt of a truncated object');
    assert.equal(cut.stdout.length, 4 * SEG, 'only verified segments before the damage are written');
  });
});

describe('tampering in the bucket is caught', () => {
  const size = 1 * MB + 100;
  const data = patternBytes(size, 31);
  const name = `gpbackup_0_${TS}_tamper`;
  const path = () => env.backupPath(TS, name);
  const upload = async () => assert.equal((await env.run(['backup_data', cfg, path()], { stdin: data })).code, 0);

  for (const [what, offset] of [
    ['the header', 40],
    ['the first segment', HEADER + 10],
    ['a tag in the middle', HEADER + 5 * STRIDE + SEG + 3],
    ['the last segment', HEADER + size + 16 * 17 - 1],
  ] as const) {
    test(`a flipped byte in ${what}`, async t => {
      if (s3.kind !== 's3rver') return t.skip('changing stored bytes needs s3rver');
      await upload();
      await s3.corruptObject(BUCKET, keyOf(name), offset);
      const r = await env.run(['restore_data', cfg, path()]);
      assert.equal(r.code, 1, 'must fail');
      assert.match(r.stderr, new RegExp(`${name}: (its encryption header failed authentication|segment \\d+ .*failed authentication|checksum mismatch)`));
      assert.ok(r.stdout.length % SEG === 0 && r.stdout.length < size && r.stdout.equals(data.subarray(0, r.stdout.length)), 'nothing unverified written');
    });
  }

  test('a truncated object', async t => {
    if (s3.kind !== 's3rver') return t.skip('changing stored bytes needs s3rver');
    await upload();
    await s3.truncateObject(BUCKET, keyOf(name), HEADER + 3 * STRIDE);
    const r = await env.run(['restore_data', cfg, path()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /segment 2 .*failed authentication as the last segment|checksum mismatch/);
    assert.ok(r.stdout.length <= 2 * SEG);
  });
});

