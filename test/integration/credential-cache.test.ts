/**
 * Temporary credentials are fetched once per host and user, not once per process
 * (src/storage/s3/credential-cache.ts). Stand-ins on 127.0.0.1 for STS (role_arn,
 * through AWS_ENDPOINT_URL_STS) and for the instance metadata service
 * (AWS_EC2_METADATA_SERVICE_ENDPOINT) count what the plugin processes ask; S3 is
 * the real test server, which knows only the key pair they hand out.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PluginEnv, registerSecret } from '../support/plugin.js';
import { startS3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-credcache';
const ROLE = 'arn:aws:iam::123456789012:role/gpbackup-writer';
const SESSION_TOKEN = 'gpb-cached-session-token-0123456789';
const MINUTE = 60_000;

let s3: TestS3Server;

/** A local HTTP server that counts requests and answers with `answer`. */
async function standIn(answer: (path: string, method: string) => { status?: number; type?: string; body: string }) {
  const calls: string[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls.push(`${req.method} ${req.url}`);
      const a = answer(req.url ?? '', req.method ?? '');
      res.statusCode = a.status ?? 200;
      if (a.type) res.setHeader('content-type', a.type);
      res.end(a.body);
    });
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  return { calls, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise(r => server.close(r)) };
}

/** Runs list_directory in `count` processes at once; every one must succeed. */
async function listMany(env: PluginEnv, cfg: string, count: number, runEnv: Record<string, string>): Promise<void> {
  const results = await Promise.all(Array.from({ length: count }, () => env.run(['list_directory', cfg], { env: runEnv })));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
}

before(async () => {
  registerSecret(SESSION_TOKEN, 'SESSION_TOKEN');
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
});

after(async () => {
  await s3?.stop();
});

