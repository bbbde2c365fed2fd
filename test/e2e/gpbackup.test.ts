/**
 * The end-to-end tier: the real gpbackup and gprestore (1.30.6) of a real Greenplum 6.24.3 cluster
 * run the built dist/gpbackup_s3_plugin against gofakes3 and Ceph RGW (test/support/greenplum.ts
 * builds the cluster from ../shared/e2e). Every restore is checked table by table against the
 * source database: row count and an order-independent hash of every row, plus the indexes, the
 * storage kind (heap, AO row, AO column) and the leaf partitions.
 *
 * Under CI=true a missing fixture or a failed set-up fails the tier; elsewhere it is skipped with
 * one line saying what is missing. scripts/test.mjs runs this file after the RGW tier (`make e2e`
 * runs it alone).
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { after, before, describe, test } from 'node:test';
import { killRgwDirSync, rgwInstalled, RGW_INSTALL_HINT, startRgw } from '../support/ceph-rgw.mjs';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { missingPrerequisites, startCluster, startGofakes3, type Cluster } from '../support/greenplum.js';
import { backupKey, PLUGIN_BIN } from '../support/plugin.js';
import { TEST_ACCESS_KEY, TEST_SECRET_KEY } from '../support/s3server.js';
import { createBucket, deleteObject, getObject, listObjects, putObject } from '../support/signed-s3.js';

const CI = process.env.CI === 'true';
const missing = missingPrerequisites();
if (missing.length > 0 && CI) throw new Error(`e2e tier: CI=true and missing: ${missing.join('; ')}`);
const SKIP = missing.length > 0 ? `missing ${missing.join('; ')}` : false;
const RGW_SKIP = !rgwInstalled() ? `Ceph RGW is not installed (${RGW_INSTALL_HINT})` : false;
if (RGW_SKIP && CI && !SKIP) throw new Error(`e2e tier: CI=true and ${RGW_SKIP}`);

const SOURCE_DB = 'e2e_src';
const BUCKET = 'e2e';
const TABLES = ['heap_idx', 'ao_row', 'aoco', 'part_sales', 'awkward', 'empty_t', 'big'];
const MiB = 1024 * 1024;

/** The tables of the source database: every kind the issue names, big enough for multipart objects on each segment. */
const SCHEMA = `
create table heap_idx (id int primary key, name text not null, qty int, created timestamptz) distributed by (id);
create index heap_idx_qty on heap_idx (qty);
create index heap_idx_name on heap_idx (name);
insert into heap_idx select i, 'name ' || i, i % 97, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute' from generate_series(1, 50000) i;
create table ao_row (id int, payload text) with (appendonly=true, orientation=row, compresstype=zlib, compresslevel=1) distributed by (id);
insert into ao_row select i, repeat(md5(i::text), 3) from generate_series(1, 50000) i;
create table aoco (id int, a float8, b text, c date) with (appendonly=true, orientation=column) distributed by (id);
insert into aoco select i, i / 7.0, 'row ' || i, date '2020-01-01' + i % 1000 from generate_series(1, 50000) i;
create table part_sales (id int, sold date, amount numeric(12,2)) with (appendonly=true) distributed by (id)
  partition by range (sold) (start (date '2024-01-01') inclusive end (date '2024-04-01') exclusive every (interval '1 month'));
insert into part_sales select i, date '2024-01-01' + i % 90, (i % 1000) / 7.0 from generate_series(1, 30000) i;
create table awkward (id int, b bytea, t text, j json, n numeric, ia int[], ta text[]) distributed by (id);
insert into awkward values
  (1, '\\x00ff0a0d5c09'::bytea, E'tab\\there\\nnew line\\r\\\\back\\\\slash ''single'' "double" ünïcødé 日本語 ∑ 🐘', '{"a": [1, null, "x\\ty"], "b": {"c": "\\u00e9"}}', 12345678901234567890.123456789012, array[1, null, 3], array['a', null, E'q"uo\\\\te', 'com,ma', '{brace}']),
  (2, decode(repeat('00ff7f80', 1000), 'hex'), E'\\\\N is not null', 'null', -0.000000000001, '{}', array[null]::text[]),
  (3, null, null, null, 'NaN', null, null),
  (4, '', '', '[]', 1e100, array[null, null]::int[], array['', ' ', 'NULL']);
insert into awkward select 100 + i, decode(md5(i::text), 'hex'), E'line ' || i || E'\\n\\t' || chr(160 + i % 500), ('{"i": ' || i || '}')::json, i / 3.0, array[i, null], array[i::text, null]
  from generate_series(1, 2000) i;
create table empty_t (id int, v text) distributed by (id);
create table big (id bigint, a text, b text) distributed by (id);
insert into big select i, md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text), md5((-i)::text) from generate_series(1, 600000) i;
analyze;
`;

