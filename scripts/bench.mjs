#!/usr/bin/env node
// `make bench`: the plugin beside the Go plugin and the raw ceiling of the server, in one run.
//
//   node scripts/bench.mjs [--runs N] [--mib M] [--bin PATH]... [--encryption] [--reference TARBALL] [--json]
//
// The server is gofakes3 (an in-memory S3 written in Go) and the Go plugin runs beside ours, both
// from ../shared/e2e/reference.tar.xz (or --reference), unpacked into a temporary folder, when it is there;
// else test/support/fast-s3.mjs (a node process, slower than the Go plugin: against it a benchmark
// measures the server), and no Go plugin: the report says which. The server's raw ceiling is
// measured with a node:http client (keep-alive, preallocated buffers) before the small calls; the
// large download's by curl where it is (else that client), in turn with every large transfer of
// the plugins (one plain GET stream, and 8 MiB ranges 6 at a time, the plugin's defaults), so
// every figure stands beside what the server allows at that moment. The Go plugin runs at 10MB parts, as its maintainers advise.
// Each --bin (default dist/gpbackup_s3_plugin) is measured; their runs and the Go plugin's alternate
// (A B A B) so that a change in the machine's load hits them alike. With --encryption each --bin
// is also run with client_side_encryption on (a raw 256-bit key file), in turn with the plain
// runs, and what encryption adds per GiB each way is printed against issue 20's budget.
//
// Measured (medians of N runs of wall, CPU = user + system, and peak RSS, from scripts/bench-rusage.c):
//   plugin_api_version (floors: /bin/true, and an empty executable compiled on the same Bun);
//   a 1 KiB backup_data + restore_data pair, the restore alone, and a 1 KiB restore_file
//     (raw: one PUT, one GET);
//   256 MiB backup_data from a pipe and restore_data into cat (raw: multipart PUT of 16 MiB parts,
//     4 at a time; one GET stream; ranged GETs of 8 MiB, 6 at a time);
//   64 concurrent 1 KiB backup_data processes (raw: 64 PUTs on 64 new connections);
//   128 1 KiB backup_data, then their 128 restore_data, 16 processes at a time.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostBun } from './bun-compile.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt('--runs', '11'));
const BIG_MIB = Number(opt('--mib', '256'));
const BIG_RUNS = Math.max(5, Math.ceil(RUNS / 4));
const bins = args.flatMap((a, i) => (a === '--bin' ? [resolve(args[i + 1])] : []));
if (bins.length === 0) bins.push(join(root, 'dist/gpbackup_s3_plugin'));
const ENCRYPTION = args.includes('--encryption');
/** CPU-s/GiB that client_side_encryption may add each way (issue 20). */
const ENCRYPTION_BUDGET = 0.6;
const GNU_TIME = '/usr/bin/time';
const MiB = 2 ** 20;

const median = xs => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const work = mkdtempSync(join(tmpdir(), 'gpb-s3-bench-'));

// ---------- the reference tools (gofakes3, the Go plugin), when ../shared/e2e has them ----------
const referenceTarball = resolve(opt('--reference', join(root, '../shared/e2e/reference.tar.xz')));
const reference = existsSync(referenceTarball) ? unpackReference() : undefined;
function unpackReference() {
  const dir = join(work, 'reference-tools');
  mkdirSync(dir);
  const r = spawnSync('tar', ['xJf', referenceTarball, '-C', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot unpack ${referenceTarball}: ${r.stderr}`);
  return { gofakes3: join(dir, 'reference/gofakes3'), goPlugin: join(dir, 'reference/gpbackup_s3_plugin') };
}

// ---------- the server, in its own process ----------
const server = reference
  ? spawn(reference.gofakes3, ['-backend', 'memory', '-host', '127.0.0.1:0', '-quiet'], { stdio: ['ignore', 'ignore', 'pipe'] })
  : spawn(process.execPath, [join(root, 'test/support/fast-s3.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const serverName = reference ? 'gofakes3 (memory backend)' : 'test/support/fast-s3.mjs (in memory)';
const port = await new Promise((res, rej) => {
  let out = '';
  // gofakes3 logs the port it was given on stderr, fast-s3 on stdout.
  (reference ? server.stderr : server.stdout).on('data', d => {
    out += d;
    const m = /(?:listening|using port:) (\d+)/.exec(out);
    if (m) res(Number(m[1]));
  });
  server.once('exit', code => rej(new Error(`${serverName} exited ${code}: ${out}`)));
});
const endpoint = `http://127.0.0.1:${port}`;
const cleanup = () => {
  server.kill();
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);

// ---------- a raw client ----------
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
function http(method, path, { body, headers = {}, into, at = 0, fresh = false, discard = false } = {}) {
  return new Promise((res, rej) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, agent: fresh ? false : agent, headers: { 'content-length': body?.length ?? 0, ...headers } },
      r => {
        let got = 0;
        const chunks = [];
        r.on('data', c => {
          if (into) c.copy(into, at + got);
          else if (!discard) chunks.push(c);
          got += c.length;
        });
        r.on('end', () =>
          r.statusCode < 300 ? res({ headers: r.headers, got, body: into || discard ? undefined : Buffer.concat(chunks) }) : rej(new Error(`${method} ${path}: ${r.statusCode}`)),
        );
      },
    );
    req.on('error', rej);
    req.end(body);
  });
}
async function pool(n, limit, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, n) }, async () => {
    while (next < n) await fn(next++);
  }));
}