describe('role_arn: STS answers are shared by the processes of a host', () => {
  let env: PluginEnv;
  let sts: Awaited<ReturnType<typeof standIn>>;
  let cfg: string;
  let runEnv: Record<string, string>;
  let expiresIn = 60 * MINUTE;
  const cacheDir = () => join(env.home, '.cache', 'gpbackup_s3_plugin');
  const cacheFiles = () => readdirSync(cacheDir()).filter(f => f.endsWith('.json'));

  before(async () => {
    env = new PluginEnv();
    sts = await standIn(() => ({
      type: 'text/xml',
      body:
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>' +
        `<AccessKeyId>${TEST_ACCESS_KEY}</AccessKeyId><SecretAccessKey>${TEST_SECRET_KEY}</SecretAccessKey>` +
        `<SessionToken>${SESSION_TOKEN}</SessionToken><Expiration>${new Date(Date.now() + expiresIn).toISOString()}</Expiration></Credentials>` +
        '<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/gpbackup-writer/s</Arn><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser>' +
        '</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>',
    }));
    runEnv = { AWS_ENDPOINT_URL_STS: sts.url };
    cfg = env.writeConfig(
      testOptions(s3, BUCKET, 'role', { aws_access_key_id: 'GPBBASEKEY', aws_secret_access_key: 'gpb-base-secret-never-printed-42', role_arn: ROLE }),
    );
  });

  after(async () => {
    env?.cleanup();
    await sts?.close();
  });

  test('50 processes started at once ask STS once; later ones not at all', async () => {
    await listMany(env, cfg, 50, runEnv);
    assert.equal(sts.calls.length, 1, `STS calls: ${sts.calls.length}`);
    await listMany(env, cfg, 5, runEnv);
    assert.equal(sts.calls.length, 1);
    const dir = statSync(cacheDir());
    assert.equal(dir.mode & 0o777, 0o700);
    const files = cacheFiles();
    assert.equal(files.length, 1);
    assert.equal(statSync(join(cacheDir(), files[0])).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(cacheDir()), files, 'no lock or temporary file left behind');
  });

  test('a cache file others can read is ignored and replaced by a private one', async () => {
    const file = join(cacheDir(), cacheFiles()[0]);
    chmodSync(file, 0o644);
    await listMany(env, cfg, 1, runEnv);
    assert.equal(sts.calls.length, 2);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  test('a symlink in place of the cache file is not followed', async () => {
    const file = join(cacheDir(), cacheFiles()[0]);
    // The same entry with a key S3 refuses: were it read through the link, the command would fail.
    const bogus = JSON.parse(readFileSync(file, 'utf8'));
    bogus.accessKeyId = 'GPBBOGUSKEY';
    const target = env.writeFile('elsewhere.json', JSON.stringify(bogus));
    chmodSync(target, 0o600);
    rmSync(file);
    symlinkSync(target, file);
    await listMany(env, cfg, 1, runEnv);
    assert.equal(sts.calls.length, 3);
    assert.ok(lstatSync(file).isFile(), 'the link is replaced by a regular file');
    assert.equal(JSON.parse(readFileSync(target, 'utf8')).accessKeyId, 'GPBBOGUSKEY', 'the link target is left alone');
  });

  test('credentials close to expiry are fetched again, and the new ones shared', async () => {
    const file = join(cacheDir(), cacheFiles()[0]);
    const entry = JSON.parse(readFileSync(file, 'utf8'));
    entry.expiration = new Date(Date.now() + 2 * MINUTE).toISOString(); // inside the 5-minute margin
    writeFileSync(file, JSON.stringify(entry), { mode: 0o600 });
    await listMany(env, cfg, 1, runEnv);
    assert.equal(sts.calls.length, 4);
    assert.ok(Date.parse(JSON.parse(readFileSync(file, 'utf8')).expiration) - Date.now() > 50 * MINUTE);
    await listMany(env, cfg, 3, runEnv);
    assert.equal(sts.calls.length, 4);
  });

  test('answers that expire within the margin are fetched by every process', async () => {
    expiresIn = 4 * MINUTE;
    try {
      rmSync(join(cacheDir(), cacheFiles()[0]));
      await listMany(env, cfg, 1, runEnv);
      await listMany(env, cfg, 1, runEnv);
      assert.equal(sts.calls.length, 6);
    } finally {
      expiresIn = 60 * MINUTE;
    }
  });

  test('a cache directory others can write to is not used', async () => {
    chmodSync(cacheDir(), 0o733);
    try {
      for (const f of cacheFiles()) rmSync(join(cacheDir(), f));
      await listMany(env, cfg, 1, runEnv);
      await listMany(env, cfg, 1, runEnv);
      assert.equal(sts.calls.length, 8);
      assert.deepEqual(cacheFiles(), [], 'nothing written there');
    } finally {
      chmodSync(cacheDir(), 0o700);
    }
  });

  test('another role is another entry', async () => {
    const other = env.writeConfig(
      testOptions(s3, BUCKET, 'role', {
        aws_access_key_id: 'GPBBASEKEY',
        aws_secret_access_key: 'gpb-base-secret-never-printed-42',
        role_arn: 'arn:aws:iam::123456789012:role/gpbackup-reader',
      }),
      'other.yaml',
    );
    const before = sts.calls.length;
    await listMany(env, other, 2, runEnv);
    await listMany(env, cfg, 2, runEnv);
    assert.equal(sts.calls.length, before + 2); // one for each role (cfg's entry was removed by the test before)
    assert.equal(cacheFiles().length, 2);
  });
});

describe('instance metadata service (IMDSv2) answers are shared too', () => {
  // 20, not 50: the SDK gives the metadata service 2 s an attempt, which a machine this loaded can miss.
  test('20 processes started at once fetch the instance role once', async () => {
    const env = new PluginEnv();
    const imds = await standIn((path, method) => {
      if (method === 'PUT' && path === '/latest/api/token') return { body: 'gpb-imds-token' };
      if (path === '/latest/meta-data/iam/security-credentials/') return { body: 'gpbackup-role' };
      if (path === '/latest/meta-data/iam/security-credentials/gpbackup-role')
        return {
          type: 'application/json',
          body: JSON.stringify({
            Code: 'Success',
            Type: 'AWS-HMAC',
            AccessKeyId: TEST_ACCESS_KEY,
            SecretAccessKey: TEST_SECRET_KEY,
            Token: SESSION_TOKEN,
            Expiration: new Date(Date.now() + 60 * MINUTE).toISOString(),
          }),
        };
      return { status: 404, body: '' };
    });
    try {
      const opts = testOptions(s3, BUCKET, 'imds');
      delete opts.aws_access_key_id;
      delete opts.aws_secret_access_key;
      const cfg = env.writeConfig(opts);
      await listMany(env, cfg, 20, { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url });
      const fetches = imds.calls.filter(c => c.endsWith('/security-credentials/gpbackup-role'));
      assert.equal(fetches.length, 1, imds.calls.join('\n'));
    } finally {
      env.cleanup();
      await imds.close();
    }
  });
});

test('static keys from the config are never cached', async () => {
  const env = new PluginEnv();
  try {
    const cfg = env.writeConfig(testOptions(s3, BUCKET, 'static'));
    await listMany(env, cfg, 2, {});
    assert.equal(existsSync(join(env.home, '.cache')), false);
  } finally {
    env.cleanup();
  }
});