/**
 * The database of the week of daily backups: a large history nobody writes to, a dimension table that
 * never changes, a fact table that grows every day and an accounts table of which a few rows change.
 */
const WEEK_DB = 'e2e_week';
const WEEK_TABLES = ['history', 'customers', 'sales_fact', 'accounts'];
const WEEK_SCHEMA = `
create table history (id bigint, day date, payload text) with (appendonly=true, orientation=column) distributed by (id);
insert into history select i, date '2020-01-01' + i % 1500, md5(i::text) || md5((i * 7)::text) from generate_series(1, 800000) i;
create table customers (id int primary key, name text) distributed by (id);
insert into customers select i, 'customer ' || i from generate_series(1, 50000) i;
create table sales_fact (id bigint, day int, amount numeric(12,2)) distributed by (id);
insert into sales_fact select i, 1, (i % 1000) / 7.0 from generate_series(1, 100000) i;
create table accounts (id int, balance numeric(14,2)) distributed by (id);
insert into accounts select i, 0 from generate_series(1, 100000) i;
`;
/** What changes on the morning of `day`: the day's sales, and the balances of a hundred accounts. */
const weekChanges = (day: number) =>
  `insert into sales_fact select ${day * 1_000_000} + i, ${day}, (i % 500) / 3.0 from generate_series(1, 5000) i;
   update accounts set balance = balance + ${day} where id % 1000 = ${day};`;

/** One row per table: count and an order-independent hash of the rows; then the indexes, storage kinds and partitions. */
function fingerprintSql(tables: string[]): string {
  const rows = tables.map(t => `select '${t}', count(*)::text, coalesce(md5(string_agg(md5(x::text), '' order by md5(x::text))), '-') from ${t} x`);
  const list = tables.map(t => `'${t}'`).join(',');
  const ofTables = tables.map(t => `c.relname = '${t}' or c.relname like '${t}_1_prt_%'`).join(' or ');
  rows.push(`select 'indexes', count(*)::text, coalesce(string_agg(indexname, ',' order by indexname), '-') from pg_indexes where schemaname = 'public' and tablename in (${list})`);
  rows.push(
    `select 'storage', count(*)::text, coalesce(string_agg(relname || ':' || relstorage, ',' order by relname), '-') from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r' and (${ofTables})`,
  );
  return rows.join(' union all ') + ' order by 1';
}

let cluster: Cluster;
let gofakes3: string;
let rgw: { endpoint: string; dir: string; stop(): Promise<void> } | undefined;
let proxy: FaultProxy;
let pluginBin: string;
let keyFile: string;
let sourcePrint: string;
let restoredCount = 0;

/** Backups the tier left on gofakes3 (this plugin's, and one the Go plugin wrote), for checkBackupsInBucket. */
interface TierBackup {
  timestamp: string;
  config: string;
  description: string;
}
const ourBackups: TierBackup[] = [];

const listKeys = (endpoint: string, prefix: string) => listObjects(endpoint, BUCKET, prefix);

const configNames = new Map<string, string>();

/** gpbackup and gprestore leave their copy of each plugin config (with its key pair) in /tmp as <timestamp>_<name>.yaml. */
function removeConfigCopies(): void {
  for (const f of readdirSync('/tmp')) {
    const m = /^\d{14}_(.+)\.yaml$/.exec(f);
    if (m && configNames.has(m[1]!)) rmSync(join('/tmp', f), { force: true });
  }
}

/** Writes a plugin config readable by gpadmin; `go` names the Go plugin as the executable. */
function pluginConfig(name: string, endpoint: string, folder: string, options: Record<string, string> = {}, go = false): string {
  const opts: Record<string, string> = {
    endpoint,
    region: 'us-east-1',
    aws_access_key_id: TEST_ACCESS_KEY,
    aws_secret_access_key: TEST_SECRET_KEY,
    bucket: BUCKET,
    folder,
    encryption: 'off',
    ...(go ? { backup_multipart_chunksize: '16MB', restore_multipart_chunksize: '16MB' } : {}),
    ...options,
  };
  const exe = go ? join(cluster.referenceDir, 'gpbackup_s3_plugin') : pluginBin;
  // A config file names one folder for the whole tier: checkBackupsInBucket reads each backup through its config.
  assert.ok((configNames.get(name) ?? folder) === folder, `config ${name} was written for folder ${configNames.get(name)}, not ${folder}`);
  configNames.set(name, folder);
  const file = join(cluster.dir, 'configs', `${name}.yaml`);
  writeFileSync(file, `executablepath: ${exe}\noptions:\n${Object.entries(opts).map(([k, v]) => `  ${k}: "${v}"\n`).join('')}`);
  chmodSync(file, 0o644);
  return file;
}

