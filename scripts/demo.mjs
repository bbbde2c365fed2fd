#!/usr/bin/env node
// `make demo`: plays a whole backup and restore with the built plugin against a local S3
// server, calling it exactly as gpbackup, gprestore and gpbackup_helper do (a process per
// command, the per-host config copy with pgport and backup_plugin_version, the content ID in
// literal double quotes, data through pipes), and prints every step: the object it went to,
// its size, and the time and speed of the plugin process. Every byte restored is compared
// with what was backed up, every object written is checked in the bucket, and at the end the
// bucket must be empty again.
//
//   node scripts/demo.mjs [--bin PATH] [--keep]
//
//   --bin PATH  plugin executable (default $PLUGIN_BIN, else dist/gpbackup_s3_plugin)
//   --keep      keep the temporary directory (the plugin's log, the restored files)
//
// The cluster played: a coordinator (content -1) and two segments (0 and 1) on one host.
// One backup timestamp holds both kinds of table data gpbackup writes, so that one run
// shows every command: per-table streams (multi-data-file backups, COPY ... TO PROGRAM) and
// one stream per segment with a segment TOC (--single-data-file, gpbackup_helper). Nothing
// is compressed (--no-compression), as a filtered restore with restore_data_subset needs.
//
// The server is s3rver from npm (test/support/s3rver-launch.mjs), on 127.0.0.1, with its data,
// the plugin's HOME (its log goes to $HOME/gpAdminLogs) and the configs in one temporary
// directory that is removed at the end, also on failure or Ctrl-C. Exit status 0 only if
// every step passed.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { patternBytes } from '../test/support/pattern.mjs';
import { launchS3rver } from '../test/support/s3rver-launch.mjs';

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;
// The key pair test/support/s3rver-main.cjs registers with s3rver (as in test/support/s3server.ts).
const ACCESS_KEY = 'GPBTESTACCESSKEY';
const SECRET_KEY = 'gpb-Test/Secret+Key-do-not-print-0123456789';
const BUCKET = 'gpbackup-demo';
const FOLDER = 'demo/cluster1';
const SEGMENTS = [0, 1];
/** Tables of the multi-data-file part: one stream per table per segment. 7 MiB makes a two-part upload at 5MB parts. */
const TABLES = [
  { oid: 16384, bytes: 200 * 1024 },
  { oid: 16390, bytes: 1.5 * MiB },
  { oid: 16402, bytes: 7 * MiB },
];
/** Tables of the single-data-file stream of each segment, in the order the helper writes them (ascending OID). */
const SINGLE_FILE_TABLES = [
  { oid: 16384, bytes: 64 * 1024 },
  { oid: 16390, bytes: 2.5 * MiB },
  { oid: 16402, bytes: 3 * MiB },
  { oid: 16410, bytes: 512 * 1024 },
];
/** The tables a filtered restore (gprestore --include-table ...) asks for. */
const SUBSET_OIDS = [16390, 16410];
const PROCESS_TIMEOUT_MS = 60_000;
const LABEL_WIDTH = 50;

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const o = { bin: process.env.PLUGIN_BIN ?? join(PROJECT_ROOT, 'dist/gpbackup_s3_plugin'), keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--bin' && i + 1 < argv.length) o.bin = argv[++i];
    else if (a === '--keep') o.keep = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scripts/demo.mjs [--bin PATH] [--keep]');
      process.exit(0);
    } else throw new Error(`unknown argument "${a}"; usage: node scripts/demo.mjs [--bin PATH] [--keep]`);
  }
  o.bin = resolve(o.bin);
  if (!existsSync(o.bin)) throw new Error(`${o.bin} does not exist: build it first (make)`);
  return o;
}

// ---------------------------------------------------------------- resources and their cleanup

const state = { root: undefined, server: undefined, client: undefined, children: new Set(), keep: false };
let cleaning;

