/**
 * list_backups and verify_backup on backups laid out as gpbackup lays them out (written through
 * the plugin's own backup_file and backup_data: test/support/gpbackup-fixture.ts): per-table and
 * single-data-file, gzip, zstd and uncompressed, an incremental chain, client-side encrypted. Each
 * alteration of the bucket (an object removed, a byte flipped, an object cut short) must make
 * verify_backup fail naming the object.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_TABLES, writeBackup, type FixtureBackup } from '../support/gpbackup-fixture.js';
import { referenceTools } from '../support/reference.js';
import { backupKey, PluginEnv, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-inventory';
const FOLDER = 'cluster1/inventory';

const FULL: FixtureBackup = { timestamp: '20250301010000', compression: 'gzip' };
const SINGLE: FixtureBackup = { timestamp: '20250302010000', singleDataFile: true, compression: 'none', segments: 3 };
const BASE: FixtureBackup = { timestamp: '20250303010000', compression: 'zstd' };
const INCR: FixtureBackup = { timestamp: '20250304010000', compression: 'zstd', incrementalOf: [BASE.timestamp] };
const ENCRYPTED: FixtureBackup = { timestamp: '20250305010000', singleDataFile: true, compression: 'none' };

let s3: TestS3Server;
let env: PluginEnv;
let cfg: string;
let encryptedCfg: string;

function keyOf(ts: string, file: string): string {
  return backupKey(FOLDER, ts, file);
}

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER));
  const keyFile = env.writeFile('backup.key', Buffer.alloc(32, 7).toString('base64') + '\n');
  chmodSync(keyFile, 0o600);
  encryptedCfg = env.writeConfig(
    testOptions(s3, BUCKET, FOLDER, { client_side_encryption: 'on', encryption_key_file: keyFile }),
    'encrypted.yaml',
  );
  for (const b of [FULL, SINGLE, BASE, INCR]) await writeBackup(env, cfg, b);
  await writeBackup(env, encryptedCfg, ENCRYPTED);
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

function json<T>(r: RunResult): T {
  return JSON.parse(r.stdout.toString()) as T;
}

interface Summary {
  timestamp: string;
  database: string;
  segments: number;
  dataFormat: string;
  compression: string;
  kind: string;
  dependsOn: string[];
  clientSideEncrypted: boolean;
  status: string;
  complete: boolean;
  objects: number;
  problems: string[];
}

interface Report {
  ok: boolean;
  mode: string;
  problems: { kind: string; key: string; message: string }[];
  backups: { timestamp: string; role: string }[];
  deep: { objects: number; checkedBy: Record<string, number>; decrypted: number; sizeOnly: { key: string }[] } | null;
}

async function verify(ts: string, ...flags: string[]): Promise<RunResult> {
  return env.run(['verify_backup', ts === ENCRYPTED.timestamp ? encryptedCfg : cfg, ts, ...flags]);
}

/** verify_backup must fail, naming `key` with `kind` in its JSON, its text and its one stderr line. */
async function assertFailsNaming(ts: string, kind: string, key: string, deep = false): Promise<void> {
  const extra = deep ? ['--deep'] : [];
  const r = await verify(ts, ...extra, '--json');
  assert.equal(r.code, 1, r.stderr);
  const report = json<Report>(r);
  assert.equal(report.ok, false);
  assert.ok(
    report.problems.some(p => p.kind === kind && p.key === key),
    `expected ${kind} of ${key}, got ${JSON.stringify(report.problems)}`,
  );
  const text = await verify(ts, ...extra);
  assert.equal(text.code, 1);
  assert.match(text.stdout.toString(), new RegExp(`PROBLEM ${kind}: ${key.replace(/[.]/g, '\\.')}`));
  assert.match(text.stdout.toString(), /^FAILED: backup \d{14}: \d+ problem/m);
  assert.equal(text.stderr.trim().split('\n').length, 1, text.stderr);
  assert.match(text.stderr, /would not restore/);
}

/** Runs `check` with the objects `keys` taken out of the bucket, and puts them back after. */
async function withoutObjects(keys: string[], check: () => Promise<void>): Promise<void> {
  const saved = await Promise.all(keys.map(async k => [k, await s3.getObject(BUCKET, k)] as const));
  for (const k of keys) await s3.deleteObject(BUCKET, k);
  try {
    await check();
  } finally {
    for (const [k, body] of saved) await s3.putObject(BUCKET, k, body!);
  }
}

