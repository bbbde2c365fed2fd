/**
 * The host's trust store and proxies, on every path: HTTPS_PROXY/HTTP_PROXY/NO_PROXY (Go's
 * rules: never for loopback addresses, so endpoints here are names only the test proxy
 * resolves, to 127.0.0.1; NO_PROXY matching is in test/unit/proxy.test.ts), CONNECT tunnels verified with the same CAs (system store and
 * ca_bundle), SSL_CERT_FILE/SSL_CERT_DIR as the system store, a refused proxy named as the
 * proxy, and role_arn's STS call through the proxy over https with a private CA.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { closedPort, startForwardProxy, type ForwardProxy } from '../support/forward-proxy.js';
import { PluginEnv, patternBytes, registerSecret, type Options } from '../support/plugin.js';
import { startS3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, testOptions, type TestS3Server } from '../support/s3server.js';
import { startTlsFront, type TlsFront } from '../support/tls.js';

const MB = 1024 * 1024;
const BUCKET = 'gpbackup-proxy';
const TS = '20250202020202';
/**
 * Reachable only through the test proxy, which resolves every name to 127.0.0.1; never looked
 * up in DNS. Of the form s3rver takes for path-style (s3.<x>.amazonaws.com): any other name it
 * would read as a virtual-hosted bucket.
 */
const NAME = 's3.gpb-test.amazonaws.com';
const SESSION_TOKEN = 'gpb-proxied-session-token-0123456789';

let s3: TestS3Server;
let front: TlsFront;
let proxy: ForwardProxy;
let env: PluginEnv;
let n = 0;

before(async () => {
  registerSecret(SESSION_TOKEN, 'SESSION_TOKEN');
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  front = await startTlsFront(s3.port, [NAME, 'sts.gpb.internal']);
  proxy = await startForwardProxy();
  env = new PluginEnv();
});

after(async () => {
  await proxy?.stop();
  await front?.stop();
  await s3?.stop();
  env?.cleanup();
});

function config(extra: Options): string {
  return env.writeConfig(testOptions(s3, BUCKET, 'proxied', extra), `proxy-${++n}.yaml`);
}

async function roundTrip(cfg: string, vars: Record<string, string>, size = 6 * MB + 5): Promise<void> {
  const data = patternBytes(size, ++n);
  const path = env.backupPath(TS, `gpbackup_0_${TS}_${n}`);
  const up = await env.run(['backup_data', cfg, path], { stdin: data, env: vars });
  assert.equal(up.code, 0, up.stderr);
  assert.equal(up.stderr, '');
  const down = await env.run(['restore_data', cfg, path], { env: vars });
  assert.equal(down.code, 0, down.stderr);
  assert.equal(down.stderr, '');
  assert.ok(down.stdout.equals(data), 'restored bytes differ');
}

describe('proxies from the environment', () => {
  test('HTTP_PROXY: an http endpoint only the proxy can reach works, every request through it', async () => {
    const seen = proxy.seen.length;
    await roundTrip(config({ endpoint: `http://${NAME}:${s3.port}` }), { HTTP_PROXY: proxy.url });
    const mine = proxy.seen.slice(seen);
    assert.ok(mine.length >= 6, mine.join('\n'));
    assert.ok(mine.every(l => l.includes(`http://${NAME}:${s3.port}/`)), mine.join('\n'));
  });

  test('HTTPS_PROXY: an https endpoint through a CONNECT tunnel, verified with ca_bundle', async () => {
    const seen = proxy.seen.length;
    await roundTrip(config({ endpoint: `https://${NAME}:${front.port}`, ca_bundle: front.caFile }), { https_proxy: proxy.url });
    assert.ok(proxy.seen.slice(seen).includes(`CONNECT ${NAME}:${front.port}`));
  });

  test('the http_proxy option with an https endpoint keeps ca_bundle for the tunnel', async () => {
    const seen = proxy.seen.length;
    await roundTrip(config({ endpoint: `https://${NAME}:${front.port}`, ca_bundle: front.caFile, http_proxy: proxy.url }), {});
    assert.ok(proxy.seen.slice(seen).includes(`CONNECT ${NAME}:${front.port}`));
  });

  test('through the tunnel the system store applies too (SSL_CERT_FILE, no ca_bundle)', async () => {
    await roundTrip(config({ endpoint: `https://${NAME}:${front.port}` }), { HTTPS_PROXY: proxy.url, SSL_CERT_FILE: front.caFile }, 1000);
  });

  test('a loopback endpoint is never proxied (as in Go): HTTP_PROXY naming a dead port changes nothing', async () => {
    await roundTrip(config({}), { HTTP_PROXY: `http://127.0.0.1:${await closedPort()}` }, 1000);
  });

  test('a refused proxy is named as the proxy, with where it was set', async () => {
    const dead = await closedPort();
    for (const [extra, vars, source] of [
      [{}, { HTTP_PROXY: `http://user:proxy-password-42@127.0.0.1:${dead}` }, 'HTTP_PROXY'],
      [{ http_proxy: `http://127.0.0.1:${dead}` }, {}, 'the http_proxy option'],
    ] as const) {
      const r = await env.run(['backup_data', config({ endpoint: `http://${NAME}:${s3.port}`, max_retries: '0', ...extra }), env.backupPath(TS, 'dead')], {
        stdin: 'x',
        env: vars,
      });
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, new RegExp(`connection refused by the proxy http://127\\.0\\.0\\.1:${dead} \\(${source === 'HTTP_PROXY' ? 'HTTP_PROXY' : 'http_proxy'}\\) on the way to http://${NAME.replace(/\./g, '\\.')}:${s3.port} \\(check ${source}\\)`));
      assert.doesNotMatch(r.stderr, /proxy-password-42/);
    }
  });
});