async function cleanup() {
  cleaning ??= (async () => {
    for (const child of state.children) child.kill('SIGKILL');
    state.client?.destroy();
    const server = state.server;
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise(r => server.once('exit', r));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (state.root && !state.keep) rmSync(state.root, { recursive: true, force: true, maxRetries: 3 });
  })();
  return cleaning;
}

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.once(signal, () => {
    process.stderr.write(`\ndemo: ${signal}, stopping\n`);
    cleanup().finally(() => process.exit(code));
  });
}
// Last resort if something exits the process early: nothing may keep running.
process.once('exit', () => {
  for (const child of state.children) child.kill('SIGKILL');
  if (state.server?.exitCode === null) state.server.kill('SIGKILL');
});

// ---------------------------------------------------------------- data, paths and files

/** YYYYMMDDHHMMSS in local time, as gpbackup names a backup. */
function timestampOf(date) {
  const p = n => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

/** A config file as gpbackup writes its per-host copy: keys sorted, every value a quoted string. */
function configYaml(bin, options) {
  const lines = [`executablepath: ${bin}`, 'options:'];
  for (const key of Object.keys(options).sort()) lines.push(`  ${key}: ${JSON.stringify(options[key])}`);
  return lines.join('\n') + '\n';
}

/** The key the plugin writes a local path <base>/backups/<D>/<TS>/<file> to. */
function keyOf(localPath) {
  return `${FOLDER}/${localPath.split('/').filter(Boolean).slice(-4).join('/')}`;
}

const s3url = key => `s3://${BUCKET}/${key}`;

function writeFile(path, content, mode = 0o644) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content, { mode });
  return path;
}

// ---------------------------------------------------------------- running the plugin

/** Runs the plugin once; resolves with its exit code, stdout bytes, stderr text and run time. */
function runPlugin(ctx, args, stdin) {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(ctx.bin, args, { env: ctx.env, stdio: ['pipe', 'pipe', 'pipe'] });
    state.children.add(child);
    const out = [];
    let err = '';
    child.stdout.on('data', d => out.push(d));
    child.stderr.on('data', d => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), PROCESS_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      state.children.delete(child);
      resolvePromise({ code: code ?? signal, stdout: Buffer.concat(out), stderr: err.trim(), ms: performance.now() - started });
    });
    child.stdin.on('error', () => {}); // a failing plugin may exit before reading its input
    child.stdin.end(stdin);
  });
}

class StepError extends Error {}

/** Fails the step unless the plugin exited 0. */
function expectSuccess(r, what) {
  if (r.code !== 0) throw new StepError(`${what} exited ${r.code}${r.stderr ? `: ${r.stderr}` : ''}`);
}

