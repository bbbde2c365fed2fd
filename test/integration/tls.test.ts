/**
 * https endpoints: the plugin verifies the server's certificate, trusts a private CA only
 * when told to (ca_bundle, or AWS_CA_BUNDLE when ca_bundle is unset, or Node's
 * NODE_EXTRA_CA_CERTS), and NODE_TLS_REJECT_UNAUTHORIZED=0 in its environment changes
 * nothing. The endpoint is an https front (test/support/tls.ts) with a certificate from a
 * throwaway CA, passing requests on to the real S3 test server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PluginEnv, patternBytes, type Options, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';
import { startTlsFront, type TlsFront } from '../support/tls.js';

const MB = 1024 * 1024;
const BUCKET = 'gpbackup-tls';
const FOLDER = 'cluster1/tls';
const TS = '20240102030405';

let s3: TestS3Server;
let front: TlsFront;
let env: PluginEnv;
let files = 0;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  front = await startTlsFront(s3.port);
  env = new PluginEnv();
});

after(async () => {
  await front?.stop();
  await s3?.stop();
  env?.cleanup();
});

/** A config for the https front, with `extra` on top. */
function config(extra: Options = {}): string {
  return env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: front.endpoint, encryption: 'on', ...extra }), `tls-${++files}.yaml`);
}

function keyOf(file: string): string {
  return `${FOLDER}/backups/${TS.slice(0, 8)}/${TS}/${file}`;
}

/** backup_data then restore_data of `size` bytes through the front; the bytes must come back exactly. */
async function roundTrip(cfg: string, size: number, seed: number, vars: Record<string, string> = {}): Promise<void> {
  const data = patternBytes(size, seed);
  const file = `gpbackup_0_${TS}_${seed}`;
  const path = env.backupPath(TS, file);
  const requestsBefore = front.requests;
  const up = await env.run(['backup_data', cfg, path], { stdin: data, env: vars });
  assert.equal(up.code, 0, up.stderr);
  assert.equal(up.stderr, '');
  assert.equal((await s3.headObject(BUCKET, keyOf(file)))?.size, size);
  const down = await env.run(['restore_data', cfg, path], { env: vars });
  assert.equal(down.code, 0, down.stderr);
  assert.equal(down.stderr, '');
  assert.equal(down.stdout.length, size);
  assert.ok(down.stdout.equals(data), 'restored bytes differ');
  assert.ok(front.requests > requestsBefore, 'the requests did not go through the https front');
}

/** A backup_data that must fail at the TLS handshake: one line naming the certificate, nothing written. */
async function expectUntrusted(cfg: string, vars: Record<string, string> = {}): Promise<RunResult> {
  const file = `gpbackup_0_${TS}_untrusted_${++files}`;
  const failuresBefore = front.handshakeFailures;
  const requestsBefore = front.requests;
  const r = await env.run(['backup_data', cfg, env.backupPath(TS, file)], { stdin: patternBytes(1000, 9), env: vars, timeoutMs: 30_000 });
  assert.equal(r.signal, null, 'killed: it hung');
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.length, 0);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /-\[ERROR\]:-.*certificate/i);
  assert.match(lines[0]!, new RegExp(`127\\.0\\.0\\.1:${front.port}`));
  assert.doesNotMatch(r.stderr, /^\s+at /m);
  assert.ok(front.handshakeFailures > failuresBefore, 'the front saw no refused handshake');
  assert.equal(front.requests, requestsBefore, 'a request got through the https front');
  assert.equal(await s3.headObject(BUCKET, keyOf(file)), undefined);
  assert.deepEqual(await s3.listMultipartUploads(BUCKET), []);
  return r;
}

// Most cases set max_retries 0: the test of retries is the second one, and each retry costs a backoff.
describe('a certificate from a CA the plugin was not told about', () => {
  test('without a CA option backup_data fails with one line naming the certificate, and writes nothing', async () => {
    await expectUntrusted(config());
  });

  test('the message says what to do (the ca_bundle option) and suggests no Node.js flag, which the plugin ignores', async () => {
    const r = await expectUntrusted(config({ max_retries: '0' }));
    assert.match(r.stderr, /ca_bundle/);
    assert.doesNotMatch(r.stderr, /Node\.js|--use-system-ca|NODE_/);
  });

  test('a certificate failure is not retried: one handshake, then the error', async () => {
    const failuresBefore = front.handshakeFailures;
    const started = Date.now();
    await expectUntrusted(config());
    assert.equal(front.handshakeFailures - failuresBefore, 1, 'handshakes tried');
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  });

  test('ca_bundle naming an unrelated CA fails', async () => {
    await expectUntrusted(config({ ca_bundle: front.otherCaFile, max_retries: '0' }));
  });

  test('AWS_CA_BUNDLE naming an unrelated CA fails', async () => {
    await expectUntrusted(config({ max_retries: '0' }), { AWS_CA_BUNDLE: front.otherCaFile });
  });

  test('ca_bundle wins over AWS_CA_BUNDLE: the unrelated CA in ca_bundle fails though the environment names the right one', async () => {
    await expectUntrusted(config({ ca_bundle: front.otherCaFile, max_retries: '0' }), { AWS_CA_BUNDLE: front.caFile });
  });

  test('NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment does not turn verification off', async () => {
    await expectUntrusted(config({ max_retries: '0' }), { NODE_TLS_REJECT_UNAUTHORIZED: '0' });
    await expectUntrusted(config({ ca_bundle: front.otherCaFile, max_retries: '0' }), { NODE_TLS_REJECT_UNAUTHORIZED: '0' });
  });
});