await http('PUT', '/bench');
const big = Buffer.alloc(BIG_MIB * MiB);
for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i);
const kib = Buffer.alloc(1024, 7);

async function rawTimed(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}
async function rawUpload(key) {
  const { body } = await http('POST', `/bench/${key}?uploads`);
  const id = /<UploadId>([^<]+)</.exec(body.toString())[1];
  const part = 16 * MiB;
  const n = Math.ceil(big.length / part);
  const etags = [];
  await pool(n, 4, async i => {
    const r = await http('PUT', `/bench/${key}?partNumber=${i + 1}&uploadId=${id}`, { body: big.subarray(i * part, (i + 1) * part) });
    etags[i] = r.headers.etag;
  });
  const xml = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
  await http('POST', `/bench/${key}?uploadId=${id}`, { body: Buffer.from(xml) });
}
const into = Buffer.allocUnsafe(big.length);
/** 8 MiB ranges, 6 at a time, copied into place (the plugin's defaults). */
async function rawDownload(key) {
  const part = 8 * MiB;
  await pool(Math.ceil(big.length / part), 6, i =>
    http('GET', `/bench/${key}`, { headers: { range: `bytes=${i * part}-${Math.min(big.length, (i + 1) * part) - 1}` }, into, at: i * part }),
  );
}
/** One plain GET of the whole object, its bytes counted and dropped. */
async function rawStream(key) {
  const { got } = await http('GET', `/bench/${key}`, { discard: true });
  if (got !== big.length) throw new Error(`the raw GET stream read ${got} bytes, not ${big.length}`);
}

const home = join(work, 'home');
spawnSync('mkdir', ['-p', home]);
const configLines = [
  'executablepath: /unused',
  'options:',
  '  aws_access_key_id: "BENCHACCESSKEY"',
  '  aws_secret_access_key: "bench-secret-key-not-checked"',
  '  bucket: "bench"',
  `  endpoint: "${endpoint}"`,
  '  encryption: "off"',
  '  folder: "plugin"',
];
const cfg = join(work, 'config.yaml');
writeFileSync(cfg, [...configLines, ''].join('\n'));
const keyFile = join(work, 'encryption.key');
writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
const encryptedCfg = join(work, 'config-encrypted.yaml');
writeFileSync(encryptedCfg, [...configLines, '  client_side_encryption: "on"', `  encryption_key_file: "${keyFile}"`, ''].join('\n'));
// The Go plugin wants a region, and runs at 10MB parts as its maintainers advise (its default is 500MB).
const goCfg = join(work, 'config-go.yaml');
const goLines = ['  region: "us-east-1"', '  backup_multipart_chunksize: "10MB"', '  restore_multipart_chunksize: "10MB"'];
writeFileSync(goCfg, [...configLines.map(l => l.replace('"plugin"', '"go-plugin"')), ...goLines, ''].join('\n'));
/** What is measured, in turn: each executable (with --encryption each again with client_side_encryption on), then the Go plugin. */
const variants = [
  ...bins.flatMap(bin => [
    { bin, cfg, label: bin },
    ...(ENCRYPTION ? [{ bin, cfg: encryptedCfg, label: `${bin}, client_side_encryption on`, encrypted: true }] : []),
  ]),
  ...(reference ? [{ bin: reference.goPlugin, cfg: goCfg, label: 'Go plugin (../shared/e2e/reference.tar.xz, 10MB parts)', go: true }] : []),
];
const goIndex = variants.findIndex(v => v.go);

