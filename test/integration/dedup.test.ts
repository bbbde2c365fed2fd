/**
 * deduplication: on, end to end with the built executable against a real S3 server: objects
 * become manifests, unchanged data is stored once, every restore command reads manifests and
 * plain objects alike, and a week of daily backups of a few table streams (some changing each
 * day) stores a fraction of the plain week, every restore byte-checked, and survives
 * delete_backup of the oldest and prune.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { copyRows } from '../support/copy-rows.js';
import { backupKey, PluginEnv, runProcess, toYaml, type RunResult } from '../support/plugin.js';
import { referenceTools, type ReferenceTools } from '../support/reference.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-dedup';
const TS = '20240708091011';

let s3: TestS3Server;
let env: PluginEnv;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

const config = (folder: string, extra: Record<string, string> = {}, name = `${folder.replace(/\//g, '_')}.yaml`) =>
  env.writeConfig({ ...testOptions(s3, BUCKET, folder), ...extra }, name);

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

/** Bytes stored under a prefix, by the plugin's own list_directory. */
async function storedBytes(cfg: string, path?: string): Promise<number> {
  const r = await env.run(['list_directory', cfg, ...(path ? [path] : [])]);
  if (r.code !== 0) return 0;
  return r.stdout
    .toString()
    .trim()
    .split('\n')
    .slice(1)
    .reduce((n, line) => n + Number(line.split('\t')[1] ?? 0), 0);
}

