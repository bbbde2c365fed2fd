#!/usr/bin/env node
// `make bench`, deduplication (docs/deduplication.md, docs/performance.md): against the in-memory
// S3 stand-in (test/support/fast-s3.mjs), what deduplication stores and asks for, and what it costs.
//
//   node scripts/bench-dedup.mjs [--mib M] [--runs N] [--bin PATH]
//
// Streams (M MiB, default 1024): text rows as COPY writes them; the same with 1% of the rows
// changed in 5 places; and gpbackup's gzip (level 1, its default) of the rows. Each is backed up
// with deduplication after the one before it, and the bytes stored and requests made are counted.
// Then backup_data and restore_data of the rows and of their gzip, with and without deduplication, in turn (A B A B),
// N runs each (default 3): wall-clock medians, CPU (user + system) per GiB, peak RSS (GNU time);
// beside them the server's ceiling, a GET of the plain object by curl.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, createReadStream, createWriteStream } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { changedRuns, rowWriter } from './table-rows.mjs';
import { median, option, root, startFastS3, timedRun } from './bench-support.mjs';

const MIB = Number(option('--mib', '1024'));
const RUNS = Number(option('--runs', '3'));
const bin = resolve(option('--bin', join(root, 'dist/gpbackup_s3_plugin')));
const MiB = 2 ** 20;

const { port, stop } = await startFastS3();
const work = mkdtempSync(join(tmpdir(), 'bench-dedup-'));
const cleanup = () => {
  stop();
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);

const http = (method, path) =>
  new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, method, path }, r => {
      const chunks = [];
      r.on('data', c => chunks.push(c));
      r.on('end', () => res(Buffer.concat(chunks).toString()));
    });
    req.on('error', rej);
    req.end();
  });
await http('PUT', '/bench');

// ---------- the streams ----------
const rowsFile = join(work, 'rows');
const changedFile = join(work, 'changed');
const gzipFile = join(work, 'rows.gz');
{
  const target = MIB * MiB;
  const base = rowWriter(1);
  const edit = rowWriter(2);
  const a = openSync(rowsFile, 'w');
  const b = openSync(changedFile, 'w');
  const approxRows = Math.round(target / 70);
  const runs = changedRuns(approxRows);
  let written = 0;
  for (let i = 0; written < target; ) {
    const lines = [];
    const changed = [];
    for (let n = 0; n < 20000; n++, i++) {
      const line = base(i);
      lines.push(line);
      changed.push(runs.some(([s, e]) => i >= s && i < e) ? edit(i) : line);
    }
    const block = Buffer.from(lines.join(''));
    written += block.length;
    writeSync(a, block);
    writeSync(b, Buffer.from(changed.join('')));
  }
  closeSync(a);
  closeSync(b);
  await pipeline(createReadStream(rowsFile), createGzip({ level: 1 }), createWriteStream(gzipFile));
}
const sizeOf = f => readFileSync(f).length;

// ---------- the plugin ----------
const home = join(work, 'home');
const env = { PATH: process.env.PATH, HOME: home };
function config(name, extra, fileName = name) {
  const file = join(work, `${fileName}.yaml`);
  const options = { endpoint: `http://127.0.0.1:${port}`, bucket: 'bench', folder: name, aws_access_key_id: 'x', aws_secret_access_key: 'y', encryption: 'off', ...extra };
  writeFileSync(file, `executablepath: ${bin}\noptions:\n${Object.entries(options).map(([k, v]) => `  ${k}: "${v}"`).join('\n')}\n`);
  return file;
}
const dataPath = (ts, file) => join(work, 'gpseg0', 'backups', ts.slice(0, 8), ts, file);

const runTimed = (argv, opts = {}) => timedRun(argv, { ...opts, work, env });

