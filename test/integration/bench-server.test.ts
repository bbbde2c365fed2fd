/**
 * test/support/fast-s3.mjs, the in-memory S3 stand-in of `make bench`, answers everything the
 * plugin asks in a benchmark: a multipart backup_data from a pipe, restore_data through parallel
 * ranged GETs (verified against the CRC-32 the stand-in hands back), a single-PUT object, and
 * list_directory. (It checks no signature: it is for speed, never for correctness.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PluginEnv, patternBytes } from '../support/plugin.js';
import { startFastS3 } from '../support/fast-s3.mjs';

let server: { port: number; close(): Promise<void> };
let env: PluginEnv;
let cfg: string;

before(async () => {
  server = await startFastS3();
  const res = await fetch(`http://127.0.0.1:${server.port}/bench`, { method: 'PUT' });
  assert.equal(res.status, 200);
  env = new PluginEnv();
  cfg = env.writeConfig({
    aws_access_key_id: 'BENCHACCESSKEY',
    aws_secret_access_key: 'bench-secret-key-not-checked',
    bucket: 'bench',
    endpoint: `http://127.0.0.1:${server.port}`,
    encryption: 'off',
    folder: 'f',
    backup_multipart_chunksize: '5MB',
    restore_multipart_chunksize: '5MB',
  });
});

after(async () => {
  await server?.close();
  env?.cleanup();
});

test('multipart and single-PUT round trips, and a listing, against the bench server', async () => {
  for (const size of [11 * 1024 * 1024 + 3, 1024]) {
    const data = patternBytes(size, size);
    const path = env.backupPath('20250303030303', `gpbackup_0_20250303030303_${size}`);
    const up = await env.run(['backup_data', cfg, path], { stdin: data });
    assert.equal(up.stderr, '');
    assert.equal(up.code, 0);
    const down = await env.run(['restore_data', cfg, path]);
    assert.equal(down.stderr, '');
    assert.equal(down.code, 0);
    assert.ok(down.stdout.equals(data), `${size} bytes did not round-trip`);
  }
  assert.doesNotMatch(env.logText(), /cannot verify|unverified|WARN/i);
  const list = await env.run(['list_directory', cfg, 'backups/20250303/20250303030303']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout.toString(), /gpbackup_0_20250303030303_1024/);
});
