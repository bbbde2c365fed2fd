/**
 * Runs test/conformance/plugin_conformance.sh (the plugin_test.sh-style
 * conformance suite) against the built plugin and a real S3 server.
 *
 *   node --import tsx --test test/integration/conformance.test.ts
 *
 * Small multipart sizes (5MB) make the suite's 12 MiB stream span several
 * upload parts and ranged downloads; a second config with other restore chunk
 * sizes restores the same objects (the script's cross-restore checks). A
 * config naming a bucket that does not exist must make the suite fail, which
 * proves the suite can fail.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PLUGIN_BIN, PROJECT_ROOT, PluginEnv, runProcess, type Options, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const SCRIPT = join(PROJECT_ROOT, 'test/conformance/plugin_conformance.sh');
const BUCKET = 'conformance';
const FOLDER = 'gpbackup/conformance';
const SUMMARY = /^(\d+) passed, (\d+) failed$/;

let server: TestS3Server;
let env: PluginEnv;

function options(overrides: Options = {}): Options {
  return testOptions(server, BUCKET, FOLDER, overrides);
}

function runSuite(configs: string[], extraEnv: Record<string, string> = {}): Promise<RunResult> {
  const tmp = env.path('tmp');
  mkdirSync(tmp, { recursive: true });
  return runProcess('bash', [SCRIPT, PLUGIN_BIN, ...configs], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: env.home,
      USER: 'gpadmin',
      TMPDIR: tmp,
      ...extraEnv,
    },
    timeoutMs: 600_000,
  });
}

function summaryOf(r: RunResult): { passed: number; failed: number } | undefined {
  const lines = r.stdout.toString().trimEnd().split('\n');
  const m = SUMMARY.exec(lines[lines.length - 1] ?? '');
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : undefined;
}

function transcript(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

before(async () => {
  server = await startS3Server();
  await server.createBucket(BUCKET);
  env = new PluginEnv();
});

after(async () => {
  await server?.stop();
  env?.cleanup();
});

test('the plugin passes the conformance suite against a real S3 server', { timeout: 600_000 }, async () => {
  const config = env.writeConfig(options(), 'config.yaml');
  const second = env.writeConfig(
    options({ restore_multipart_chunksize: '6MB', restore_max_concurrent_requests: '2' }),
    'config_second.yaml',
  );

  const r = await runSuite([config, second]);

  const summary = summaryOf(r);
  assert.ok(summary, `no "N passed, M failed" summary line\n${transcript(r)}`);
  assert.equal(summary.failed, 0, transcript(r));
  assert.ok(summary.passed > 0, transcript(r));
  assert.equal(r.code, 0, transcript(r));
  assert.doesNotMatch(r.stdout.toString(), /^not ok /m, transcript(r));
  assert.match(r.stdout.toString(), /^ok - restore_data_subset '2 0 700000 900000 900001'/m, transcript(r));

  // The suite's final delete_backup calls leave nothing behind.
  assert.deepEqual(await server.listKeys(BUCKET, FOLDER), [], 'objects left after the final cleanup');
  assert.deepEqual(await server.listMultipartUploads(BUCKET), [], 'multipart uploads left behind');
});

test('the conformance suite fails when the bucket does not exist', { timeout: 600_000 }, async () => {
  const config = env.writeConfig(options({ bucket: 'no-such-bucket-for-conformance' }), 'config_missing_bucket.yaml');

  const r = await runSuite([config], { PLUGIN_TIMEOUT: '120' });

  assert.notEqual(r.code, 0, transcript(r));
  const summary = summaryOf(r);
  assert.ok(summary, `no "N passed, M failed" summary line\n${transcript(r)}`);
  assert.ok(summary.failed > 0, transcript(r));
  // The storage-independent checks still pass: the failures are the bucket's.
  assert.match(r.stdout.toString(), /^ok - plugin_api_version /m, transcript(r));
  assert.match(r.stdout.toString(), /^not ok - backup_data of a small text$/m, transcript(r));
});
