/**
 * The low-speed limit (low_speed_limit, low_speed_time; issue 12): a server
 * that trickles a GET's body a byte every 0.3 s (never idle long enough for
 * request_timeout) is abandoned after low_speed_time, retried, and the command
 * fails with one clear line; on the direct GET path, on node:http (which
 * restore_max_bandwidth makes the download use), and on a chunked answer the
 * direct path hands to node:http's parser. A normal transfer under the same
 * limit is unaffected.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTrickleProxy, type TrickleProxy } from '../support/personas/trickle.js';
import { PluginEnv, patternBytes } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-lowspeed';
const FOLDER = 'cluster1/lowspeed';
const TS = '20240701000000';
const FILE = `gpbackup_0_${TS}_1`;
const KEY = `${FOLDER}/backups/${TS.slice(0, 8)}/${TS}/${FILE}`;
const DATA = patternBytes(3 * 1024 * 1024 + 7, 5);

let s3: TestS3Server;
let proxy: TrickleProxy;
let chunkedProxy: TrickleProxy;
let env: PluginEnv;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  await s3.putObject(BUCKET, KEY, DATA);
  proxy = await startTrickleProxy(s3.endpoint, 300);
  chunkedProxy = await startTrickleProxy(s3.endpoint, 300, true);
  env = new PluginEnv();
});

after(async () => {
  await proxy?.stop();
  await chunkedProxy?.stop();
  await s3?.stop();
  env?.cleanup();
});

const LIMIT = { low_speed_limit: '1KB/s', low_speed_time: '2s', request_timeout: '60s', max_retries: '1' };

for (const [path, extra, trickler] of [
  ['the direct GET path', {}, () => proxy],
  ['node:http', { restore_max_bandwidth: '64MB/s' }, () => proxy],
  ["a chunked answer read by node:http's parser", {}, () => chunkedProxy],
] as const) {
  test(`a trickling server is abandoned after low_speed_time and retried, then the restore fails saying why (${path})`, async () => {
    const t = trickler();
    const cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: t.endpoint, ...LIMIT, ...extra }), 'trickle.yaml');
    const before = t.trickled;
    const started = Date.now();
    const r = await env.run(['restore_data', cfg, env.backupPath(TS, FILE)]);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`downloading s3://${BUCKET}/${KEY}: .*moved less than 1024 bytes a second for 2 s \\(low_speed_limit, low_speed_time\\)`));
    assert.ok(t.trickled - before >= 2, `abandoned and tried again (${t.trickled - before} GETs)`);
    // Two attempts of about 2 s each, not request_timeout's 60 s, and not the body's 3 MiB at 3 bytes a second.
    assert.ok(seconds < 30, `took ${seconds} s`);
  });
}

test('a normal transfer under the same limit is unaffected, with or without a bandwidth limit', async () => {
  for (const extra of [{}, { restore_max_bandwidth: '2MB/s' }] as Array<Record<string, string>>) {
    const cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { ...LIMIT, ...extra }), 'direct.yaml');
    const r = await env.run(['restore_data', cfg, env.backupPath(TS, FILE)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.ok(r.stdout.equals(DATA));
    const up = await env.run(['backup_data', cfg, env.backupPath(TS, `gpbackup_1_${TS}_1`)], { stdin: DATA });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(up.stderr, '');
  }
});