async function gpbackup(config: string, flags: string, db = SOURCE_DB): Promise<string> {
  const r = await cluster.sh(`gpbackup --dbname ${db} --plugin-config ${config} ${flags}`);
  const ts = /Backup Timestamp = (\d{14})/.exec(r.stdout)?.[1];
  assert.equal(r.code, 0, `gpbackup ${flags} failed (exit ${r.code}):\n${tail(r.stdout + r.stderr)}`);
  assert.ok(ts, `no backup timestamp in gpbackup's output:\n${tail(r.stdout)}`);
  return ts;
}

async function gprestore(config: string, ts: string, flags: string, db?: string) {
  const target = db ?? `e2e_r${++restoredCount}`;
  const r = await cluster.sh(`gprestore --timestamp ${ts} --plugin-config ${config} --redirect-db ${target} ${flags}`);
  return { ...r, db: target };
}

async function restoreOk(config: string, ts: string, flags = '--create-db', db?: string): Promise<string> {
  const r = await gprestore(config, ts, flags, db);
  assert.equal(r.code, 0, `gprestore ${flags} of ${ts} failed (exit ${r.code}):\n${tail(r.stdout + r.stderr)}`);
  return r.db;
}

const tail = (s: string) => s.split('\n').slice(-25).join('\n');
const fingerprint = (db: string, tables = TABLES) => cluster.psql(db, fingerprintSql(tables));
const publicTables = (db: string) => cluster.psql(db, "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname = 'public'");
const dropDb = (db: string) => cluster.psql('postgres', `drop database if exists ${db}`);

/** The restored database holds exactly the source's tables, rows, indexes, storage kinds and partitions. */
async function assertSameAsSource(db: string): Promise<void> {
  assert.equal(await publicTables(db), await publicTables(SOURCE_DB), `restored database ${db} holds other tables than ${SOURCE_DB}`);
  assert.equal(await fingerprint(db), sourcePrint, `restored database ${db} differs from ${SOURCE_DB}`);
  await dropDb(db);
}

/** Runs the built plugin as gpadmin, as a DBA runs its own commands by hand. */
const plugin = (args: string) => cluster.sh(`${pluginBin} ${args}`);

/** The keys of one backup's objects on gofakes3, with their sizes. */
async function objectsOf(b: TierBackup): Promise<{ key: string; size: number }[]> {
  return (await listKeys(gofakes3, '')).filter(o => o.key.includes(`/backups/${b.timestamp.slice(0, 8)}/${b.timestamp}/`));
}

/**
 * list_backups and verify_backup --deep over every backup the tier left on gofakes3, from the bucket
 * alone: each is listed under its config's folder as complete with status Success, and verifies.
 */
