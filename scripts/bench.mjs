#!/usr/bin/env node
// `make bench`: the plugin beside the raw ceiling of the server it talks to, in one run.
//
//   node scripts/bench.mjs [--runs N] [--mib M] [--bin PATH]... [--encryption] [--json]
//
// The server is test/support/fast-s3.mjs (in memory, in its own process): s3rver and moto_server
// are slower than the plugin, so against them a benchmark measures the server. Its ceiling is
// measured first with a raw node:http client (keep-alive, preallocated buffers, the plugin's part
// sizes and concurrency), so every figure of the plugin stands beside what the server allows.
// Each --bin (default dist/gpbackup_s3_plugin) is measured; with several, their runs alternate
// (A B A B) so that a change in the machine's load hits them alike. With --encryption each
// executable is also run with client_side_encryption on (a raw 256-bit key file), in turn with the
// plain runs, and what encryption adds per GiB each way is printed against issue 14's budget.
//
// Measured (wall: median of N runs; CPU = user + system, peak RSS: GNU time's %M):
//   plugin_api_version (the raw floor: /bin/true);
//   a 1 KiB backup_data + restore_data pair, and the restore alone (raw: one PUT, one GET);
//   256 MiB backup_data from a pipe and restore_data into cat (raw: multipart PUT of 16 MiB parts,
//     4 at a time; ranged GETs of 8 MiB, 6 at a time: the plugin's defaults);
//   64 concurrent 1 KiB backup_data processes (raw: 64 PUTs on 64 new connections).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { args, median, option, root, startFastS3, timedRun } from './bench-support.mjs';

const RUNS = Number(option('--runs', '11'));
const BIG_MIB = Number(option('--mib', '256'));
const BIG_RUNS = Math.max(3, Math.ceil(RUNS / 4));
const bins = args.flatMap((a, i) => (a === '--bin' ? [resolve(args[i + 1])] : []));
if (bins.length === 0) bins.push(join(root, 'dist/gpbackup_s3_plugin'));
const ENCRYPTION = args.includes('--encryption');
/** CPU-s/GiB that client_side_encryption may add each way (issue 14). */
const ENCRYPTION_BUDGET = 0.5;
const TIME = '/usr/bin/time';
const MiB = 2 ** 20;

// ---------- the server, in its own process ----------
const { port, endpoint, stop: cleanup } = await startFastS3();

// ---------- a raw client ----------
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
function http(method, path, { body, headers = {}, into, at = 0, fresh = false } = {}) {
  return new Promise((res, rej) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, agent: fresh ? false : agent, headers: { 'content-length': body?.length ?? 0, ...headers } },
      r => {
        let got = 0;
        const chunks = [];
        r.on('data', c => {
          if (into) c.copy(into, at + got);
          else chunks.push(c);
          got += c.length;
        });
        r.on('end', () => (r.statusCode < 300 ? res({ headers: r.headers, body: into ? undefined : Buffer.concat(chunks) }) : rej(new Error(`${method} ${path}: ${r.statusCode}`))));
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
async function rawDownload(key) {
  const part = 8 * MiB;
  await pool(Math.ceil(big.length / part), 6, i =>
    http('GET', `/bench/${key}`, { headers: { range: `bytes=${i * part}-${Math.min(big.length, (i + 1) * part) - 1}` }, into, at: i * part }),
  );
}

const work = mkdtempSync(join(tmpdir(), 'gpb-s3-bench-'));
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
/** What is measured, in turn: each executable, and with --encryption each again with client_side_encryption on. */
const variants = bins.flatMap(bin => [
  { bin, cfg, label: bin },
  ...(ENCRYPTION ? [{ bin, cfg: encryptedCfg, label: `${bin}, client_side_encryption on`, encrypted: true }] : []),
]);
const bigFile = join(work, 'big.bin');
writeFileSync(bigFile, big);
const kibFile = join(work, 'kib.bin');
writeFileSync(kibFile, kib);
const env = { PATH: '/usr/bin:/bin', HOME: home };
const runTimed = (argv, opts = {}) => timedRun(argv, { ...opts, work, env });
const dataPath = (ts, n) => join(work, 'data/gpseg0/backups', ts.slice(0, 8), ts, `gpbackup_0_${ts}_${n}`);

const raw = {};
{
  const floor = [];
  for (let i = 0; i < RUNS; i++) floor.push(runTimed(['/bin/true'], {}).wall);
  raw.api = { wall: median(floor) };
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
  const downs = [];
  for (let i = 0; i < BIG_RUNS; i++) {
    ups.push(await rawTimed(() => rawUpload('raw/big')));
    downs.push(await rawTimed(() => rawDownload('raw/big')));
  }
  if (!into.equals(big)) throw new Error('the raw client read back other bytes');
  raw.up = pick(ups);
  raw.down = pick(downs);
  raw.concurrent = await rawTimed(() => Promise.all(Array.from({ length: 64 }, (_, i) => http('PUT', `/bench/raw/c-${i}`, { body: kib, fresh: true }))));
}
agent.destroy();

/** The run whose wall time is the median. */
function pick(runs) {
  const m = median(runs.map(r => r.wall));
  return runs.find(r => r.wall === m) ?? runs[0];
}

// ---------- the plugin ----------

/** Runs `argv` under GNU time; stdin/stdout as files or shell redirections via sh -c. */
const results = variants.map(() => ({ api: [], pair: [], restore1k: [], up: [], down: [], concurrent: undefined }));
for (let i = 0; i < RUNS; i++) {
  variants.forEach(({ bin, cfg }, b) => {
    results[b].api.push(runTimed([bin, 'plugin_api_version']));
    const p = dataPath('20250101000000', `${b}_${i}`);
    const up = runTimed([bin, 'backup_data', cfg, p], { stdinFile: kibFile });
    const down = runTimed([bin, 'restore_data', cfg, p]);
    results[b].pair.push({ wall: up.wall + down.wall, cpu: up.cpu + down.cpu, rssMiB: Math.max(up.rssMiB, down.rssMiB) });
    results[b].restore1k.push(down);
  });
}
for (let i = 0; i < BIG_RUNS; i++) {
  variants.forEach(({ bin, cfg }, b) => {
    const p = dataPath('20250101000001', `big_${b}`);
    results[b].up.push(runTimed([bin, 'backup_data', cfg, p], { stdinFile: `|${bigFile}` }));
    results[b].down.push(runTimed([bin, 'restore_data', cfg, p], { stdoutCmd: 'cat > /dev/null' }));
  });
}
for (const [b, { bin, cfg }] of variants.entries()) {
  const t0 = performance.now();
  const runs = await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      new Promise((res, rej) => {
        const out = join(work, `c-${b}-${i}.time`);
        const child = spawn('sh', ['-c', `${TIME} -f '%e %U %S %M' -o ${out} '${bin}' backup_data '${cfg}' '${dataPath('20250101000002', `${b}_${i}`)}' < ${kibFile}`], { env, stdio: 'ignore' });
        child.on('exit', code => {
          if (code !== 0) return rej(new Error(`concurrent backup_data ${i} exited ${code}`));
          const [, u, s, m] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
          res({ cpu: u + s, rssMiB: m / 1024 });
        });
      }),
    ),
  );
  results[b].concurrent = {
    wall: (performance.now() - t0) / 1000,
    cpu: runs.reduce((a, r) => a + r.cpu, 0),
    rssMiB: runs.reduce((a, r) => a + r.rssMiB, 0),
  };
}
rmSync(work, { recursive: true, force: true });
cleanup();