describe('deduplicated objects', () => {
  const folder = 'cluster1/dedup';
  let cfg: string;
  let plainCfg: string;
  const data = copyRows(120_000, 1); // some 10 MiB

  before(() => {
    cfg = config(folder, { deduplication: 'on' });
    plainCfg = config(folder, {}, 'plain-same-folder.yaml');
  });

  test('backup_data writes a manifest; a second backup of the same stream stores no chunk; both restore', async () => {
    const path1 = env.backupPath(TS, `gpbackup_0_${TS}_16384`);
    ok(await env.run(['backup_data', cfg, path1], { stdin: data }), 'backup_data');
    const key = backupKey(folder, TS, `gpbackup_0_${TS}_16384`);
    const manifest = await s3.getObject(BUCKET, key);
    assert.ok(manifest && manifest.subarray(0, 8).equals(Buffer.from('\0GPBKDUP', 'latin1')));
    assert.ok(manifest.length < 1000, `manifest of ${manifest.length} bytes`);
    const chunks = await s3.listKeys(BUCKET, `${folder}/chunks/`);
    assert.ok(chunks.length >= 4, `${chunks.length} chunks`);
    const chunkBytes = await storedBytes(cfg, `${folder}/chunks`);
    assert.ok(chunkBytes < data.length * 0.7, `text rows are zstd-compressed: ${chunkBytes} of ${data.length}`);

    const ts2 = '20240709091011';
    const path2 = env.backupPath(ts2, `gpbackup_0_${ts2}_16384`);
    ok(await env.run(['backup_data', cfg, path2], { stdin: data }), 'second backup_data');
    assert.deepEqual(await s3.listKeys(BUCKET, `${folder}/chunks/`), chunks);
    for (const p of [path1, path2]) assert.ok(ok(await env.run(['restore_data', cfg, p]), 'restore_data').stdout.equals(data));
    // A config without deduplication reads them too.
    assert.ok(ok(await env.run(['restore_data', plainCfg, path2]), 'restore_data, plain config').stdout.equals(data));
    assert.match(env.logText(), /is not client-side encrypted: a deduplication manifest, whose chunks are restored next/);
    assert.match(env.logText(), /deduplicated: \d+ chunk\(s\) fetched and verified/);
    assert.match(env.logText(), /deduplicated: \d+ chunk\(s\), 0 new \(0 bytes of the stream, 0 stored, zstd\)/);
    assert.deepEqual(await s3.listKeys(BUCKET, `${folder}/chunks-sessions/`), []);
  });

  test('restore_data_subset returns the ranges of the stream', async () => {
    const subsetCfg = config(folder, { deduplication: 'on', restore_subset: 'on' }, 'subset.yaml');
    const path = env.backupPath(TS, `gpbackup_0_${TS}_16384`);
    const offsets = [0, 5, 1_000_000, 3_500_000, data.length - 10, data.length];
    const r = ok(await env.run(['restore_data_subset', subsetCfg, path, env.writeFile('offsets', `3 ${offsets.join(' ')}`)]), 'subset');
    const want = Buffer.concat([data.subarray(0, 5), data.subarray(1_000_000, 3_500_000), data.subarray(data.length - 10)]);
    assert.ok(r.stdout.equals(want));
    const beyond = await env.run(['restore_data_subset', subsetCfg, path, env.writeFile('offsets2', `1 0 ${data.length + 1}`)]);
    assert.equal(beyond.code, 1);
    assert.equal(beyond.stdout.length, 0);
  });

  test('backup_file and restore_file round-trip; plain objects in the same folder restore as before', async () => {
    const local = env.backupPath(TS, `gpbackup_${TS}_metadata.sql`, 'master');
    const content = copyRows(3000, 9);
    env.writeFile(local.slice(env.root.length + 1), content);
    ok(await env.run(['backup_file', cfg, local]), 'backup_file');
    env.writeFile(local.slice(env.root.length + 1), 'overwritten');
    ok(await env.run(['restore_file', cfg, local]), 'restore_file');
    assert.ok(readFileSync(local).equals(content));

    const plainPath = env.backupPath(TS, `gpbackup_1_${TS}_16384`);
    const plain = copyRows(20_000, 3);
    ok(await env.run(['backup_data', plainCfg, plainPath], { stdin: plain }), 'plain backup_data');
    assert.ok(ok(await env.run(['restore_data', cfg, plainPath]), 'restore of plain').stdout.equals(plain));
  });

  test('backup_data of a stream no longer than the smallest chunk (256 KiB) stores it whole, in one PUT; one byte more is deduplicated', async () => {
    const smallFolder = 'cluster1/dedup-small';
    const smallCfg = config(smallFolder, { deduplication: 'on', logger_verbosity: 'debug' });
    const whole = copyRows(10_000, 5).subarray(0, 256 * 1024);
    const above = copyRows(10_000, 6).subarray(0, 256 * 1024 + 1);
    assert.equal(whole.length, 256 * 1024);
    const logStart = env.logText().length;
    const wholePath = env.backupPath(TS, `gpbackup_0_${TS}_20000`);
    ok(await env.run(['backup_data', smallCfg, wholePath], { stdin: whole }), 'backup_data, 256 KiB');
    const requests = [...env.logText().slice(logStart).matchAll(/request (\w+) key=/g)].map(m => m[1]);
    assert.deepEqual(requests, ['PutObject'], 'one PUT: no session marker, no HEAD, no manifest');
    const key = backupKey(smallFolder, TS, `gpbackup_0_${TS}_20000`);
    assert.ok((await s3.getObject(BUCKET, key))!.equals(whole), 'stored as it came');
    assert.deepEqual(await s3.listKeys(BUCKET, `${smallFolder}/chunks/`), []);
    assert.ok(ok(await env.run(['restore_data', smallCfg, wholePath]), 'restore_data').stdout.equals(whole));

    const abovePath = env.backupPath(TS, `gpbackup_0_${TS}_20001`);
    ok(await env.run(['backup_data', smallCfg, abovePath], { stdin: above }), 'backup_data, 256 KiB + 1');
    const manifest = (await s3.getObject(BUCKET, backupKey(smallFolder, TS, `gpbackup_0_${TS}_20001`)))!;
    assert.equal(manifest.subarray(0, 8).toString('latin1'), '\0GPBKDUP');
    assert.equal((await s3.listKeys(BUCKET, `${smallFolder}/chunks/`)).length, 1);
    assert.ok(ok(await env.run(['restore_data', smallCfg, abovePath]), 'restore_data').stdout.equals(above));
  });

  test('a missing chunk fails the restore with one line', async () => {
    const f = 'cluster1/dedup-missing';
    const c = config(f, { deduplication: 'on' });
    const path = env.backupPath(TS, `gpbackup_0_${TS}_1`);
    ok(await env.run(['backup_data', c, path], { stdin: copyRows(40_000, 5) }), 'backup_data');
    const [victim] = await s3.listKeys(BUCKET, `${f}/chunks/`);
    await s3.deleteObject(BUCKET, victim!);
    const r = await env.run(['restore_data', c, path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /a chunk of this backup is missing/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('with client_side_encryption: keyed names, sealed chunks, restore with the key', async () => {
    const f = 'cluster1/dedup-enc';
    const keyFile = env.writeFile('keys/dedup.key', 'b2'.repeat(32) + '\n');
    chmodSync(keyFile, 0o600);
    const c = config(f, { deduplication: 'on', client_side_encryption: 'on', encryption_key_file: keyFile });
    const path = env.backupPath(TS, `gpbackup_0_${TS}_2`);
    const d = copyRows(40_000, 6);
    ok(await env.run(['backup_data', c, path], { stdin: d }), 'backup_data');
    const [chunk] = await s3.listKeys(BUCKET, `${f}/chunks/`);
    const sealed = await s3.getObject(BUCKET, chunk!);
    assert.equal(sealed!.subarray(0, 8).toString('latin1'), '\0GPBKENC');
    const plainName = createHash('sha256').update(d.subarray(0, 1000)).digest('hex');
    assert.ok(!(await s3.listKeys(BUCKET, `${f}/chunks/`)).some(k => k.endsWith(plainName)));
    assert.ok(ok(await env.run(['restore_data', c, path]), 'restore_data').stdout.equals(d));
    const noKey = await env.run(['restore_data', config(f, {}, 'nokey.yaml'), path]);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /no key is configured/);
  });

  test('deduplication with object_lock_mode is accepted, and setup checks the bucket has object lock (test/integration/dedup-object-lock.test.ts)', async () => {
    const c = config('cluster1/x', { deduplication: 'on', object_lock_mode: 'GOVERNANCE', object_lock_days: '1' }, 'locked.yaml');
    const r = await env.run(['setup_plugin_for_backup', c, env.path('coordinator', 'backups', TS.slice(0, 8), TS), 'master', '"-1"']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /setup_plugin_for_backup: object_lock_mode is GOVERNANCE but bucket gpbackup-dedup does not have S3 Object Lock enabled/);
  });
});

describe('a week of daily backups', () => {
  test('stores a fraction of the plain week; every day restores; delete_backup of the oldest and prune keep the rest', async () => {
    const tables = [0, 1, 2, 3];
    const rows = 60_000; // some 5 MiB a table
    const day = (d: number) => `2024071${d}010000`;
    // Table 0 never changes, table 1 gets a few rows edited every day, table 2 every other day, table 3 grows.
    const stream = (t: number, d: number): Buffer => {
      if (t === 1) return copyRows(rows, t, [100 + d * 7, 20_000 + d, 45_000 - d], d);
      if (t === 2) return copyRows(rows, t, [30_000 + (d >> 1)], d >> 1);
      if (t === 3) return copyRows(rows + d * 500, t);
      return copyRows(rows, t);
    };
    const dedupCfg = config('week/dedup', { deduplication: 'on' });
    const plainCfg = config('week/plain');
    for (let d = 0; d < 7; d++) {
      for (const t of tables) {
        for (const c of [dedupCfg, plainCfg]) ok(await env.run(['backup_data', c, env.backupPath(day(d), `gpbackup_0_${day(d)}_${t}`)], { stdin: stream(t, d) }), `day ${d} table ${t}`);
      }
    }
    const plainBytes = await storedBytes(plainCfg);
    const dedupBytes = await storedBytes(dedupCfg);
    process.stdout.write(`# a week of 4 tables: ${plainBytes} bytes plain, ${dedupBytes} deduplicated (${((100 * dedupBytes) / plainBytes).toFixed(1)}%)\n`);
    assert.ok(dedupBytes * 3 <= plainBytes, `deduplicated ${dedupBytes} > a third of ${plainBytes}`);

    const restoreAll = async (days: number[]) => {
      for (const d of days) {
        for (const t of tables) {
          const r = ok(await env.run(['restore_data', dedupCfg, env.backupPath(day(d), `gpbackup_0_${day(d)}_${t}`)]), `restore day ${d} table ${t}`);
          assert.ok(r.stdout.equals(stream(t, d)), `day ${d} table ${t} restored different bytes`);
        }
      }
    };
    await restoreAll([0, 1, 2, 3, 4, 5, 6]);

    ok(await env.run(['delete_backup', dedupCfg, day(0)]), 'delete_backup');
    const pruned = ok(await env.run(['prune', dedupCfg, '--grace', '0']), 'prune').stdout.toString();
    const freed = Number(/freed [\d.]+ MiB \((\d+) bytes\) in (\d+) chunk/.exec(pruned)?.[1]);
    assert.ok(freed > 0, pruned);
    assert.match(pruned, /kept \d+ chunk\(s\) named by 24 manifest\(s\)/);
    // A second prune finds nothing more.
    assert.match(ok(await env.run(['prune', dedupCfg, '--grace', '0']), 'prune again').stdout.toString(), /freed 0\.0 MiB \(0 bytes\) in 0 chunk/);
    await restoreAll([1, 2, 3, 4, 5, 6]);
    // With the default grace of 24 hours, nothing young is deleted.
    ok(await env.run(['delete_backup', dedupCfg, day(1)]), 'delete_backup day 1');
    assert.match(ok(await env.run(['prune', dedupCfg]), 'prune with the default grace').stdout.toString(), /freed 0\.0 MiB \(0 bytes\) in 0 chunk.* younger than the grace period \(24h\)/);
    await assert.rejects(Promise.resolve().then(async () => ok(await env.run(['prune', dedupCfg, '--grace', 'soon']), 'bad grace')), /--grace takes a duration/);
  });
});

describe('the Go plugin and a deduplicated object', () => {
  const tools = referenceTools();
  after(() => typeof tools !== 'string' && tools.cleanup());

  test('it hands back the manifest, which no gzip or COPY takes for data', { skip: typeof tools === 'string' && tools }, async () => {
    const goPlugin = (tools as ReferenceTools).goPlugin;
    const folder = 'cluster1/dedup-go';
    const data = copyRows(20_000, 8);
    const path = env.backupPath(TS, `gpbackup_0_${TS}_9`);
    ok(await env.run(['backup_data', config(folder, { deduplication: 'on' }), path], { stdin: data }), 'backup_data');
    // The Go plugin refuses options it does not know (restore_subset, pgport ...): only its own.
    const { endpoint, bucket, aws_access_key_id, aws_secret_access_key } = testOptions(s3, BUCKET, folder);
    const goOptions = { endpoint, bucket, folder, aws_access_key_id, aws_secret_access_key, region: 'us-east-1', encryption: 'off' };
    const goConfig = env.writeFile('go.yaml', toYaml(goPlugin, goOptions));
    const r = await runProcess(goPlugin, ['restore_data', goConfig, path], { env: { PATH: process.env.PATH ?? '', HOME: env.home } });
    // The Go plugin streams whatever the object holds: the manifest, which begins with a NUL byte
    // and the magic, never the data. gpbackup_helper's gzip reader and COPY (NUL is no text) reject it.
    assert.equal(r.code, 0, `the Go plugin sees an object like any other: ${r.stderr}`);
    assert.equal(r.stdout.subarray(0, 8).toString('latin1'), '\0GPBKDUP');
    assert.ok(r.stdout.length < 1000);
    assert.throws(() => gunzipSync(r.stdout), /incorrect header check/);
    assert.ok(r.stdout.includes(0), 'a NUL byte, which COPY refuses');
  });
});