function fmtBytes(n) {
  return n >= MiB ? `${(n / MiB).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

/** Runs a step, prints its line, and records it; a failed step ends the demo. */
async function step(ctx, label, run) {
  const started = performance.now();
  let result;
  try {
    result = (await run()) ?? {};
  } catch (err) {
    const ms = performance.now() - started;
    ctx.steps.push({ label, ok: false });
    console.log(`  FAIL ${label.padEnd(LABEL_WIDTH)} ${''.padStart(23)} ${ms.toFixed(0).padStart(6)} ms`);
    console.log(`       ${err instanceof StepError ? err.message : err.stack}`);
    throw new StepError(`step "${label}" failed`);
  }
  // A transfer's time and speed are those of the plugin process alone (the demo's own checks excluded).
  const ms = result.ms ?? performance.now() - started;
  const { bytes, key, note, direction } = result;
  if (bytes !== undefined) ctx.totals[direction ?? 'up'] += bytes;
  ctx.steps.push({ label, ok: true });
  const size = bytes === undefined ? '' : fmtBytes(bytes);
  const rate = bytes === undefined || bytes < 256 * 1024 ? '' : `${(bytes / MiB / (ms / 1000)).toFixed(1)} MiB/s`;
  const where = key ? s3url(key) : (note ?? '');
  console.log(`  ok   ${label.padEnd(LABEL_WIDTH)} ${size.padStart(10)} ${rate.padStart(12)} ${ms.toFixed(0).padStart(6)} ms  ${where}`);
}

// ---------------------------------------------------------------- the sequence

/** gpbackup's three rounds of a hook: coordinator, segment_host, then every segment at once. */
async function hookRounds(ctx, hook, config, dirs) {
  // Cleanup hooks do not touch the bucket (nothing is left to clean up).
  const folder = hook.startsWith('cleanup') ? { note: '' } : { key: `${FOLDER}/` };
  await step(ctx, `${hook} master "-1"`, async () => {
    expectSuccess(await runPlugin(ctx, [hook, config, dirs.coordinator, 'master', '"-1"']), hook);
    return folder;
  });
  await step(ctx, `${hook} segment_host`, async () => {
    expectSuccess(await runPlugin(ctx, [hook, config, dirs.segments[0], 'segment_host']), hook);
    return folder;
  });
  await step(ctx, `${hook} segment ${SEGMENTS.map(s => `"${s}"`).join(',')}`, async () => {
    const results = await Promise.all(SEGMENTS.map(s => runPlugin(ctx, [hook, config, dirs.segments[s], 'segment', `"${s}"`])));
    results.forEach((r, s) => expectSuccess(r, `${hook} segment "${s}"`));
    return folder;
  });
}

async function checkObjectSize(ctx, key, bytes) {
  const head = await ctx.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  if (head.ContentLength !== bytes) throw new StepError(`${s3url(key)} holds ${head.ContentLength} bytes, ${bytes} were sent`);
}

async function backupData(ctx, config, path, data) {
  const r = await runPlugin(ctx, ['backup_data', config, path], data);
  expectSuccess(r, 'backup_data');
  const key = keyOf(path);
  await checkObjectSize(ctx, key, data.length);
  return { bytes: data.length, key, ms: r.ms };
}

async function backupFile(ctx, config, path) {
  const r = await runPlugin(ctx, ['backup_file', config, path]);
  expectSuccess(r, 'backup_file');
  const key = keyOf(path);
  const bytes = readFileSync(path).length;
  await checkObjectSize(ctx, key, bytes);
  return { bytes, key, ms: r.ms };
}

async function restoreData(ctx, config, path, expected, extraArgs = []) {
  const command = extraArgs.length ? 'restore_data_subset' : 'restore_data';
  const r = await runPlugin(ctx, [command, config, path, ...extraArgs]);
  expectSuccess(r, command);
  if (!r.stdout.equals(expected)) {
    throw new StepError(`${command} wrote ${r.stdout.length} bytes that differ from the ${expected.length} expected`);
  }
  return { bytes: r.stdout.length, key: keyOf(path), direction: 'down', ms: r.ms };
}

async function restoreFile(ctx, config, path, expected) {
  rmSync(path, { force: true });
  mkdirSync(dirname(path), { recursive: true }); // gprestore creates the directory first
  const r = await runPlugin(ctx, ['restore_file', config, path]);
  expectSuccess(r, 'restore_file');
  const got = readFileSync(path);
  if (!got.equals(expected)) throw new StepError(`restore_file wrote ${got.length} bytes that differ from the ${expected.length} backed up`);
  return { bytes: got.length, key: keyOf(path), direction: 'down', ms: r.ms };
}

async function listKeys(ctx, prefix) {
  const keys = [];
  let token;
  do {
    const r = await ctx.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) keys.push(o.Key);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

async function play(ctx) {
  const ts = ctx.timestamp;
  const day = ts.slice(0, 8);
  const dataDir = name => join(ctx.root, 'data', name, 'backups', day, ts);
  const dirs = { coordinator: dataDir('gpseg-1'), segments: SEGMENTS.map(s => dataDir(`gpseg${s}`)) };
  const userConfig = {
    endpoint: ctx.endpoint,
    encryption: 'off',
    aws_access_key_id: ACCESS_KEY,
    aws_secret_access_key: SECRET_KEY,
    bucket: BUCKET,
    folder: FOLDER,
    backup_multipart_chunksize: '5MB',
    restore_multipart_chunksize: '5MB',
    restore_subset: 'on',
  };
  const userConfigText = configYaml(ctx.bin, userConfig);
  // gpbackup's per-host copy, /tmp/<TS>_<name of the user's file>, with the injected options.
  // Mode 0600: the configs hold a secret key (the plugin warns about configs others can read).
  const backupConfig = writeFile(join(ctx.root, 'tmp', `${ts}_s3-demo.yaml`), configYaml(ctx.bin, { ...userConfig, pgport: '6000', backup_plugin_version: '' }), 0o600);

  console.log('gpbackup');
  let version = '';
  await step(ctx, 'plugin_api_version', async () => {
    const r = await runPlugin(ctx, ['plugin_api_version']);
    expectSuccess(r, 'plugin_api_version');
    const api = r.stdout.toString().trim();
    const [major, minor] = api.split('.').map(Number);
    if (!/^\d+\.\d+\.\d+$/.test(api) || (major === 0 && minor < 3)) throw new StepError(`"${api}" is not an API version gpbackup accepts (>= 0.3.0)`);
    return { note: api };
  });
  await step(ctx, '--version', async () => {
    const r = await runPlugin(ctx, ['--version']);
    expectSuccess(r, '--version');
    const fields = r.stdout.toString().trim().split(' ');
    if (fields.length < 3 || fields[1] !== 'version') throw new StepError(`"${r.stdout}" is not "<name> version <version>"`);
    version = fields[2];
    return { note: r.stdout.toString().trim() };
  });
  await hookRounds(ctx, 'setup_plugin_for_backup', backupConfig, dirs);

  const streams = []; // every data object: { path, data, label }
  for (const s of SEGMENTS) {
    for (const t of TABLES) {
      const path = join(dirs.segments[s], `gpbackup_${s}_${ts}_${t.oid}`);
      const data = patternBytes(t.bytes + s * 4096, t.oid * 10 + s);
      streams.push({ path, data, label: `segment ${s} table ${t.oid}` });
      await step(ctx, `backup_data segment ${s} table ${t.oid}`, () => backupData(ctx, backupConfig, path, data));
    }
  }
  const segmentTocs = [];
  for (const s of SEGMENTS) {
    // gpbackup_helper: one stream of every table, and the segment TOC of where each table starts and ends.
    const tables = SINGLE_FILE_TABLES.map(t => ({ oid: t.oid, data: patternBytes(t.bytes + s * 1000, t.oid * 100 + s) }));
    const data = Buffer.concat(tables.map(t => t.data));
    const path = join(dirs.segments[s], `gpbackup_${s}_${ts}`);
    let offset = 0;
    const entries = tables.map(t => ({ oid: t.oid, start: offset, end: (offset += t.data.length), data: t.data }));
    streams.push({ path, data, label: `segment ${s} single data file`, segment: s, entries });
    await step(ctx, `backup_data segment ${s} single data file`, () => backupData(ctx, backupConfig, path, data));
    const tocText = ['dataentries:', ...entries.flatMap(e => [`  ${e.oid}:`, `    startbyte: ${e.start}`, `    endbyte: ${e.end}`])].join('\n') + '\n';
    const tocPath = writeFile(join(dirs.segments[s], `gpbackup_${s}_${ts}_toc.yaml`), tocText);
    segmentTocs.push({ path: tocPath, text: Buffer.from(tocText), segment: s });
    await step(ctx, `backup_file segment ${s} TOC`, () => backupFile(ctx, backupConfig, tocPath));
  }

  // The coordinator's files, in gpbackup's order; plugin_config is the user's file verbatim.
  const coordinatorFiles = [
    ['metadata.sql', `SET client_encoding = 'UTF8';\n\n${TABLES.map(t => `CREATE TABLE public.t${t.oid} (id bigint, payload bytea) DISTRIBUTED BY (id);`).join('\n')}\n`],
    ['toc.yaml', `globalentries: []\npredataentries: []\npostdataentries: []\nstatisticsentries: []\n`],
    ['plugin_config.yaml', userConfigText],
    ['config.yaml', `backupdir: ""\nbackupversion: demo\ncompressed: false\ndatabasename: demo\nplugin: ${ctx.bin}\npluginversion: ${version}\nsingledatafile: false\ntimestamp: "${ts}"\n`],
    ['report', `Greenplum Database Backup Report\n\ntimestamp key: ${ts}\nbackup status: Success\n`],
  ].map(([suffix, text]) => ({ path: writeFile(join(dirs.coordinator, `gpbackup_${ts}_${suffix}`), text), text: Buffer.from(text), suffix }));
  for (const f of coordinatorFiles) await step(ctx, `backup_file ${f.suffix}`, () => backupFile(ctx, backupConfig, f.path));
  await hookRounds(ctx, 'cleanup_plugin_for_backup', backupConfig, dirs);

  console.log('gprestore');
  // gprestore's own copy: named after the restore's timestamp; backup_plugin_version from the history.
  const restoreTs = timestampOf(new Date(Date.now() + 1000));
  const restoreConfig = writeFile(join(ctx.root, 'tmp', `${restoreTs}_s3-demo.yaml`), configYaml(ctx.bin, { ...userConfig, pgport: '6000', backup_plugin_version: version }), 0o600);
  const restoreDirs = {
    coordinator: dirs.coordinator.replace('/data/', '/restore/'),
    segments: dirs.segments.map(d => d.replace('/data/', '/restore/')),
  };
  await hookRounds(ctx, 'setup_plugin_for_restore', restoreConfig, restoreDirs);
  // gprestore fetches these, in this order (not the plugin_config file).
  for (const suffix of ['config.yaml', 'metadata.sql', 'report', 'toc.yaml']) {
    const f = coordinatorFiles.find(c => c.suffix === suffix);
    await step(ctx, `restore_file ${f.suffix}`, () => restoreFile(ctx, restoreConfig, f.path.replace('/data/', '/restore/'), f.text));
  }
  for (const toc of segmentTocs) {
    await step(ctx, `restore_file segment ${toc.segment} TOC`, () => restoreFile(ctx, restoreConfig, toc.path.replace('/data/', '/restore/'), toc.text));
  }
  for (const s of streams) {
    await step(ctx, `restore_data ${s.label}`, () => restoreData(ctx, restoreConfig, s.path.replace('/data/', '/restore/'), s.data));
  }
  for (const s of streams.filter(x => x.entries)) {
    // gpbackup_helper with --include-table: the tables' byte ranges from the segment TOC, in OID order.
    const wanted = s.entries.filter(e => SUBSET_OIDS.includes(e.oid));
    const offsets = writeFile(join(ctx.root, 'tmp', `gprestore_offsets_${s.segment}`), `${wanted.length} ${wanted.map(e => `${e.start} ${e.end}`).join(' ')}`);
    const label = `restore_data_subset segment ${s.segment} tables ${SUBSET_OIDS.join(',')}`;
    await step(ctx, label, () => restoreData(ctx, restoreConfig, s.path.replace('/data/', '/restore/'), Buffer.concat(wanted.map(e => e.data)), [offsets]));
  }
  await hookRounds(ctx, 'cleanup_plugin_for_restore', restoreConfig, restoreDirs);

  console.log('gpbackup_manager / gpbackman');
  const backupKeys = [...streams.map(s => keyOf(s.path)), ...segmentTocs.map(t => keyOf(t.path)), ...coordinatorFiles.map(f => keyOf(f.path))].sort();
  await step(ctx, 'list_directory', async () => {
    const r = await runPlugin(ctx, ['list_directory', userConfigPath(ctx, userConfigText), `backups/${day}/${ts}`]);
    expectSuccess(r, 'list_directory');
    const rows = r.stdout.toString().trim().split('\n').slice(1).map(line => line.split('\t')[0]).sort();
    if (rows.join('\n') !== backupKeys.join('\n')) {
      throw new StepError(`list_directory shows ${rows.length} objects, expected exactly the ${backupKeys.length} written (no probe objects): ${rows.join(', ')}`);
    }
    return { key: `${FOLDER}/backups/${day}/${ts}/`, note: `${rows.length} objects` };
  });
  await step(ctx, `delete_backup ${ts}`, async () => {
    expectSuccess(await runPlugin(ctx, ['delete_backup', userConfigPath(ctx, userConfigText), ts]), 'delete_backup');
    return { key: `${FOLDER}/backups/${day}/${ts}/` };
  });
  await step(ctx, 'restore_data after delete_backup fails', async () => {
    const r = await runPlugin(ctx, ['restore_data', restoreConfig, streams[0].path]);
    if (r.code === 0) throw new StepError('restore_data of a deleted backup succeeded');
    if (r.stdout.length) throw new StepError(`restore_data of a deleted backup wrote ${r.stdout.length} bytes`);
    return { note: `exit ${r.code}: ${r.stderr.split('\n')[0].replace(/^.*?\[ERROR\]:-/, '')}` };
  });
  await step(ctx, 'nothing left in the bucket', async () => {
    const left = await listKeys(ctx, '');
    const uploads = (await ctx.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? [];
    if (left.length || uploads.length) {
      throw new StepError(`left behind: ${[...left, ...uploads.map(u => `multipart upload of ${u.Key}`)].join(', ')}`);
    }
    return { note: `s3://${BUCKET}/ holds no object and no multipart upload` };
  });
}