async function listBytes(prefix) {
  const xml = await http('GET', `/bench?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  return [...xml.matchAll(/<Size>(\d+)<\/Size>/g)].reduce((n, m) => n + Number(m[1]), 0);
}
const requests = async () => JSON.parse(await http('GET', '/__requests'));

// ---------- stored bytes and requests ----------
const dedupCfg = config('dedup', { deduplication: 'on' });
const rows = [];
const step = async (what, file, ts) => {
  const before = await listBytes('dedup/');
  await requests();
  runTimed([bin, 'backup_data', dedupCfg, dataPath(ts, `gpbackup_0_${ts}_1`)], { stdinFile: `|${file}` });
  const r = await requests();
  const added = (await listBytes('dedup/')) - before;
  const total = Object.values(r).reduce((a, b) => a + b, 0);
  const gib = sizeOf(file) / 2 ** 30;
  rows.push(`| ${what} | ${(sizeOf(file) / MiB).toFixed(0)} MiB | ${(added / MiB).toFixed(1)} MiB (${((100 * added) / sizeOf(file)).toFixed(2)}%) | ${(total / gib).toFixed(0)} (${Object.entries(r).map(([m, n]) => `${m} ${n}`).join(', ')}) |`);
};
await step('rows, first backup', rowsFile, '20250101000000');
await step('the same rows again', rowsFile, '20250102000000');
await step('1% of rows changed in 5 places', changedFile, '20250103000000');
await step('gzip -1 of the rows, first backup', gzipFile, '20250104000000');
await step('the same gzip stream again', gzipFile, '20250105000000');

// ---------- cost: with and without deduplication, A B A B ----------
// For the rows as COPY writes them (gpbackup --no-compression) and for their gzip (its default).
const plainCfg = config('plain', {});
const streams = [
  { name: 'rows', file: rowsFile },
  { name: 'gzip', file: gzipFile },
];
const m = Object.fromEntries(streams.map(s => [s.name, { plainUp: [], dedupUp: [], dedupAgain: [], plainDown: [], dedupDown: [], plainLink: [], dedupLink: [], ceiling: [] }]));
// Restores again through a link of LINK (restore_max_bandwidth): S3 is reached over a network, not a loopback faster than the CPU.
const LINK = '200MB';
const plainLinkCfg = config('plain', { restore_max_bandwidth: LINK }, 'plain-link');
for (let i = 0; i < RUNS; i++) {
  for (const { name, file } of streams) {
    const fresh = config(`fresh-${name}-${i}`, { deduplication: 'on' });
    const ts = `2025020${i + 1}000000`;
    const r = m[name];
    r.plainUp.push(runTimed([bin, 'backup_data', plainCfg, dataPath(ts, `p-${name}`)], { stdinFile: `|${file}` }));
    r.dedupUp.push(runTimed([bin, 'backup_data', fresh, dataPath(ts, 'd')], { stdinFile: `|${file}` }));
    r.dedupAgain.push(runTimed([bin, 'backup_data', fresh, dataPath(ts, 'd2')], { stdinFile: `|${file}` }));
    r.plainDown.push(runTimed([bin, 'restore_data', plainCfg, dataPath(ts, `p-${name}`)], { stdoutCmd: 'cat > /dev/null' }));
    r.dedupDown.push(runTimed([bin, 'restore_data', fresh, dataPath(ts, 'd')], { stdoutCmd: 'cat > /dev/null' }));
    // The server's ceiling: the plain object in one GET by curl (fast-s3 checks no signature).
    r.ceiling.push(runTimed(['curl', '-sf', '-o', '/dev/null', `http://127.0.0.1:${port}/bench/plain/backups/${ts.slice(0, 8)}/${ts}/p-${name}`]));
    r.plainLink.push(runTimed([bin, 'restore_data', plainLinkCfg, dataPath(ts, `p-${name}`)], { stdoutCmd: 'cat > /dev/null' }));
    r.dedupLink.push(runTimed([bin, 'restore_data', config(`fresh-${name}-${i}`, { deduplication: 'on', restore_max_bandwidth: LINK }, `fresh-${name}-${i}-link`), dataPath(ts, 'd')], { stdoutCmd: 'cat > /dev/null' }));
  }
}
const costTable = ({ name, file }) => {
  const gib = sizeOf(file) / 2 ** 30;
  const line = (what, xs) =>
    `| ${what} | ${(sizeOf(file) / MiB / median(xs.map(x => x.wall))).toFixed(0)} MiB/s | ${(median(xs.map(x => x.cpu)) / gib).toFixed(2)} | ${median(xs.map(x => x.rssMiB)).toFixed(0)} MiB |`;
  const r = m[name];
  return [
    '',
    `| ${name} (${(sizeOf(file) / MiB).toFixed(0)} MiB), medians | throughput | CPU-s/GiB | peak RSS |`,
    '|---|---|---|---|',
    line('backup_data, plain', r.plainUp),
    line('backup_data, deduplicated, first (every chunk new)', r.dedupUp),
    line('backup_data, deduplicated, again (every chunk present)', r.dedupAgain),
    line('the server: one GET of the plain object by curl (its ceiling)', r.ceiling),
    line('restore_data, plain', r.plainDown),
    line('restore_data, deduplicated', r.dedupDown),
    line(`restore_data, plain, through a ${LINK}/s link`, r.plainLink),
    line(`restore_data, deduplicated, through a ${LINK}/s link`, r.dedupLink),
  ];
};

const out = [
  `deduplication, ${MIB} MiB streams, ${RUNS} runs, ${new Date().toISOString()}:`,
  '',
  '| stream, backed up in this order | size | stored by it | requests per GiB |',
  '|---|---|---|---|',
  ...rows,
  ...streams.flatMap(costTable),
];
process.stdout.write(out.join('\n') + '\n');
cleanup();
process.exit(0);