describe('list_backups', () => {
  test('lists every backup newest first, with what each holds and needs', async () => {
    const r = await env.run(['list_backups', encryptedCfg, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const list = json<Summary[]>(r);
    assert.deepEqual(
      list.map(b => b.timestamp),
      [ENCRYPTED, INCR, BASE, SINGLE, FULL].map(b => b.timestamp),
    );
    const by = new Map(list.map(b => [b.timestamp, b]));
    assert.deepEqual(
      [by.get(FULL.timestamp), by.get(SINGLE.timestamp), by.get(INCR.timestamp), by.get(ENCRYPTED.timestamp)].map(b => [
        b!.dataFormat,
        b!.compression,
        b!.segments,
        b!.kind,
        b!.clientSideEncrypted,
        b!.status,
        b!.complete,
      ]),
      [
        ['per-table', 'gzip', 2, 'full', false, 'Success', true],
        ['single-data-file', 'none', 3, 'full', false, 'Success', true],
        ['per-table', 'zstd', 2, 'incremental', false, 'Success', true],
        ['single-data-file', 'none', 2, 'full', true, 'Success', true],
      ],
    );
    assert.deepEqual(by.get(INCR.timestamp)!.dependsOn, [BASE.timestamp]);
    assert.equal(by.get(FULL.timestamp)!.database, 'sales');
    // 5 coordinator files, and 2 segments x 3 tables.
    assert.equal(by.get(FULL.timestamp)!.objects, 11);
  });

  test('prints a table a person reads', async () => {
    const r = await env.run(['list_backups', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().trimEnd().split('\n');
    assert.match(lines[0]!, /^TIMESTAMP\s+DATE\s+DATABASE\s+SIZE\s+OBJECTS\s+SEGS\s+FORMAT\s+TYPE\s+ENCRYPTED\s+LOCKED UNTIL\s+STATUS\s+COMPLETE$/);
    assert.equal(lines.length, 6);
    assert.match(lines.find(l => l.startsWith(INCR.timestamp))!, /2025-03-04 01:00:00\s+sales\s+.*per-table zstd\s+incremental of 20250303010000\s+no\s+-\s+Success\s+yes$/);
    assert.match(lines.find(l => l.startsWith(SINGLE.timestamp))!, /single-file none\s+full/);
  });

  test('a folder without backups: exit 0, and stderr says where it looked', async () => {
    const empty = env.writeConfig(testOptions(s3, BUCKET, 'cluster1/nothing-here'), 'empty.yaml');
    const r = await env.run(['list_backups', empty]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 0);
    assert.equal(r.stderr, `list_backups: no backups under s3://${BUCKET}/cluster1/nothing-here/backups/\n`);
    assert.equal((await env.run(['list_backups', empty, '--json'])).stdout.toString(), '[]\n');
  });

  test('--help names list_backups, verify_backup, prune and decrypt as commands a DBA runs by hand', async () => {
    const r = await env.run(['--help']);
    const [forGpbackup, byHand] = r.stdout.toString().split(/\n\nCommands a DBA runs by hand[^\n]*\n/);
    assert.ok(byHand, r.stdout.toString());
    for (const line of ['list_backups <config> [--json]', 'verify_backup <config> <timestamp> [--deep] [--json]', 'prune <config> [--grace <duration>]', 'decrypt --key-file'])
      assert.ok(byHand.includes(`  ${line}`) && !forGpbackup.includes(line), `${line} is not among the commands a DBA runs by hand:\n${r.stdout}`);
  });
});

describe('verify_backup', () => {
  test('quick: each kind of backup checks out, and an incremental one names its base as checked', async () => {
    for (const b of [FULL, SINGLE, INCR, ENCRYPTED]) {
      const r = await verify(b.timestamp, '--json');
      assert.equal(r.code, 0, `${b.timestamp}: ${r.stdout} ${r.stderr}`);
      const report = json<Report>(r);
      assert.equal(report.ok, true);
      assert.equal(report.mode, 'quick');
      assert.equal(report.deep, null);
    }
    const incr = json<Report>(await verify(INCR.timestamp, '--json'));
    assert.deepEqual(incr.backups.map(b => [b.timestamp, b.role]), [[INCR.timestamp, 'target'], [BASE.timestamp, 'dependency']]);
    const text = await verify(FULL.timestamp);
    assert.match(text.stdout.toString(), /^OK: backup 20250301010000 would restore/m);
  });

  test('--deep reads every object and says how each was checked', async () => {
    const r = await verify(SINGLE.timestamp, '--deep', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = json<Report>(r);
    assert.equal(report.deep!.objects, 5 + 3 * 2);
    assert.equal(report.deep!.checkedBy.crc32, 11);
    assert.deepEqual(report.deep!.sizeOnly, []);
    assert.doesNotMatch(r.stderr, /\S/, 'no progress line off a terminal in a run this short');
    const enc = json<Report>(await verify(ENCRYPTED.timestamp, '--deep', '--json'));
    assert.equal(enc.ok, true);
    assert.equal(enc.deep!.decrypted, 5 + 2 * 2);
  });

  test('a timestamp with no backup fails naming what was looked for', async () => {
    const r = await verify('20250399010000');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing-object: s3:\/\/gpbackup-inventory\/cluster1\/inventory\/backups\/20250399\/20250399010000\/gpbackup_20250399010000_config\.yaml: no backup 20250399010000 in the bucket/);
  });

  test('a missing data file of one table on one segment', async () => {
    const key = keyOf(FULL.timestamp, `gpbackup_1_${FULL.timestamp}_16390.gz`);
    await withoutObjects([key], async () => {
      await assertFailsNaming(FULL.timestamp, 'missing-object', key);
      const list = json<Summary[]>(await env.run(['list_backups', cfg, '--json']));
      assert.equal(list.find(b => b.timestamp === FULL.timestamp)!.complete, true, 'list_backups sees data on every segment; verify_backup checks each table');
    });
  });

  test('a missing segment TOC of a single-data-file backup', async () => {
    const key = keyOf(SINGLE.timestamp, `gpbackup_2_${SINGLE.timestamp}_toc.yaml`);
    await withoutObjects([key], async () => {
      await assertFailsNaming(SINGLE.timestamp, 'missing-object', key);
      const list = json<Summary[]>(await env.run(['list_backups', cfg, '--json']));
      const entry = list.find(b => b.timestamp === SINGLE.timestamp)!;
      assert.equal(entry.complete, false);
      assert.match(entry.problems.join(), /gpbackup_2_20250302010000_toc\.yaml/);
    });
  });

  test('a missing object of an incremental backup\'s base fails the incremental one', async () => {
    const key = keyOf(BASE.timestamp, `gpbackup_0_${BASE.timestamp}_16402.zst`);
    await withoutObjects([key], () => assertFailsNaming(INCR.timestamp, 'missing-object', key));
  });

  test('a base that is gone entirely is a missing dependency', async () => {
    const prefix = backupKey(FOLDER, BASE.timestamp);
    await withoutObjects(await s3.listKeys(BUCKET, prefix), async () => {
      await assertFailsNaming(INCR.timestamp, 'missing-dependency', `${prefix}gpbackup_${BASE.timestamp}_config.yaml`);
      const list = json<Summary[]>(await env.run(['list_backups', cfg, '--json']));
      assert.match(list.find(b => b.timestamp === INCR.timestamp)!.problems.join(), /missing dependency: 20250303010000/);
    });
  });

  test('an uncompressed single data file cut short, plain or client-side encrypted, has the wrong size for its segment TOC', async t => {
    if (s3.kind !== 's3rver') return t.skip('s3rver only: it alters stored bytes');
    for (const b of [SINGLE, ENCRYPTED]) {
      const key = keyOf(b.timestamp, `gpbackup_1_${b.timestamp}`);
      const saved = await s3.getObject(BUCKET, key);
      await s3.truncateObject(BUCKET, key, saved!.length - 3);
      try {
        await assertFailsNaming(b.timestamp, 'wrong-size', key);
      } finally {
        await s3.putObject(BUCKET, key, saved!);
      }
    }
  });

  test('one flipped byte of a stored object: --deep finds it, the quick check does not read it', async t => {
    if (s3.kind !== 's3rver') return t.skip('s3rver only: it alters stored bytes');
    const key = keyOf(FULL.timestamp, `gpbackup_0_${FULL.timestamp}_16384.gz`);
    await s3.corruptObject(BUCKET, key, 10);
    try {
      assert.equal((await verify(FULL.timestamp)).code, 0);
      await assertFailsNaming(FULL.timestamp, 'checksum-mismatch', key, true);
    } finally {
      await s3.corruptObject(BUCKET, key, 10);
    }
  });

  test('a failed backup\'s report fails it', async () => {
    const failed: FixtureBackup = { timestamp: '20250306010000', status: 'Failure', segments: 1 };
    await writeBackup(env, cfg, failed);
    await assertFailsNaming(failed.timestamp, 'backup-failed', keyOf(failed.timestamp, `gpbackup_${failed.timestamp}_report`));
    const list = json<Summary[]>(await env.run(['list_backups', cfg, '--json']));
    const entry = list.find(b => b.timestamp === failed.timestamp)!;
    assert.deepEqual([entry.status, entry.complete], ['Failure', false]);
  });

  test('wrong arguments: usage, exit 2', async () => {
    const r = await env.run(['verify_backup', cfg, FULL.timestamp, '--fast']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option --fast/);
  });
});

describe('backups the Go plugin wrote', () => {
  const tools = referenceTools();
  // One table of 6 MiB a segment: the Go plugin uploads it in two parts of 5 MB (an ETag of -2, and no CRC-32).
  const GO: FixtureBackup = {
    timestamp: '20250310010000',
    compression: 'gzip',
    segments: 2,
    tables: [...DEFAULT_TABLES, { oid: 16500, schema: 'public', name: 'events', bytes: 6 * 1024 * 1024 }],
  };
  const GO_SINGLE: FixtureBackup = { timestamp: '20250311010000', singleDataFile: true, compression: 'gzip', segments: 2 };
  let goEnv: PluginEnv;
  let goCfg: string;
  const folder = 'cluster1/go-written';

  before(async () => {
    if (typeof tools === 'string') return;
    goEnv = new PluginEnv(tools.goPlugin);
    // The Go plugin refuses options it does not know.
    const { restore_subset: _, ...goOptions } = testOptions(s3, BUCKET, folder, { region: 'us-east-1' });
    goCfg = goEnv.writeConfig(goOptions);
    await writeBackup(goEnv, goCfg, GO);
    await writeBackup(goEnv, goCfg, GO_SINGLE);
  });

  after(() => {
    if (typeof tools === 'string') return;
    goEnv?.cleanup();
    tools.cleanup();
  });

  test('are listed and verified: --deep checks their MD5 ETags and names any object checked for size only', async t => {
    if (typeof tools === 'string') return t.skip(tools);
    const ourCfg = env.writeConfig(testOptions(s3, BUCKET, folder), 'go-written.yaml');
    const list = json<Summary[]>(await env.run(['list_backups', ourCfg, '--json']));
    assert.deepEqual(
      list.map(b => [b.timestamp, b.dataFormat, b.complete, b.clientSideEncrypted]),
      [
        [GO_SINGLE.timestamp, 'single-data-file', true, false],
        [GO.timestamp, 'per-table', true, false],
      ],
    );
    for (const b of [GO, GO_SINGLE]) {
      const r = await env.run(['verify_backup', ourCfg, b.timestamp, '--deep', '--json']);
      assert.equal(r.code, 0, r.stderr + r.stdout.toString());
      const report = json<Report>(r);
      const large = b === GO ? [0, 1].map(c => `${folder}/backups/20250310/${GO.timestamp}/gpbackup_${c}_${GO.timestamp}_16500.gz`) : [];
      assert.equal(report.deep!.checkedBy['md5-etag'], report.deep!.objects - large.length, JSON.stringify(report.deep));
      assert.deepEqual(report.deep!.sizeOnly.map(s => s.key).sort(), large);
    }
    const text = await env.run(['verify_backup', ourCfg, GO.timestamp, '--deep']);
    assert.match(text.stdout.toString(), /, 2 for their size only\n/);
    assert.match(text.stdout.toString(), /^size only: cluster1\/go-written\/backups\/20250310\/20250310010000\/gpbackup_0_20250310010000_16500\.gz: /m);
    if (s3.kind !== 's3rver') return;
    const key = `${folder}/backups/20250310/${GO.timestamp}/gpbackup_1_${GO.timestamp}_16402.gz`;
    await s3.corruptObject(BUCKET, key, 5);
    try {
      const r = await env.run(['verify_backup', ourCfg, GO.timestamp, '--deep', '--json']);
      assert.equal(r.code, 1);
      assert.ok(json<Report>(r).problems.some(p => p.kind === 'checksum-mismatch' && p.key === key), r.stdout.toString());
    } finally {
      await s3.corruptObject(BUCKET, key, 5);
    }
  });
});
