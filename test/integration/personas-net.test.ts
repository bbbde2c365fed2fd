/**
 * Servers that behave like the field, between the plugin and the S3 test server
 * (test/support/personas): a clock 20 minutes ahead that refuses skewed signatures, a 301 to
 * another region, and a 307 to the real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCommandSet } from '../support/command-set.js';
import type { Front } from '../support/personas/front.js';
import { startTemporaryRedirectServer, startWrongRegionServer } from '../support/personas/redirect.js';
import { startSkewedServer } from '../support/personas/skew.js';
import { PluginEnv, patternBytes } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-personas';
let s3: TestS3Server;
let env: PluginEnv;
const fronts: Front[] = [];

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
});

after(async () => {
  for (const f of fronts) await f.stop();
  await s3?.stop();
  env?.cleanup();
});

async function front(start: Promise<Front>): Promise<Front> {
  const f = await start;
  fronts.push(f);
  return f;
}

describe('a server clock 20 minutes ahead (RequestTimeTooSkewed)', () => {
  test('the whole command set works: each process signs again once with the server\'s time', async () => {
    const skewed = await front(startSkewedServer(s3.port));
    const cfg = env.writeConfig(testOptions(s3, BUCKET, 'skew', { endpoint: skewed.endpoint }), 'skew.yaml');
    await runCommandSet(env, s3, BUCKET, 'skew', cfg, '20250101010101');
    assert.ok(skewed.passed > 0);
    // Every process is refused at most a few times (its first requests, sent at once), not on every request.
    assert.ok(skewed.answered <= 12 * 3, `refused ${skewed.answered} requests`);
    assert.match(env.logText(), /the server's clock is 1[12]\d\d s ahead of this host's \(RequestTimeTooSkewed\)/);
  });

  test('a HEAD refused for skew (403 with no body) is corrected by the Date alone', async () => {
    const skewed = await front(startSkewedServer(s3.port));
    // max_retries 0: signing again with the server's time is not a retry.
    const cfg = env.writeConfig(testOptions(s3, BUCKET, 'skewhead', { endpoint: skewed.endpoint, max_retries: '0' }), 'skewhead.yaml');
    // A multipart object restores with a HEAD first.
    const data = patternBytes(6 * 1024 * 1024, 5);
    const path = env.backupPath('20250101010102', 'gpbackup_0_20250101010102_1');
    assert.equal((await env.run(['backup_data', cfg, path], { stdin: data })).code, 0);
    const down = await env.run(['restore_data', cfg, path]);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(down.stdout.equals(data));
  });
});

describe('redirects', () => {
  test('301 PermanentRedirect: one line that names the bucket\'s region and the option to set', async () => {
    const moved = await front(startWrongRegionServer(s3.port, 'eu-west-3'));
    const cfg = env.writeConfig(testOptions(s3, BUCKET, 'moved', { endpoint: moved.endpoint }), 'moved.yaml');
    const path = env.backupPath('20250101010103', 'gpbackup_0_20250101010103_1');
    for (const args of [['backup_data', cfg, path], ['restore_data', cfg, path], ['list_directory', cfg]]) {
      const r = await env.run(args, { stdin: 'x' });
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /the bucket is in region eu-west-3, set region: eu-west-3/);
      assert.doesNotMatch(r.stderr, /after \d+ attempts/, 'a 301 is not retried');
    }
    assert.deepEqual(await s3.listKeys(BUCKET, 'moved/'), []);
  });

  test('307 Temporary Redirect: followed, signed for the new host; the whole command set works', async () => {
    const redirecting = await front(startTemporaryRedirectServer(s3.port));
    const cfg = env.writeConfig(testOptions(s3, BUCKET, 'redirected', { endpoint: redirecting.endpoint }), 'redirected.yaml');
    await runCommandSet(env, s3, BUCKET, 'redirected', cfg, '20250101010104');
    assert.ok(redirecting.answered > 10, `${redirecting.answered} redirects`);
    assert.equal(redirecting.passed, 0);
  });
});