async function checkBackupsInBucket(backups: TierBackup[]): Promise<void> {
  assert.ok(backups.length >= 8, `only ${backups.length} backups recorded`);
  for (const cfg of new Set(backups.map(b => b.config))) {
    const r = await plugin(`list_backups ${cfg} --json`);
    assert.equal(r.code, 0, `list_backups ${cfg} failed (exit ${r.code}): ${r.stderr}`);
    const listed = JSON.parse(r.stdout) as { timestamp: string; status: string | null; complete: boolean; problems: string[] }[];
    for (const b of backups.filter(x => x.config === cfg)) {
      const entry = listed.find(e => e.timestamp === b.timestamp);
      assert.ok(entry, `${b.description} (${b.timestamp}) is not listed by list_backups of ${cfg}`);
      assert.equal(entry.status, 'Success', `${b.description} (${b.timestamp}): status ${entry.status}`);
      assert.equal(entry.complete, true, `${b.description} (${b.timestamp}) listed as incomplete: ${entry.problems.join('; ')}`);
    }
  }
  for (const b of backups) {
    const r = await plugin(`verify_backup ${b.config} ${b.timestamp} --deep --json`);
    assert.equal(r.code, 0, `verify_backup --deep of ${b.description} (${b.timestamp}) failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
    assert.equal((JSON.parse(r.stdout) as { ok: boolean }).ok, true);
  }
}

/**
 * Changes one stored object of a backup, requires verify_backup of `target` to fail naming its key
 * (with `--deep` for a change only reading every byte finds), puts the object back as it was, and
 * requires verify_backup to pass again.
 */
async function assertVerifyNames(target: TierBackup, key: string, change: 'remove' | 'flip a byte', deep = ''): Promise<void> {
  const stored = await getObject(gofakes3, BUCKET, key);
  assert.ok(stored.body.length < 16 * MiB, `${key} is not a single-PUT object, and could not be put back as it was`);
  if (change === 'remove') await deleteObject(gofakes3, BUCKET, key);
  else {
    const flipped = Buffer.from(stored.body);
    flipped[flipped.length >> 1] ^= 0xff;
    await putObject(gofakes3, BUCKET, key, { body: flipped, metadata: stored.metadata });
  }
  try {
    if (deep) {
      const quick = await plugin(`verify_backup ${target.config} ${target.timestamp}`);
      assert.equal(quick.code, 0, `the quick verify_backup reads no data, yet failed with ${key} changed (${change}):\n${quick.stdout}${quick.stderr}`);
    }
    const r = await plugin(`verify_backup ${target.config} ${target.timestamp} ${deep}`);
    assert.equal(r.code, 1, `verify_backup ${deep} of ${target.description} passed with ${key} changed (${change}):\n${r.stdout}`);
    assert.ok((r.stdout + r.stderr).includes(key), `verify_backup ${deep} does not name ${key}:\n${r.stdout}${r.stderr}`);
  } finally {
    await putObject(gofakes3, BUCKET, key, stored);
  }
  const again = await plugin(`verify_backup ${target.config} ${target.timestamp} ${deep}`);
  assert.equal(again.code, 0, `verify_backup ${deep} of ${target.description} fails with ${key} put back:\n${again.stdout}${again.stderr}`);
}

/** Bytes of the backup's data files the plugin asked gofakes3 for through the recording proxy since `from`. */
function dataBytesRequested(from: number, ts: string): number {
  let bytes = 0;
  for (const r of proxy.requests.slice(from)) {
    if (r.method !== 'GET' || !r.path.includes(`/${ts}/`) || !/gpbackup_\d+_\d{14}(\.gz|\.zst)?$/.test(r.path)) continue;
    const m = /^bytes=(\d+)-(\d+)$/.exec(String(r.headers.range ?? ''));
    bytes += m ? Number(m[2]) - Number(m[1]) + 1 : Infinity;
  }
  return bytes;
}

describe('gpbackup and gprestore with the plugin on a Greenplum cluster', { skip: SKIP, concurrency: false }, () => {
  before(async () => {
    const t0 = Date.now();
    const log = (l: string) => process.stdout.write(`# e2e: ${l}\n`);
    // Interrupted, we exit, and the exit handlers stop what was started.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
    if (!RGW_SKIP) {
      rgw = await startRgw();
      process.once('exit', () => killRgwDirSync(rgw!.dir));
      await createBucket(rgw.endpoint, BUCKET);
    }
    cluster = await startCluster(log);
    mkdirSync(join(cluster.dir, 'configs'));
    mkdirSync(join(cluster.dir, 'plugin'));
    // A copy gpadmin can run, which a rebuild during the run cannot change.
    pluginBin = join(cluster.dir, 'plugin', 'gpbackup_s3_plugin');
    copyFileSync(PLUGIN_BIN, pluginBin);
    chmodSync(pluginBin, 0o755);
    keyFile = join(cluster.dir, 'keys', 'e2e.key');
    await cluster.sh(`mkdir -m 700 ${join(cluster.dir, 'keys')} && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > ${keyFile} && chmod 600 ${keyFile}`);
    gofakes3 = await startGofakes3(cluster);
    proxy = await startFaultProxy({ target: gofakes3 });
    await createBucket(gofakes3, BUCKET);
    await cluster.psql('postgres', `create database ${SOURCE_DB}`);
    await cluster.psql(SOURCE_DB, SCHEMA);
    sourcePrint = await fingerprint(SOURCE_DB);
    log(`set up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });

  after(async () => {
    await proxy?.stop();
    await rgw?.stop();
    await cluster?.stop();
    removeConfigCopies();
  });

  test('default backup (gzip) and restore on gofakes3; the big table makes a multipart object on each segment', async () => {
    const cfg = pluginConfig('default', gofakes3, 'matrix');
    const ts = await gpbackup(cfg, '');
    ourBackups.push({ timestamp: ts, config: cfg, description: 'default (gzip)' });
    const objects = await listKeys(gofakes3, backupKey('matrix', ts));
    const large = objects.filter(o => /gpbackup_[01]_\d{14}_\d+\.gz$/.test(o.key) && o.size > 16 * MiB);
    assert.equal(large.length, 2, `expected one data file over the 16 MiB part size per segment: ${JSON.stringify(objects)}`);
    await assertSameAsSource(await restoreOk(cfg, ts));
  });

  test('--single-data-file', async () => {
    const cfg = pluginConfig('default', gofakes3, 'matrix');
    const ts = await gpbackup(cfg, '--single-data-file');
    ourBackups.push({ timestamp: ts, config: cfg, description: '--single-data-file' });
    await assertSameAsSource(await restoreOk(cfg, ts));
  });

  test('--single-data-file --no-compression: filtered restores read only the needed byte ranges with restore_subset on', async () => {
    const subsetOn = pluginConfig('subset-on', proxy.endpoint, 'matrix', { restore_subset: 'on' });
    const subsetOff = pluginConfig('subset-off', proxy.endpoint, 'matrix', { restore_subset: 'off' });
    const ts = await gpbackup(subsetOn, '--single-data-file --no-compression');
    ourBackups.push({ timestamp: ts, config: subsetOn, description: '--single-data-file --no-compression' });
    const read: Record<string, number> = {};
    for (const [name, cfg] of [
      ['on', subsetOn],
      ['off', subsetOff],
    ] as const) {
      const from = proxy.requests.length;
      const db = await restoreOk(cfg, ts, '--create-db --include-table public.awkward --include-table public.empty_t');
      read[name] = dataBytesRequested(from, ts);
      assert.equal(await fingerprint(db, ['awkward', 'empty_t']), await fingerprint(SOURCE_DB, ['awkward', 'empty_t']));
      assert.equal(await publicTables(db), 'awkward,empty_t');
      await dropDb(db);
    }
    const objects = await listKeys(gofakes3, backupKey('matrix', ts));
    const dataSize = objects.filter(o => /gpbackup_[01]_\d{14}$/.test(o.key)).reduce((n, o) => n + o.size, 0);
    assert.ok(dataSize > 80 * MiB, `data files hold ${dataSize} bytes`);
    // Without subset reads the data file of each segment is streamed from its start (gpbackup_helper may stop
    // reading after the last table it needs); with them, only the two tables' ranges are read.
    assert.ok(read.off > 2 * MiB, `restore_subset off read ${read.off} of ${dataSize} bytes`);
    assert.ok(read.on > 0 && read.on < 2 * MiB, `restore_subset on read ${read.on} bytes of ${dataSize}: more than the two tables' ranges`);
    process.stdout.write(`# e2e: filtered restore read ${(read.on / MiB).toFixed(2)} MiB with restore_subset on, ${(read.off / MiB).toFixed(1)} MiB off\n`);
    // And the whole backup restores through the proxy.
    await assertSameAsSource(await restoreOk(subsetOn, ts));
  });

  test('--jobs 4 on both sides', async () => {
    const cfg = pluginConfig('default', gofakes3, 'matrix');
    const ts = await gpbackup(cfg, '--jobs 4');
    ourBackups.push({ timestamp: ts, config: cfg, description: '--jobs 4' });
    await assertSameAsSource(await restoreOk(cfg, ts, '--create-db --jobs 4'));
  });

  test('--compression-type zstd', async () => {
    const cfg = pluginConfig('default', gofakes3, 'matrix');
    const ts = await gpbackup(cfg, '--compression-type zstd');
    ourBackups.push({ timestamp: ts, config: cfg, description: '--compression-type zstd' });
    const objects = await listKeys(gofakes3, backupKey('matrix', ts));
    assert.ok(objects.some(o => o.key.endsWith('.zst')), 'no .zst data file');
    await assertSameAsSource(await restoreOk(cfg, ts));
  });

  test('--metadata-only, then --data-only into it', async () => {
    const cfg = pluginConfig('default', gofakes3, 'matrix');
    const meta = await gpbackup(cfg, '--metadata-only');
    ourBackups.push({ timestamp: meta, config: cfg, description: '--metadata-only' });
    const data = await gpbackup(cfg, '--data-only');
    ourBackups.push({ timestamp: data, config: cfg, description: '--data-only' });
    const db = await restoreOk(cfg, meta);
    const empty = await fingerprint(db);
    const expected = sourcePrint
      .split('\n')
      .map(l => (TABLES.includes(l.split('|')[0]) ? `${l.split('|')[0]}|0|-` : l))
      .join('\n');
    assert.equal(empty, expected, 'the metadata-only restore should hold every table, index and partition, and no rows');
    await restoreOk(cfg, data, '--data-only', db);
    await assertSameAsSource(db);
  });

  test('client_side_encryption: restores with the key; without it gprestore fails naming the key', async () => {
    const cfg = pluginConfig('encrypted', gofakes3, 'encrypted', { client_side_encryption: 'on', encryption_key_file: keyFile });
    const ts = await gpbackup(cfg, '--single-data-file');
    ourBackups.push({ timestamp: ts, config: cfg, description: 'client_side_encryption --single-data-file' });
    const filtered = await restoreOk(cfg, ts, '--create-db --include-table public.awkward');
    assert.equal(await fingerprint(filtered, ['awkward']), await fingerprint(SOURCE_DB, ['awkward']));
    assert.equal(await publicTables(filtered), 'awkward');
    await dropDb(filtered);
    await assertSameAsSource(await restoreOk(cfg, ts));
    const noKey = pluginConfig('encrypted-no-key', gofakes3, 'encrypted');
    const r = await gprestore(noKey, ts, '--create-db');
    assert.notEqual(r.code, 0, 'a restore without the key must fail');
    assert.match(r.stdout + r.stderr, /client_side_encryption, and no key is configured/);
    await dropDb(r.db);
  });

  test("a backup of this plugin restores with the Go plugin, and the Go plugin's with this one", async () => {
    const ours = pluginConfig('cross', gofakes3, 'cross');
    const go = pluginConfig('go', gofakes3, 'cross', {}, true);
    const oursTs = await gpbackup(ours, '');
    ourBackups.push({ timestamp: oursTs, config: ours, description: 'restored by the Go plugin' });
    await assertSameAsSource(await restoreOk(go, oursTs));
    const goTs = await gpbackup(go, '--single-data-file');
    ourBackups.push({ timestamp: goTs, config: ours, description: 'written by the Go plugin' });
    await assertSameAsSource(await restoreOk(ours, goTs));
  });

  test('--incremental --leaf-partition-data: a chain of two incrementals restores the latest state', async () => {
    const cfg = pluginConfig('incremental', gofakes3, 'incremental');
    const full = await gpbackup(cfg, '--leaf-partition-data');
    ourBackups.push({ timestamp: full, config: cfg, description: 'full --leaf-partition-data' });
    await cluster.psql(SOURCE_DB, "insert into part_sales select i, date '2024-03-05', 1.5 from generate_series(1, 1000) i; insert into ao_row values (-1, 'first incremental')");
    const first = await gpbackup(cfg, '--incremental --leaf-partition-data');
    ourBackups.push({ timestamp: first, config: cfg, description: 'first --incremental' });
    await cluster.psql(SOURCE_DB, "delete from part_sales where sold = date '2024-01-02'; insert into aoco values (-2, 0, 'second incremental', date '2024-01-01')");
    const second = await gpbackup(cfg, '--incremental --leaf-partition-data');
    ourBackups.push({ timestamp: second, config: cfg, description: 'second --incremental' });
    sourcePrint = await fingerprint(SOURCE_DB);
    await assertSameAsSource(await restoreOk(cfg, second));
  });

  test('list_backups and verify_backup --deep: every backup the tier left on gofakes3 is listed complete and verifies', async () => {
    await checkBackupsInBucket(ourBackups);
  });

  test('verify_backup names a removed data file, a removed segment TOC, a removed object of an incremental base, a flipped byte', async () => {
    const backup = (description: string) => ourBackups.find(b => b.description === description)!;
    const perTable = backup('default (gzip)');
    const single = backup('--single-data-file');
    const full = backup('full --leaf-partition-data');
    const second = backup('second --incremental');

    const smallDataFile = (await objectsOf(perTable)).find(o => /gpbackup_1_\d{14}_\d+\.gz$/.test(o.key) && o.size < MiB);
    assert.ok(smallDataFile, 'no small data file of segment 1');
    await assertVerifyNames(perTable, smallDataFile.key, 'remove');

    const segmentToc = (await objectsOf(single)).find(o => /gpbackup_0_\d{14}_toc\.yaml$/.test(o.key));
    assert.ok(segmentToc, 'no segment TOC of segment 0');
    await assertVerifyNames(single, segmentToc.key, 'remove');

    // A table the second incremental's restore plan takes from the full backup: its data file there.
    const fullKeys = await objectsOf(full);
    const inFull = (name: string) => fullKeys.find(o => o.key.endsWith(`/${name}`))?.key;
    const secondConfig = (await objectsOf(second)).find(o => o.key.endsWith(`gpbackup_${second.timestamp}_config.yaml`))!.key;
    const plan = (yaml.load((await getObject(gofakes3, BUCKET, secondConfig)).body.toString()) as { restoreplan: { timestamp: string; tablefqns: string[] | null }[] }).restoreplan;
    const fromFull = plan.find(p => p.timestamp === full.timestamp)?.tablefqns ?? [];
    assert.ok(fromFull.length > 0, `the restore plan of ${second.timestamp} takes no table from ${full.timestamp}: ${JSON.stringify(plan)}`);
    const toc = yaml.load((await getObject(gofakes3, BUCKET, inFull(`gpbackup_${full.timestamp}_toc.yaml`)!)).body.toString()) as {
      dataentries: { schema: string; name: string; oid: number }[];
    };
    const entry = toc.dataentries.find(e => fromFull.includes(`${e.schema}.${e.name}`));
    assert.ok(entry, `no data entry of ${fromFull.join(', ')} in the TOC of ${full.timestamp}`);
    const baseFile = inFull(`gpbackup_0_${full.timestamp}_${entry.oid}.gz`);
    assert.ok(baseFile, `no data file of ${entry.schema}.${entry.name} (oid ${entry.oid}) in ${full.timestamp}`);
    await assertVerifyNames(second, baseFile, 'remove');

    // A flipped byte keeps the size: the quick check passes, --deep reads it and fails.
    await assertVerifyNames(perTable, smallDataFile.key, 'flip a byte', '--deep');
  });

  test('a week of daily full backups, with and without deduplication: a third of the bytes or less, every day restores, the oldest deleted and pruned', async () => {
    const plain = pluginConfig('week-plain', gofakes3, 'week-plain');
    const dedup = pluginConfig('week-dedup', gofakes3, 'week-dedup', { deduplication: 'on' });
    await cluster.psql('postgres', `create database ${WEEK_DB}`);
    await cluster.psql(WEEK_DB, WEEK_SCHEMA);
    const days: { print: string; plain: string; dedup: string }[] = [];
    for (let day = 1; day <= 7; day++) {
      if (day > 1) await cluster.psql(WEEK_DB, weekChanges(day));
      const print = await fingerprint(WEEK_DB, WEEK_TABLES);
      days.push({ print, plain: await gpbackup(plain, '', WEEK_DB), dedup: await gpbackup(dedup, '', WEEK_DB) });
    }
    const stored = async (folder: string) => (await listKeys(gofakes3, `${folder}/`)).reduce((n, o) => n + o.size, 0);
    const plainBytes = await stored('week-plain');
    const dedupBytes = await stored('week-dedup');
    process.stdout.write(
      `# e2e: a week of daily full backups stores ${(plainBytes / MiB).toFixed(1)} MiB without deduplication, ${(dedupBytes / MiB).toFixed(1)} MiB with it (${((100 * dedupBytes) / plainBytes).toFixed(1)}%)\n`,
    );
    assert.ok(dedupBytes * 3 <= plainBytes, `deduplicated week stores ${dedupBytes} bytes against ${plainBytes}: more than a third`);

    const restoresAs = async (cfg: string, ts: string, print: string) => {
      const db = await restoreOk(cfg, ts);
      assert.equal(await fingerprint(db, WEEK_TABLES), print, `the restore of ${ts} (${cfg}) differs from the database it was taken of`);
      await dropDb(db);
    };
    for (const d of days) {
      await restoresAs(plain, d.plain, d.print);
      await restoresAs(dedup, d.dedup, d.print);
    }

    const deleted = await plugin(`delete_backup ${dedup} ${days[0].dedup}`);
    assert.equal(deleted.code, 0, deleted.stderr);
    const pruned = await plugin(`prune ${dedup} --grace 0`);
    assert.equal(pruned.code, 0, `prune failed (exit ${pruned.code}): ${pruned.stdout}${pruned.stderr}`);
    const afterPrune = await stored('week-dedup');
    assert.ok(afterPrune < dedupBytes, `prune freed nothing: ${afterPrune} bytes stored before and after (${pruned.stdout.trim()})`);
    process.stdout.write(`# e2e: the oldest day deleted and pruned: ${pruned.stdout.trim()}\n`);
    for (const d of days.slice(1)) {
      await restoresAs(dedup, d.dedup, d.print);
      const verified = await plugin(`verify_backup ${dedup} ${d.dedup} --deep`);
      assert.equal(verified.code, 0, `verify_backup --deep of ${d.dedup} after the prune:\n${verified.stdout}${verified.stderr}`);
    }
    await dropDb(WEEK_DB);
  });

  describe('on Ceph RGW, which checks signatures', { skip: RGW_SKIP }, () => {
    test('default and --single-data-file backups restore', async () => {
      const cfg = pluginConfig('rgw', rgw!.endpoint, 'rgw');
      for (const flags of ['', '--single-data-file']) {
        const ts = await gpbackup(cfg, flags);
        await assertSameAsSource(await restoreOk(cfg, ts));
      }
    });

    test('a wrong secret fails gpbackup at setup and leaves nothing in the bucket', async () => {
      const wrong = 'Wrong-secret-e2e-0123456789abcdef';
      const cfg = pluginConfig('rgw-wrong-secret', rgw!.endpoint, 'wrong-secret', { aws_secret_access_key: wrong });
      const r = await cluster.sh(`gpbackup --dbname ${SOURCE_DB} --plugin-config ${cfg}`);
      assert.notEqual(r.code, 0, 'gpbackup with a wrong secret must fail');
      assert.match(r.stdout + r.stderr, /setup_plugin_for_backup|SignatureDoesNotMatch|signature/i);
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(wrong));
      assert.deepEqual(await listKeys(rgw!.endpoint, 'wrong-secret/'), []);
    });
  });

  // Both scripts call delete_backup. gofakes3 answers ListMultipartUploads with 404 NoSuchUpload on a bucket
  // that never had a multipart upload; by now the matrix's big table has made several in this bucket.
  test("gpbackup's plugin_test.sh against the built executable on gofakes3", async () => {
    const cfg = pluginConfig('plugin-test', gofakes3, 'plugin_test');
    const t0 = Date.now();
    const r = await cluster.sh(`cd ${cluster.dir} && ${join(cluster.gpbackupDir, 'plugin_test.sh')} ${pluginBin} ${cfg}`, { timeoutMs: 900_000 });
    const passed = (r.stdout.match(/\[PASSED/g) ?? []).length;
    assert.equal(r.code, 0, `plugin_test.sh failed (exit ${r.code}):\n${tail(r.stdout + r.stderr)}`);
    assert.doesNotMatch(r.stdout, /FAILED/);
    assert.ok(passed >= 31, `${passed} PASSED`);
    process.stdout.write(`# e2e: plugin_test.sh: ${passed} PASSED in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  });

  test("gpbackup's plugin_test_scale.sh on a generated lineitem of more than 1 GiB", async () => {
    const t0 = Date.now();
    await cluster.psql('postgres', 'create database tpchdb');
    await cluster.psql(
      'tpchdb',
      `create table nation (n_nationkey int, n_name char(25)) distributed by (n_nationkey);
       insert into nation select i, 'nation ' || i from generate_series(0, 24) i;
       create table lineitem_100 (l_orderkey bigint, l_partkey int, l_suppkey int, l_linenumber int, l_quantity numeric(15,2),
         l_extendedprice numeric(15,2), l_discount numeric(15,2), l_tax numeric(15,2), l_returnflag char(1), l_linestatus char(1),
         l_shipdate date, l_commitdate date, l_receiptdate date, l_shipinstruct char(25), l_shipmode char(10), l_comment varchar(44))
         distributed by (l_orderkey);
       insert into lineitem_100 select i / 4, i % 200000, i % 10000, i % 4 + 1, i % 50 + 1, (i % 100000) / 3.0, (i % 11) / 100.0, (i % 9) / 100.0,
         substr('ANR', i % 3 + 1, 1), substr('OF', i % 2 + 1, 1), date '1992-01-01' + i % 2500, date '1992-02-01' + i % 2500, date '1992-01-15' + i % 2500,
         'DELIVER IN PERSON', 'TRUCK', md5(i::text) from generate_series(1, 8000000) i;`,
    );
    const size = Number(await cluster.psql('tpchdb', "select pg_total_relation_size('lineitem_100')"));
    assert.ok(size >= 1024 * MiB, `lineitem_100 holds ${size} bytes`);
    const generated = Date.now();
    const cfg = pluginConfig('scale', gofakes3, 'scale');
    const r = await cluster.sh(`cd ${cluster.dir} && ${join(cluster.gpbackupDir, 'plugin_test_scale.sh')} ${pluginBin} ${cfg}`, { timeoutMs: 1_800_000 });
    assert.equal(r.code, 0, `plugin_test_scale.sh failed (exit ${r.code}):\n${tail(r.stdout + r.stderr)}`);
    assert.match(r.stdout, /Finished gpbackup plugin scale tests/);
    await dropDb('tpchdb');
    process.stdout.write(
      `# e2e: lineitem_100 of ${(size / MiB).toFixed(0)} MiB generated in ${((generated - t0) / 1000).toFixed(0)} s; plugin_test_scale.sh took ${((Date.now() - generated) / 1000).toFixed(0)} s\n`,
    );
  });
});

if (SKIP) process.stdout.write(`e2e tier skipped: ${SKIP}\n`);