// ---------- report ----------
const ms = s => `${(s * 1000).toFixed(1)} ms`;
const secs = s => `${s.toFixed(2)} s`;
const mibs = r => `${(BIG_MIB / r.wall).toFixed(0)} MiB/s`;
const cpuPerGiB = r => `${(r.cpu / (BIG_MIB / 1024)).toFixed(2)} CPU-s/GiB`;
const rss = r => `${r.rssMiB.toFixed(0)} MiB peak`;
/** A small call's median, and what it is beyond `starts` process starts of the harness (the /bin/true floor). */
const small = (runs, starts = 1) => {
  const r = pick(runs);
  const wall = median(runs.map(x => x.wall));
  return `${ms(wall)} (${ms(Math.max(0, wall - starts * raw.api.wall))} over the floor), ${rss(r)}`;
};
const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
const lines = [
  `gpbackup_s3_plugin benchmark, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} x ${cpuModel}, Linux ${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()}`,
  `server: test/support/fast-s3.mjs (in memory) on 127.0.0.1; ${RUNS} runs per small figure, ${BIG_RUNS} per ${BIG_MIB} MiB figure (medians)`,
  '',
  `raw ceiling (node:http client inside the bench, no process start):`,
  `  plugin_api_version floor (/bin/true)   ${ms(raw.api.wall)}`,
  `  1 KiB PUT + GET, new connections       ${ms(raw.pair.wall)} (GET alone ${ms(raw.restore1k.wall)})`,
  `  ${BIG_MIB} MiB up (16 MiB parts x 4)          ${secs(raw.up.wall)}, ${mibs(raw.up)}, client ${cpuPerGiB(raw.up)}`,
  `  ${BIG_MIB} MiB down (8 MiB ranges x 6)        ${secs(raw.down.wall)}, ${mibs(raw.down)}, client ${cpuPerGiB(raw.down)}`,
  `  64 concurrent 1 KiB PUTs               ${ms(raw.concurrent.wall)}, client ${raw.concurrent.cpu.toFixed(2)} CPU-s`,
];
for (const [b, { label }] of variants.entries()) {
  const r = results[b];
  const up = pick(r.up);
  const down = pick(r.down);
  lines.push(
    '',
    `${label}:`,
    `  plugin_api_version                     ${small(r.api)}`,
    `  1 KiB backup_data + restore_data       ${small(r.pair, 2)}; restore_data alone ${small(r.restore1k)}`,
    `  ${BIG_MIB} MiB backup_data from a pipe         ${secs(up.wall)}, ${mibs(up)}, ${cpuPerGiB(up)}, ${rss(up)}`,
    `  ${BIG_MIB} MiB restore_data into cat           ${secs(down.wall)}, ${mibs(down)}, ${cpuPerGiB(down)}, ${rss(down)}`,
    `  64 concurrent 1 KiB backup_data        ${secs(r.concurrent.wall)} total, ${r.concurrent.cpu.toFixed(2)} CPU-s, ${r.concurrent.rssMiB.toFixed(0)} MiB summed peak RSS`,
  );
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
    `  backup_data   ${addedUp.toFixed(2)} CPU-s/GiB (${verdict(addedUp)}), peak RSS ${pick(results[b].up).rssMiB.toFixed(0)} MiB against ${pick(results[b - 1].up).rssMiB.toFixed(0)} MiB`,
    `  restore_data  ${addedDown.toFixed(2)} CPU-s/GiB (${verdict(addedDown)}), peak RSS ${pick(results[b].down).rssMiB.toFixed(0)} MiB against ${pick(results[b - 1].down).rssMiB.toFixed(0)} MiB`,
  );
}
console.log(lines.join('\n'));
if (args.includes('--json')) console.log(JSON.stringify({ raw, results }));