/** delete_backup and list_directory are run by backup managers with the user's own file. */
function userConfigPath(ctx, text) {
  return (ctx.userConfigPath ??= writeFile(join(ctx.root, 'home', 's3-demo.yaml'), text, 0o600));
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  state.keep = opts.keep;
  const started = performance.now();
  state.root = mkdtempSync(join(tmpdir(), 'gpb-s3-demo-'));
  const home = join(state.root, 'home');
  mkdirSync(home);
  const server = launchS3rver(join(state.root, 's3rver'));
  state.server = server.child;
  const port = await server.port;
  const endpoint = `http://127.0.0.1:${port}`;
  // The SDK (here only to create the bucket and to check objects) would warn that it drops Node 20 in 2027.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  state.client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
  });
  await state.client.send(new CreateBucketCommand({ Bucket: BUCKET }));

  const ctx = {
    bin: opts.bin,
    root: state.root,
    endpoint,
    client: state.client,
    timestamp: timestampOf(new Date()),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, USER: process.env.USER ?? 'gpadmin' },
    steps: [],
    totals: { up: 0, down: 0 },
  };
  console.log(`gpbackup_s3_plugin demo: ${opts.bin}`);
  console.log(`S3 server s3rver at ${endpoint}, bucket ${BUCKET}, folder ${FOLDER}, backup ${ctx.timestamp}, segments ${SEGMENTS.join(', ')}`);
  let failed = false;
  try {
    await play(ctx);
  } catch (err) {
    if (!(err instanceof StepError)) throw err;
    failed = true;
  }

  const seconds = (performance.now() - started) / 1000;
  const passed = ctx.steps.filter(s => s.ok).length;
  console.log('');
  console.log(
    `${failed ? 'FAILED' : 'passed'}: ${passed} of ${ctx.steps.length} steps ok; ${fmtBytes(ctx.totals.up)} backed up, ${fmtBytes(ctx.totals.down)} restored and verified; ${seconds.toFixed(1)} s in all`,
  );
  const logDir = join(home, 'gpAdminLogs');
  const logs = existsSync(logDir) ? readdirSync(logDir).map(n => join(logDir, n)) : [];
  for (const log of logs) {
    const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    console.log(`plugin log: ${log} (${lines.length} lines)${opts.keep ? '' : ', removed with the temporary directory; --keep keeps it'}`);
    if (failed) {
      console.log('last lines of the log:');
      for (const line of lines.slice(-10)) console.log(`  ${line}`);
    }
  }
  if (opts.keep) console.log(`kept: ${state.root} (the s3rver data, the configs, the backed-up and restored files)`);
  return failed ? 1 : 0;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  console.error(`demo: ${err instanceof Error ? err.message : err}`);
} finally {
  await cleanup();
}
process.exit(exitCode);