describe('a CA the plugin is told about', () => {
  test('ca_bundle: backup_data and restore_data round trip bit-exact (multipart, parallel ranged GETs)', async () => {
    await roundTrip(config({ ca_bundle: front.caFile }), 11 * MB + 7, 101);
  });

  test('AWS_CA_BUNDLE without ca_bundle: round trip', async () => {
    await roundTrip(config(), 3 * MB + 1, 102, { AWS_CA_BUNDLE: front.caFile });
  });

  test('ca_bundle with an unrelated AWS_CA_BUNDLE in the environment: ca_bundle is used', async () => {
    await roundTrip(config({ ca_bundle: front.caFile }), 1000, 103, { AWS_CA_BUNDLE: front.otherCaFile });
  });

  test('NODE_EXTRA_CA_CERTS (an administrator-chosen CA): round trip', async () => {
    await roundTrip(config(), 1000, 104, { NODE_EXTRA_CA_CERTS: front.caFile });
  });

  test('the other commands work over TLS too: setup, list_directory, restore_data_subset, delete_backup', async () => {
    const cfg = config({ ca_bundle: front.caFile });
    const setup = await env.run(['setup_plugin_for_backup', cfg, env.path('coord'), 'master', '"-1"']);
    assert.equal(setup.code, 0, setup.stderr);
    const data = patternBytes(6 * MB, 105);
    const path = env.backupPath(TS, `gpbackup_1_${TS}_subset`);
    assert.equal((await env.run(['backup_data', cfg, path], { stdin: data })).code, 0);
    const offsets = env.writeFile('offsets', `2 10 20 ${5 * MB} ${5 * MB + 100}`);
    const subset = await env.run(['restore_data_subset', cfg, path, offsets]);
    assert.equal(subset.code, 0, subset.stderr);
    assert.ok(subset.stdout.equals(Buffer.concat([data.subarray(10, 20), data.subarray(5 * MB, 5 * MB + 100)])));
    const listing = await env.run(['list_directory', cfg]);
    assert.equal(listing.code, 0, listing.stderr);
    assert.match(listing.stdout.toString(), new RegExp(`${keyOf(`gpbackup_1_${TS}_subset`)}\t${6 * MB}`));
    const deleted = await env.run(['delete_backup', cfg, TS]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(await s3.listKeys(BUCKET, keyOf('')), []);
  });
});

test('restore_data verifies the certificate too: an object written with the CA does not restore without it', async () => {
  const data = patternBytes(7 * 1024 * 1024, 77); // two ranged GETs at 5 MB
  const path = env.backupPath(TS, `gpbackup_0_${TS}_77`);
  const up = await env.run(['backup_data', config({ ca_bundle: front.caFile }), path], { stdin: data });
  assert.equal(up.code, 0, up.stderr);
  const failuresBefore = front.handshakeFailures;
  const requestsBefore = front.requests;
  const down = await env.run(['restore_data', config(), path], { timeoutMs: 30_000 });
  assert.equal(down.code, 1, down.stderr);
  assert.equal(down.stdout.length, 0, 'nothing reaches stdout');
  assert.match(down.stderr, /restore_data: Error while downloading .*TLS certificate of https:\/\/127\.0\.0\.1:\d+ not trusted: .*\(name its CA with the ca_bundle option\)/);
  assert.equal(front.handshakeFailures - failuresBefore, 1, 'refused once, not retried');
  assert.equal(front.requests, requestsBefore);
});

test('AWS_CA_BUNDLE naming a missing file fails with one line naming it', async () => {
  const r = await env.run(['backup_data', config(), env.backupPath(TS, 'gpbackup_0_nobundle')], {
    stdin: 'x',
    env: { AWS_CA_BUNDLE: env.path('no-such-bundle.pem') },
  });
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /AWS_CA_BUNDLE .*no-such-bundle\.pem: no such file/);
  assert.equal(await s3.headObject(BUCKET, keyOf('gpbackup_0_nobundle')), undefined);
});