describe('the system trust store', () => {
  test('SSL_CERT_FILE naming the CA: an https endpoint works without ca_bundle', async () => {
    await roundTrip(config({ endpoint: front.endpoint }), { SSL_CERT_FILE: front.caFile });
  });

  test('SSL_CERT_DIR holding the CA: works without ca_bundle', async () => {
    const dir = env.path('certs');
    mkdirSync(dir, { recursive: true });
    copyFileSync(front.caFile, `${dir}/private-ca.pem`);
    await roundTrip(config({ endpoint: front.endpoint }), { SSL_CERT_FILE: front.otherCaFile, SSL_CERT_DIR: dir }, 1000);
  });

  test('a system store without the CA: refused, naming the certificate', async () => {
    const r = await env.run(['backup_data', config({ endpoint: front.endpoint, max_retries: '0' }), env.backupPath(TS, 'untrusted')], {
      stdin: 'x',
      env: { SSL_CERT_FILE: front.otherCaFile },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /TLS certificate of https:\/\/127\.0\.0\.1:\d+ not trusted/);
  });
});

describe('role_arn: STS through the proxy, over https with a private CA', () => {
  let sts: Server;
  let stsFront: TlsFront;
  let calls = 0;

  before(async () => {
    sts = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        calls++;
        res.setHeader('content-type', 'text/xml');
        res.end(
          '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>' +
            `<AccessKeyId>${TEST_ACCESS_KEY}</AccessKeyId><SecretAccessKey>${TEST_SECRET_KEY}</SecretAccessKey>` +
            `<SessionToken>${SESSION_TOKEN}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>` +
            '<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser>' +
            '</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>',
        );
      });
    });
    await new Promise<void>(r => sts.listen(0, '127.0.0.1', r));
    stsFront = await startTlsFront((sts.address() as AddressInfo).port, ['sts.gpb.internal']);
  });

  after(async () => {
    await stsFront?.stop();
    await new Promise(r => sts?.close(r));
  });

  test('AssumeRole goes through HTTPS_PROXY, trusted through ca_bundle; S3 (loopback) directly', async () => {
    const seen = proxy.seen.length;
    const cfg = config({
      aws_access_key_id: 'GPBBASEKEY',
      aws_secret_access_key: 'gpb-base-secret-never-printed-43',
      role_arn: 'arn:aws:iam::123456789012:role/r',
      ca_bundle: stsFront.caFile,
    });
    await roundTrip(cfg, { HTTPS_PROXY: proxy.url, AWS_ENDPOINT_URL_STS: `https://sts.gpb.internal:${stsFront.port}` }, 1000);
    // Backup and restore share one AssumeRole: the second process takes the host's cache (credential-cache.ts).
    assert.equal(calls, 1);
    assert.deepEqual(proxy.seen.slice(seen), [`CONNECT sts.gpb.internal:${stsFront.port}`]);
  });
});
