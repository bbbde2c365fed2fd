/**
 * list_backups on a folder of 1,000 backups answers in seconds: the folder is listed once (1,000
 * keys a page), then each backup's config and report are read 16 at a time. The backups are put
 * with the test server's own client (what gpbackup leaves: test/support/gpbackup-fixture.ts's
 * files, one data file a segment), since 1,000 backups through the executable would take minutes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { configYaml, reportText, tocYaml, type FixtureBackup } from '../support/gpbackup-fixture.js';
import { backupKey, PluginEnv } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-inventory-scale';
const FOLDER = 'cluster1/scale';
const BACKUPS = 1000;
/** The bound the test holds list_backups to; docs/operations.md states the time measured. */
const BOUND_MS = 20_000;

let s3: TestS3Server;
let env: PluginEnv;
let cfg: string;

/** 1,000 timestamps a minute apart from 2025-01-01 00:00:00. */
function timestamps(): string[] {
  return Array.from({ length: BACKUPS }, (_, i) => {
    const d = new Date(Date.UTC(2025, 0, 1, 0, i));
    return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  });
}

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER));
  const puts: Array<[string, string]> = [];
  for (const ts of timestamps()) {
    const b: FixtureBackup = { timestamp: ts, singleDataFile: true, compression: 'gzip', segments: 2, tables: [{ oid: 16384, schema: 'public', name: 't' }] };
    const dir = backupKey(FOLDER, ts);
    puts.push([`${dir}gpbackup_${ts}_config.yaml`, configYaml(b, env.bin)]);
    puts.push([`${dir}gpbackup_${ts}_report`, reportText(b)]);
    puts.push([`${dir}gpbackup_${ts}_toc.yaml`, tocYaml(b)]);
    puts.push([`${dir}gpbackup_${ts}_metadata.sql`, 'CREATE TABLE public.t (id int);\n']);
    for (const c of [0, 1]) {
      puts.push([`${dir}gpbackup_${c}_${ts}.gz`, 'x'.repeat(10)]);
      puts.push([`${dir}gpbackup_${c}_${ts}_toc.yaml`, 'dataentries:\n  16384:\n    startbyte: 0\n    endbyte: 10\n']);
    }
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < puts.length) {
        const [key, body] = puts[next++]!;
        await s3.putObject(BUCKET, key, body);
      }
    }),
  );
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

test(`list_backups lists ${BACKUPS} backups in seconds`, { timeout: 120_000 }, async t => {
  const started = Date.now();
  const r = await env.run(['list_backups', cfg, '--json'], { timeoutMs: 60_000 });
  const ms = Date.now() - started;
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout.toString()) as Array<{ timestamp: string; complete: boolean }>;
  assert.equal(list.length, BACKUPS);
  assert.deepEqual(list.map(b => b.timestamp), timestamps().reverse());
  assert.ok(list.every(b => b.complete));
  assert.ok(ms < BOUND_MS, `list_backups took ${ms} ms for ${BACKUPS} backups (bound ${BOUND_MS} ms)`);
  t.diagnostic(`list_backups: ${BACKUPS} backups in ${ms} ms`);
});
