/**
 * role_arn: the plugin asks STS (AssumeRole, through the AWS SDK's STS client,
 * loaded inside the executable) for temporary credentials, signed with the
 * credentials it has, and signs every S3 request with the answer. No STS can
 * be installed here, so a stand-in on 127.0.0.1 (AWS_ENDPOINT_URL_STS, which
 * the SDK honours) checks the request and answers as STS does; S3 is the real
 * test server, which only knows the assumed key pair.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { PluginEnv, patternBytes, registerSecret } from '../support/plugin.js';
import { startS3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-role';
const TS = '20240809101112';
const ROLE = 'arn:aws:iam::123456789012:role/gpbackup-writer';
const SESSION_TOKEN = 'gpb-assumed-session-token-0123456789';

let s3: TestS3Server;
let env: PluginEnv;
let sts: Server;
let stsUrl: string;
const stsCalls: Array<{ headers: IncomingHttpHeaders; body: URLSearchParams }> = [];
let refuse = false;

before(async () => {
  registerSecret(SESSION_TOKEN, 'SESSION_TOKEN');
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  sts = createServer((req, res) => {
    let text = '';
    req.on('data', d => (text += d));
    req.on('end', () => {
      const body = new URLSearchParams(text);
      stsCalls.push({ headers: req.headers, body });
      res.setHeader('content-type', 'text/xml');
      if (refuse) {
        res.statusCode = 403;
        res.end(
          '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>' +
            `<Message>User is not authorized to perform: sts:AssumeRole on resource: ${ROLE}</Message></Error><RequestId>1</RequestId></ErrorResponse>`,
        );
        return;
      }
      res.end(
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>' +
          `<AccessKeyId>${TEST_ACCESS_KEY}</AccessKeyId><SecretAccessKey>${TEST_SECRET_KEY}</SecretAccessKey>` +
          `<SessionToken>${SESSION_TOKEN}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>` +
          '<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/gpbackup-writer/s</Arn><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser>' +
          '</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>',
      );
    });
  });
  await new Promise<void>(r => sts.listen(0, '127.0.0.1', r));
  stsUrl = `http://127.0.0.1:${(sts.address() as AddressInfo).port}`;
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
  await new Promise(r => sts?.close(r));
});

/** Base credentials S3 would refuse: only the assumed ones work there. */
function roleOptions(folder: string): Record<string, string> {
  return testOptions(s3, BUCKET, folder, {
    aws_access_key_id: 'GPBBASEKEY',
    aws_secret_access_key: 'gpb-base-secret-never-printed-42',
    role_arn: ROLE,
  });
}

test('role_arn: AssumeRole signed with the base keys, then S3 with the assumed ones', async () => {
  const cfg = env.writeConfig(roleOptions('role'), 'role.yaml');
  const data = patternBytes(50_000, 9);
  const path = env.backupPath(TS, 'gpbackup_0_20240809101112_1');
  const runEnv = { AWS_ENDPOINT_URL_STS: stsUrl };
  const up = await env.run(['backup_data', cfg, path], { stdin: data, env: runEnv });
  assert.equal(up.code, 0, up.stderr);
  const down = await env.run(['restore_data', cfg, path], { env: runEnv });
  assert.equal(down.code, 0, down.stderr);
  assert.ok(down.stdout.equals(data));
  assert.equal(stsCalls.length, 1); // the restore uses the answer the backup cached for the host (credential-cache.test.ts)
  for (const call of stsCalls) {
    assert.equal(call.body.get('Action'), 'AssumeRole');
    assert.equal(call.body.get('RoleArn'), ROLE);
    assert.match(call.body.get('RoleSessionName') ?? '', /^gpbackup_s3_plugin-\d+$/);
    assert.match(String(call.headers.authorization), /Credential=GPBBASEKEY\//);
  }
});

test('role_arn refused by STS: one line naming the role, nothing written', async () => {
  refuse = true;
  const fresh = new PluginEnv(); // a HOME without the previous test's cached credentials
  const cfg = fresh.writeConfig(roleOptions('refused'), 'refused.yaml');
  const r = await fresh.run(['backup_data', cfg, fresh.backupPath(TS, 'gpbackup_0_20240809101112_2')], {
    stdin: 'x',
    env: { AWS_ENDPOINT_URL_STS: stsUrl },
  });
  refuse = false;
  fresh.cleanup();
  assert.equal(r.code, 1);
  assert.match(r.stderr, /assuming role arn:aws:iam::123456789012:role\/gpbackup-writer: .*not authorized/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.deepEqual(await s3.listKeys(BUCKET, 'refused/'), []);
});