/** An empty executable compiled on the plugin's Bun: the runtime's own floor for a small call. */
function emptyBunExecutable() {
  const dir = join(work, 'empty-bun');
  mkdirSync(dir);
  writeFileSync(join(dir, 'empty.js'), "require('node:fs').writeSync(1, '');\n");
  const out = join(dir, 'empty');
  const r = spawnSync(hostBun().bin, ['build', '--compile', '--bytecode', '--format=cjs', 'empty.js', '--outfile', out], { cwd: dir, env: { PATH: '/usr/bin:/bin', HOME: dir }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot compile an empty Bun executable: ${r.stderr}`);
  return out;
}
const emptyBun = emptyBunExecutable();
const bigFile = join(work, 'big.bin');
writeFileSync(bigFile, big);
const kibFile = join(work, 'kib.bin');
writeFileSync(kibFile, kib);
const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: home };
/**
 * The timer: scripts/bench-rusage.c (wall, and CPU to the microsecond) where a C compiler is, else
 * GNU time (CPU to the hundredth of a second). Both write "wall user system peak-KiB".
 */
const rusageTimer = join(work, 'bench-rusage');
const compiled = spawnSync('cc', ['-O2', '-o', rusageTimer, join(root, 'scripts/bench-rusage.c')], { env }).status === 0 ? rusageTimer : undefined;
const timerArgs = compiled ? rusageTimer : `${GNU_TIME} -f '%e %U %S %M'`;
const timerName = compiled ? 'scripts/bench-rusage.c (wait4: CPU to the microsecond, wall from fork to exit)' : 'GNU time (no C compiler: CPU to 10 ms)';

const dataPath = (ts, n) => join(work, 'data/gpseg0/backups', ts.slice(0, 8), ts, `gpbackup_0_${ts}_${n}`);

const raw = {};
{
  const floor = [];
  const bunFloor = [];
  for (let i = 0; i < RUNS; i++) {
    floor.push(runTimed(['/bin/true'], {}).wall);
    bunFloor.push(runTimed([emptyBun], {}));
  }
  raw.api = { wall: median(floor) };
  raw.emptyBun = medians(bunFloor);
  const pair = [];
  const get = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await http('PUT', `/bench/raw/small-${i}`, { body: kib, fresh: true });
    const t1 = performance.now();
    await http('GET', `/bench/raw/small-${i}`, { fresh: true });
    const t2 = performance.now();
    pair.push((t2 - t0) / 1000);
    get.push((t2 - t1) / 1000);
  }
  raw.pair = { wall: median(pair) };
  raw.restore1k = { wall: median(get) };
  const ups = [];
  for (let i = 0; i < BIG_RUNS; i++) ups.push(await rawTimed(() => rawUpload('raw/big')));
  raw.up = pick(ups);
  raw.concurrent = await rawTimed(() => Promise.all(Array.from({ length: 64 }, (_, i) => http('PUT', `/bench/raw/c-${i}`, { body: kib, fresh: true }))));
}

/** The run whose wall time is the median. */
function pick(runs) {
  const m = median(runs.map(r => r.wall));
  return runs.find(r => r.wall === m) ?? runs[0];
}
/** Medians of wall, CPU and peak RSS, each on its own. */
function medians(runs) {
  return { wall: median(runs.map(r => r.wall)), cpu: median(runs.map(r => r.cpu)), rssMiB: median(runs.map(r => r.rssMiB)) };
}

// ---------- the plugin ----------

/** Runs `argv` under the timer; stdin/stdout as files or shell redirections via sh -c. */
function runTimed(argv, { stdinFile, stdoutCmd } = {}) {
  const quoted = argv.map(a => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const out = join(work, 'time.out');
  const inner = `${timerArgs} -o ${out} ${quoted}${stdinFile ? ` < ${stdinFile}` : ' < /dev/null'}`;
  const shell = stdinFile && stdinFile.startsWith('|') ? `cat ${stdinFile.slice(1)} | ${inner.replace(/ < \S+$/, '')}` : inner;
  const cmd = stdoutCmd ? `${shell} | ${stdoutCmd}` : `${shell} > /dev/null`;
  const r = spawnSync('sh', ['-c', `set -e; ${cmd}`], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  return parseTimes(out);
}

/** The timer's "wall user system peak-KiB" (GNU time may write a line about the exit status first). */
function parseTimes(file) {
  const [wall, u, s, m] = readFileSync(file, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { wall, cpu: u + s, rssMiB: m / 1024 };
}

const results = variants.map(() => ({ api: [], pair: [], restore1k: [], restoreFile: [], up: [], down: [], concurrent: undefined, manySmall: undefined }));
/** A 1 KiB file each variant backs up once and restores in every run (a report file's path). */
const reportPath = b => join(work, 'data/gpseg0/backups/20250101/20250101000003', `gpbackup_20250101000003_report_${b}`);
variants.forEach(({ bin, cfg }, b) => {
  mkdirSync(dirname(reportPath(b)), { recursive: true });
  writeFileSync(reportPath(b), kib);
  runTimed([bin, 'backup_file', cfg, reportPath(b)]);
});
for (let i = 0; i < RUNS; i++) {
  variants.forEach(({ bin, cfg }, b) => {
    results[b].api.push(runTimed([bin, 'plugin_api_version']));
    const p = dataPath('20250101000000', `${b}_${i}`);
    const up = runTimed([bin, 'backup_data', cfg, p], { stdinFile: kibFile });
    const down = runTimed([bin, 'restore_data', cfg, p]);
    results[b].pair.push({ wall: up.wall + down.wall, cpu: up.cpu + down.cpu, rssMiB: Math.max(up.rssMiB, down.rssMiB) });
    results[b].restore1k.push(down);
    rmSync(reportPath(b));
    results[b].restoreFile.push(runTimed([bin, 'restore_file', cfg, reportPath(b)]));
    if (!readFileSync(reportPath(b)).equals(kib)) throw new Error(`${bin} restore_file wrote other bytes`);
  });
}
// The download ceiling by curl where it is (a node:http client is slower than gofakes3 here).
const CURL = spawnSync('curl', ['--version'], { env }).status === 0;
const downloadClient = CURL ? 'curl' : 'node:http';
const rawUrl = `${endpoint}/bench/raw/big`;
const curlRanges = Array.from({ length: Math.ceil(big.length / (8 * MiB)) }, (_, i) => [
  ...(i ? ['--next'] : []),
  '-sf',
  '-r',
  `${i * 8 * MiB}-${Math.min(big.length, (i + 1) * 8 * MiB) - 1}`,
  '-o',
  '/dev/null',
  rawUrl,
]).flat();
const rawStreams = [];
const rawDowns = [];
for (let i = 0; i < BIG_RUNS; i++) {
  rawStreams.push(CURL ? runTimed(['curl', '-sf', '-o', '/dev/null', rawUrl]) : await rawTimed(() => rawStream('raw/big')));
  rawDowns.push(CURL ? runTimed(['curl', '-s', '--parallel', '--parallel-max', '6', ...curlRanges]) : await rawTimed(() => rawDownload('raw/big')));
  variants.forEach(({ bin, cfg }, b) => {
    const p = dataPath('20250101000001', `big_${b}`);
    results[b].up.push(runTimed([bin, 'backup_data', cfg, p], { stdinFile: `|${bigFile}` }));
    results[b].down.push(runTimed([bin, 'restore_data', cfg, p], { stdoutCmd: 'cat > /dev/null' }));
  });
}
if (!CURL && !into.equals(big)) throw new Error('the raw client read back other bytes');
raw.stream = pick(rawStreams);
raw.down = pick(rawDowns);
agent.destroy();
/** One call under the timer, not waited for: `sh -c` with the timer, stdin from `stdin`, stdout dropped. */
function timedCall(argv, out, stdin = '/dev/null') {
  const quoted = argv.map(a => `'${a}'`).join(' ');
  return new Promise((res, rej) => {
    const child = spawn('sh', ['-c', `${timerArgs} -o ${out} ${quoted} < ${stdin} > /dev/null`], { env, stdio: 'ignore' });
    child.on('exit', code => (code === 0 ? res(parseTimes(out)) : rej(new Error(`${argv.slice(0, 2).join(' ')} exited ${code}`))));
  });
}
/** Wall time of `calls` (functions starting a timed call), `limit` at a time, and their summed CPU and peak RSS. */
async function callsAtOnce(calls, limit) {
  const t0 = performance.now();
  const runs = [];
  await pool(calls.length, limit, async i => runs.push(await calls[i]()));
  return {
    wall: (performance.now() - t0) / 1000,
    cpu: runs.reduce((a, r) => a + r.cpu, 0),
    rssMiB: runs.reduce((a, r) => a + r.rssMiB, 0),
  };
}
for (const [b, { bin, cfg }] of variants.entries()) {
  const at = (ts, i) => dataPath(ts, `${b}_${i}`);
  const time = i => join(work, `c-${b}-${i}.time`);
  results[b].concurrent = await callsAtOnce(
    Array.from({ length: 64 }, (_, i) => () => timedCall([bin, 'backup_data', cfg, at('20250101000002', i)], time(i), kibFile)),
    64,
  );
  // As gpbackup and gprestore call it for many small tables: 128 backups, then their 128 restores.
  const ups = await callsAtOnce(
    Array.from({ length: 128 }, (_, i) => () => timedCall([bin, 'backup_data', cfg, at('20250101000004', i)], time(i), kibFile)),
    16,
  );
  const downs = await callsAtOnce(
    Array.from({ length: 128 }, (_, i) => () => timedCall([bin, 'restore_data', cfg, at('20250101000004', i)], time(i))),
    16,
  );
  results[b].manySmall = { wall: ups.wall + downs.wall, cpu: ups.cpu + downs.cpu, rssMiB: Math.max(ups.rssMiB, downs.rssMiB) / 128 };
}
cleanup();

// ---------- report ----------
const ms = s => `${(s * 1000).toFixed(1)} ms`;
const secs = s => `${s.toFixed(2)} s`;
const mibs = r => `${(BIG_MIB / r.wall).toFixed(0)} MiB/s`;
const cpuPerGiB = r => `${(r.cpu / (BIG_MIB / 1024)).toFixed(2)} CPU-s/GiB`;
const rss = r => `${r.rssMiB.toFixed(0)} MiB peak`;
/** A small call's medians, and its wall beyond `starts` process starts of the harness (the /bin/true floor). */
const small = (runs, starts = 1) => {
  const m = medians(runs);
  return `${ms(m.wall)} (${ms(Math.max(0, m.wall - starts * raw.api.wall))} over the floor), ${ms(m.cpu)} CPU, ${rss(m)}`;
};
const large = runs => {
  const m = medians(runs);
  return `${secs(m.wall)}, ${mibs(m)}, ${m.cpu.toFixed(2)} CPU-s (${cpuPerGiB(m)}), ${rss(m)}`;
};
const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
const lines = [
  `gpbackup_s3_plugin benchmark, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} x ${cpuModel}, Linux ${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()}`,
  `server: ${serverName} on 127.0.0.1; ${RUNS} runs per small figure, ${BIG_RUNS} per ${BIG_MIB} MiB figure (medians); timer: ${timerName}`,
  reference
    ? `Go plugin: ${referenceTarball} (10MB parts), in turn with ours`
    : `${referenceTarball} not found: no gofakes3 (the server is fast-s3, which may be the limit) and no Go plugin beside ours`,
  '',
  `raw ceiling (a node:http client inside the bench, no process start; downloads by ${downloadClient}):`,
  `  plugin_api_version floor (/bin/true)   ${ms(raw.api.wall)}`,
  `  an empty Bun executable (same runtime) ${ms(raw.emptyBun.wall)}, ${ms(raw.emptyBun.cpu)} CPU, ${rss(raw.emptyBun)}`,
  `  1 KiB PUT + GET, new connections       ${ms(raw.pair.wall)} (GET alone ${ms(raw.restore1k.wall)})`,
  `  ${BIG_MIB} MiB up (16 MiB parts x 4)          ${secs(raw.up.wall)}, ${mibs(raw.up)}, client ${cpuPerGiB(raw.up)}`,
  `  ${BIG_MIB} MiB down, one GET stream           ${secs(raw.stream.wall)}, ${mibs(raw.stream)}, client ${cpuPerGiB(raw.stream)}`,
  `  ${BIG_MIB} MiB down (8 MiB ranges x 6)        ${secs(raw.down.wall)}, ${mibs(raw.down)}, client ${cpuPerGiB(raw.down)}`,
  `  64 concurrent 1 KiB PUTs               ${ms(raw.concurrent.wall)}, client ${raw.concurrent.cpu.toFixed(2)} CPU-s`,
];
for (const [b, { label }] of variants.entries()) {
  const r = results[b];
  lines.push(
    '',
    `${label}:`,
    `  plugin_api_version                     ${small(r.api)}`,
    `  1 KiB backup_data + restore_data       ${small(r.pair, 2)}`,
    `  1 KiB restore_data                     ${small(r.restore1k)}`,
    `  1 KiB restore_file                     ${small(r.restoreFile)}`,
    `  ${BIG_MIB} MiB backup_data from a pipe         ${large(r.up)}`,
    `  ${BIG_MIB} MiB restore_data into cat           ${large(r.down)}`,
    `  64 concurrent 1 KiB backup_data        ${secs(r.concurrent.wall)} total, ${r.concurrent.cpu.toFixed(2)} CPU-s, ${r.concurrent.rssMiB.toFixed(0)} MiB summed peak RSS`,
    `  128 + 128 1 KiB backup/restore_data,   ${secs(r.manySmall.wall)} total, ${r.manySmall.cpu.toFixed(2)} CPU-s, ${r.manySmall.rssMiB.toFixed(0)} MiB mean peak RSS`,
    `    16 at a time`,
  );
}
if (goIndex >= 0) {
  const go = results[goIndex];
  /** Ours over the Go plugin's, medians of wall and of CPU, and our median peak RSS against a bound. */
  const against = (ours, theirs, maxRatio, maxMiB) => {
    const [o, t] = [medians(ours), medians(theirs)];
    const w = o.wall / t.wall;
    const c = o.cpu / t.cpu;
    const met = w <= maxRatio && c <= maxRatio && o.rssMiB <= maxMiB;
    return `wall ${w.toFixed(2)}x, CPU ${c.toFixed(2)}x (at most ${maxRatio}x), peak RSS ${o.rssMiB.toFixed(0)} MiB (at most ${maxMiB}): ${met ? 'met' : 'NOT met'}`;
  };
  for (const [b, v] of variants.entries()) {
    if (v.go || v.encrypted) continue;
    const r = results[b];
    lines.push(
      '',
      `${v.label} against the Go plugin (issue 20):`,
      `  ${BIG_MIB} MiB restore_data into cat           ${against(r.down, go.down, 1, 128)}`,
      `  1 KiB restore_data                     ${against(r.restore1k, go.restore1k, 1.25, 32)}`,
      `  1 KiB restore_file                     ${against(r.restoreFile, go.restoreFile, 1.25, 32)}`,
      `  ${BIG_MIB} MiB backup_data from a pipe         wall ${(medians(r.up).wall / medians(go.up).wall).toFixed(2)}x, CPU ${(medians(r.up).cpu / medians(go.up).cpu).toFixed(2)}x`,
    );
  }
}
for (const [b, v] of variants.entries()) {
  if (!v.encrypted) continue;
  // The plain variant of the same executable is the one before it.
  const perGiB = runs => median(runs.map(r => r.cpu)) / (BIG_MIB / 1024);
  const addedUp = perGiB(results[b].up) - perGiB(results[b - 1].up);
  const addedDown = perGiB(results[b].down) - perGiB(results[b - 1].down);
  const verdict = x => (x <= ENCRYPTION_BUDGET ? 'within' : 'over');
  lines.push(
    '',
    `client_side_encryption adds, ${v.bin} (budget ${ENCRYPTION_BUDGET} CPU-s/GiB each way):`,
    `  backup_data   ${addedUp.toFixed(2)} CPU-s/GiB (${verdict(addedUp)}), peak RSS ${medians(results[b].up).rssMiB.toFixed(0)} MiB against ${medians(results[b - 1].up).rssMiB.toFixed(0)} MiB`,
    `  restore_data  ${addedDown.toFixed(2)} CPU-s/GiB (${verdict(addedDown)}), peak RSS ${medians(results[b].down).rssMiB.toFixed(0)} MiB against ${medians(results[b - 1].down).rssMiB.toFixed(0)} MiB`,
  );
}
console.log(lines.join('\n'));
if (args.includes('--json')) console.log(JSON.stringify({ raw, results }));
