#!/usr/bin/env node
// Transfer benchmark for the plugin executable: backup_data and restore_data of
// one large stream against a local S3 server (s3rver, as the integration tests
// use), next to a minimal raw-SDK client doing the same transfer in-process
// (the ceiling the server and this machine allow).
//
//   node scripts/bench-transfer.mjs [--size-mib N] [--runs K] [--bin PATH]
//                                   [--option key=value]... [--json]
//
//   --size-mib N        MiB per transfer (default 1024)
//   --runs K            repetitions of every measurement; the medians are shown (default 3)
//   --bin PATH          plugin executable (default dist/gpbackup_s3_plugin; built with
//                       `npm run build` when it is the default and missing)
//   --option key=value  an extra plugin option (repeatable); otherwise the config holds
//                       only endpoint/encryption/bucket/folder/keys, so the plugin's
//                       defaults are what is measured
//   --json              one JSON document on stdout instead of the table
//
// Data: a deterministic, incompressible stream: one 16 MiB buffer of random
// bytes, cut into 1 MiB chunks, each chunk stamped at its start with its 8-byte
// little-endian index so no two chunks are identical. It is generated as it is
// consumed (through a pipe for the plugin), never held whole in memory. Its
// sha256 is computed once, before anything is timed, from the same generator;
// every restore/download is hashed as it streams and must match it byte for
// byte (and in length). The object's size is also checked after every upload.
//
// How the plugin process is measured (per run):
//   - wall time: from spawn to the moment the process has exited and all of its
//     output has been read (restore: every byte hashed), in this process.
//   - CPU: the plugin runs as the only child of a tiny POSIX sh wrapper, which
//     waits for it and then runs the `times` builtin (POSIX: user and system time
//     of the shell's waited-for children), writing it to an extra pipe (fd 3).
//     The figures are the kernel's own accounting of the whole process (every
//     thread) up to its exit, nothing sampled: bash prints them from
//     getrusage(RUSAGE_CHILDREN) in milliseconds, dash from times(2) in clock
//     ticks (1/CLK_TCK s, 10 ms at the usual 100 Hz). user+sys is exact to that
//     resolution (the kernel's user/sys split is statistical, their sum is not).
//     The wrapper itself uses no CPU worth counting and its own time is excluded
//     (`times` prints it on a separate line). /usr/bin/time is not needed.
//   - peak RSS: VmHWM (the kernel's high-water mark of the process's resident set:
//     anonymous + file-backed + shmem, all threads) read from /proc/<pid>/status
//     every 20 ms; the last sample before exit is kept. The mark never decreases,
//     so the only error is growth in the last interval before exit (<= ~20 ms
//     plus event-loop jitter): a lower bound that is exact unless memory grows
//     right at the end. The largest RssAnon seen (heap and buffers without the
//     executable's mapped pages) is recorded too ("anon").
//     /proc/<pid>/stat (utime+stime) is polled at the same time as a cross-check
//     (cpuPolledSec in --json; it misses the last interval).
// The raw-SDK client runs in this process: wall time, MiB/s and this process's
// CPU (process.cpuUsage() delta; it includes generating, or hashing, the data).
//
// The s3rver process (and its data directory), the plugin's HOME (its log goes
// to ~/gpAdminLogs) and the config are all in one temporary directory, removed
// at the end, on error and on SIGINT/SIGTERM. Objects are deleted after every
// transfer so the server's disk does not fill.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { launchS3rver } from '../test/support/s3rver-launch.mjs';

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_BIN = join(PROJECT_ROOT, 'dist/gpbackup_s3_plugin');

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BASE_SIZE = 16 * MiB; // the random buffer the stream repeats
const CHUNK = 1 * MiB; // the unit the index is stamped on, and the pipe write size
const SDK_UP_PART = 16 * MiB;
const SDK_UP_INFLIGHT = 4;
const SDK_DOWN_PART = 16 * MiB;
const SDK_DOWN_INFLIGHT = 6;
const POLL_MS = 20;

const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';
const BUCKET = 'bench';
const FOLDER = 'bench-folder';
const DATA_PATH = '/bench/backups/20240101/20240101000000/gpbackup_0_20240101000000';
const DATA_KEY = `${FOLDER}/backups/20240101/20240101000000/gpbackup_0_20240101000000`;
const SDK_KEY = `${FOLDER}/sdk/raw-object`;

const sleep = ms => new Promise(r => setTimeout(r, ms));

// ---------------------------------------------------------------- arguments

function usage() {
  return [
    'usage: node scripts/bench-transfer.mjs [--size-mib N] [--runs K] [--bin PATH] [--option key=value]... [--json]',
    '  --size-mib N        MiB per transfer (default 1024)',
    '  --runs K            runs of every measurement, medians shown (default 3)',
    '  --bin PATH          plugin executable (default dist/gpbackup_s3_plugin)',
    '  --option key=value  extra plugin option, repeatable (default: the plugin\'s defaults)',
    '  --json              machine-readable output',
  ].join('\n');
}

function parseArgs(argv) {
  const o = { sizeMiB: 1024, runs: 3, bin: DEFAULT_BIN, binGiven: false, options: {}, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value\n${usage()}`);
      return argv[++i];
    };
    if (a === '--size-mib') o.sizeMiB = Number(value());
    else if (a === '--runs') o.runs = Number(value());
    else if (a === '--bin') {
      o.bin = resolve(value());
      o.binGiven = true;
    } else if (a === '--option') {
      const kv = value();
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`--option needs key=value, got "${kv}"`);
      o.options[kv.slice(0, eq).trim()] = kv.slice(eq + 1);
    } else if (a === '--json') o.json = true;
    else if (a === '-h' || a === '--help') {
      console.log(usage());
      process.exit(0);
    } else throw new Error(`unknown argument "${a}"\n${usage()}`);
  }
  if (!(o.sizeMiB > 0) || !Number.isFinite(o.sizeMiB)) throw new Error('--size-mib needs a positive number');
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs needs a positive integer');
  o.bytes = Math.round(o.sizeMiB * MiB);
  return o;
}

// ---------------------------------------------------------------- cleanup

const state = {
  root: undefined, // temporary directory: s3rver data, HOME, config
  server: undefined, // s3rver ChildProcess
  client: undefined,
  live: new Set(), // { wrapper, pid } of running plugin processes
};
let cleaning;

function killQuietly(pid, signal) {
  try {
    if (pid) process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

function killPluginRuns() {
  for (const run of state.live) {
    killQuietly(run.pid, 'SIGKILL');
    killQuietly(run.wrapper.pid, 'SIGKILL');
  }
  state.live.clear();
}

async function cleanup() {
  cleaning ??= (async () => {
    killPluginRuns();
    state.client?.destroy();
    const server = state.server;
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise(r => server.once('exit', r));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    state.server = undefined;
    if (state.root) rmSync(state.root, { recursive: true, force: true, maxRetries: 3 });
    state.root = undefined;
  })();
  return cleaning;
}

/** Last resort (process.exit from elsewhere): synchronous, no waiting. */
function cleanupSync() {
  killPluginRuns();
  if (state.server && state.server.exitCode === null) killQuietly(state.server.pid, 'SIGKILL');
  if (state.root) {
    try {
      rmSync(state.root, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

// ---------------------------------------------------------------- data

function makeBase() {
  const base = Buffer.allocUnsafe(BASE_SIZE);
  for (let off = 0; off < BASE_SIZE; off += 64 * 1024) randomFillSync(base, off, 64 * 1024);
  return base;
}

/**
 * Fills `target` with the stream's bytes starting at `offset` (a multiple of
 * CHUNK): the base repeated, each chunk stamped at its start with its index.
 */
function fillStream(base, target, offset) {
  if (offset % CHUNK !== 0) throw new Error('fillStream: offset must be chunk-aligned');
  let pos = 0;
  while (pos < target.length) {
    const src = (offset + pos) % BASE_SIZE;
    const n = Math.min(target.length - pos, BASE_SIZE - src);
    base.copy(target, pos, src, src + n);
    pos += n;
  }
  const stamp = Buffer.allocUnsafe(8);
  for (let c = 0; c < target.length; c += CHUNK) {
    stamp.writeBigUInt64LE(BigInt((offset + c) / CHUNK));
    stamp.copy(target, c, 0, Math.min(8, target.length - c));
  }
  return target;
}

/** The stream as a Readable of fresh 1 MiB buffers (a buffer may still be in flight when the next is made). */
function dataStream(base, totalBytes) {
  let offset = 0;
  return new Readable({
    highWaterMark: 4 * CHUNK,
    read() {
      for (;;) {
        if (offset >= totalBytes) {
          this.push(null);
          return;
        }
        const n = Math.min(CHUNK, totalBytes - offset);
        const buf = fillStream(base, Buffer.allocUnsafe(n), offset);
        offset += n;
        if (!this.push(buf)) return;
      }
    },
  });
}

async function referenceHash(base, totalBytes) {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of dataStream(base, totalBytes)) {
    h.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: h.digest('hex'), bytes };
}

// ---------------------------------------------------------------- s3rver

async function startServer(root) {
  const dir = join(root, 's3rver');
  mkdirSync(dir);
  const server = launchS3rver(dir);
  state.server = server.child;
  const port = await server.port;
  server.child.once('exit', (code, signal) => {
    if (!cleaning) process.stderr.write(`s3rver exited unexpectedly (${code ?? signal}):\n${server.tail()}\n`);
  });
  return { port, dir };
}

function makeClient(port) {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
  return new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    // As the plugin: no CRC32 of every byte (s3rver checks Content-MD5 only where sent).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ httpAgent: agent, requestTimeout: 300_000 }),
  });
}

async function objectSize(client, key) {
  const r = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  return r.ContentLength;
}

/** Deletes every object and open multipart upload under the folder. */
async function emptyFolder(client) {
  let token;
  do {
    const r = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${FOLDER}/`, ContinuationToken: token }),
    );
    for (const o of r.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: o.Key }));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  const u = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  for (const up of u.Uploads ?? []) {
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: up.Key, UploadId: up.UploadId }))
      .catch(() => {});
  }
}

// ---------------------------------------------------------------- plugin runs

// $0 is the plugin, "$@" its arguments. fd 3 is a pipe to the benchmark: the
// plugin's pid first, then the output of `times` once the plugin has been
// waited for. The plugin runs asynchronously only so that its pid is known at
// once; an asynchronous command's stdin is /dev/null unless redirected, hence
// fd 4 (dash replaces fd 0 before the command's own redirections are applied).
const WRAPPER = [
  'exec 4<&0',
  '"$0" "$@" <&4 4<&- 3>&- &',
  'pid=$!',
  'exec 4<&-',
  'echo "pid $pid" >&3',
  'wait "$pid"',
  'rc=$?',
  'echo times >&3',
  'times >&3',
  'exit $rc',
].join('\n');

function readProc(pid) {
  const out = {};
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state); utime/stime are fields 14/15.
    out.state = f[0];
    out.ticks = Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
    const anon = /^RssAnon:\s+(\d+) kB/m.exec(status);
    if (hwm) out.hwmKiB = Number(hwm[1]);
    if (anon) out.anonKiB = Number(anon[1]);
  } catch {
    /* exited between the two reads */
  }
  return out;
}

function parseTimes(text) {
  // POSIX format: "%dm%fs %dm%fs\n%dm%fs %dm%fs\n" (shell; then its children).
  const m = [...text.matchAll(/(\d+)m([\d.]+)s/g)].map(x => Number(x[1]) * 60 + Number(x[2]));
  if (m.length < 4) return undefined;
  return { user: m[2], sys: m[3] };
}

let CLK_TCK = 100;

/**
 * Runs the plugin with `args`; `stdin` a Readable (or undefined: /dev/null);
 * `onStdout(chunk)` sees every byte it writes. Resolves with the measurements.
 */
function runPlugin(bin, args, env, { stdin, onStdout } = {}) {
  return new Promise((resolveP, reject) => {
    const t0 = process.hrtime.bigint();
    const wrapper = spawn('/bin/sh', ['-c', WRAPPER, bin, ...args], {
      env,
      stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    const run = { wrapper, pid: undefined };
    state.live.add(run);
    let ctl = '';
    let stderr = '';
    let last; // last /proc sample of the plugin
    let anonMaxKiB = 0;
    let timer;
    const sample = () => {
      if (!run.pid) return;
      const s = readProc(run.pid);
      if (!s || s.state === 'Z' || s.state === 'X') return;
      if (s.hwmKiB !== undefined) last = s;
      else if (last) last = { ...last, ticks: s.ticks }; // mm gone (exiting): keep the last VmHWM
      if (s.anonKiB > anonMaxKiB) anonMaxKiB = s.anonKiB;
    };
    wrapper.stdio[3].on('data', d => {
      ctl += d.toString();
      if (!run.pid) {
        const m = /^pid (\d+)\n/.exec(ctl);
        if (m) {
          run.pid = Number(m[1]);
          sample();
          timer = setInterval(sample, POLL_MS);
        }
      }
    });
    wrapper.stderr.on('data', d => (stderr = (stderr + d.toString()).slice(-8000)));
    wrapper.stdout.on('data', d => onStdout?.(d));
    if (stdin) {
      wrapper.stdin.on('error', err => {
        if (err.code !== 'EPIPE') stderr += `\n[bench] stdin: ${err.message}`;
      });
      stdin.pipe(wrapper.stdin);
    }
    wrapper.once('error', err => {
      clearInterval(timer);
      state.live.delete(run);
      reject(err);
    });
    wrapper.once('close', (code, signal) => {
      const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
      clearInterval(timer);
      state.live.delete(run);
      stdin?.unpipe(wrapper.stdin);
      stdin?.destroy();
      if (code !== 0) {
        reject(new Error(`${bin} ${args.join(' ')} exited ${code ?? signal}:\n${stderr.trim()}`));
        return;
      }
      const times = parseTimes(ctl.slice(ctl.indexOf('times\n')));
      const polledCpu = last ? last.ticks / CLK_TCK : undefined;
      resolveP({
        wallSec,
        cpuSec: times ? times.user + times.sys : polledCpu,
        cpuUserSec: times?.user,
        cpuSysSec: times?.sys,
        cpuPolledSec: polledCpu,
        cpuSource: times ? 'times' : 'proc-poll',
        peakRssMiB: last?.hwmKiB !== undefined ? last.hwmKiB / 1024 : undefined,
        peakAnonMiB: anonMaxKiB ? anonMaxKiB / 1024 : undefined,
        stderr: stderr.trim(),
      });
    });
  });
}

// ---------------------------------------------------------------- raw SDK client

async function sdkUpload(client, base, totalBytes) {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: SDK_KEY }));
  const etags = [];
  const inflight = new Set();
  try {
    const parts = Math.max(1, Math.ceil(totalBytes / SDK_UP_PART));
    for (let p = 0; p < parts; p++) {
      while (inflight.size >= SDK_UP_INFLIGHT) await Promise.race(inflight);
      const offset = p * SDK_UP_PART;
      const body = fillStream(base, Buffer.allocUnsafe(Math.min(SDK_UP_PART, totalBytes - offset)), offset);
      const tracked = client
        .send(
          new UploadPartCommand({
            Bucket: BUCKET,
            Key: SDK_KEY,
            UploadId,
            PartNumber: p + 1,
            Body: body,
            ContentLength: body.length,
          }),
        )
        .then(r => {
          etags[p] = r.ETag;
        })
        .finally(() => inflight.delete(tracked));
      tracked.catch(() => {}); // raced/awaited below; never an unhandled rejection
      inflight.add(tracked);
    }
    await Promise.all(inflight);
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: SDK_KEY,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  } catch (err) {
    await Promise.allSettled(inflight);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: SDK_KEY, UploadId })).catch(() => {});
    throw err;
  }
}

async function getRange(client, start, end) {
  const r = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: SDK_KEY, Range: `bytes=${start}-${end}` }));
  const buf = Buffer.allocUnsafe(end - start + 1);
  let pos = 0;
  for await (const chunk of r.Body) {
    if (pos + chunk.length > buf.length) throw new Error(`range ${start}-${end}: more bytes than asked for`);
    chunk.copy(buf, pos);
    pos += chunk.length;
  }
  if (pos !== buf.length) throw new Error(`range ${start}-${end}: ${pos} bytes instead of ${buf.length}`);
  return buf;
}

async function sdkDownload(client) {
  const size = await objectSize(client, SDK_KEY);
  const hash = createHash('sha256');
  const parts = Math.ceil(size / SDK_DOWN_PART);
  const pending = [];
  let next = 0;
  const startNext = () => {
    const start = next * SDK_DOWN_PART;
    const p = getRange(client, start, Math.min(size, start + SDK_DOWN_PART) - 1);
    p.catch(() => {});
    pending.push(p);
    next++;
  };
  let bytes = 0;
  try {
    while (next < Math.min(parts, SDK_DOWN_INFLIGHT)) startNext();
    for (let i = 0; i < parts; i++) {
      const buf = await pending.shift();
      if (next < parts) startNext();
      hash.update(buf);
      bytes += buf.length;
    }
  } catch (err) {
    await Promise.allSettled(pending);
    throw err;
  }
  return { bytes, sha256: hash.digest('hex') };
}

async function timedInProcess(fn) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const result = await fn();
  const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { wallSec, cpuSec: (cpu.user + cpu.system) / 1e6, result };
}

// ---------------------------------------------------------------- build

async function ensureBinary(opts) {
  if (existsSync(opts.bin)) return;
  if (opts.binGiven) throw new Error(`${opts.bin} does not exist`);
  for (let attempt = 1; ; attempt++) {
    process.stderr.write(`[bench] ${relative(PROJECT_ROOT, opts.bin)} is missing: npm run build (attempt ${attempt})\n`);
    const r = spawnSync('npm', ['run', 'build'], { cwd: PROJECT_ROOT, stdio: ['ignore', 2, 2] });
    if (r.status === 0 && existsSync(opts.bin)) return;
    if (attempt >= 5) throw new Error(`npm run build failed ${attempt} times; giving up`);
    process.stderr.write('[bench] build failed (the build may be being edited); retrying in 2 minutes\n');
    await sleep(120_000);
  }
}

function describeBinary(bin) {
  const fd = openSync(bin, 'r');
  const head = Buffer.alloc(4);
  readSync(fd, head, 0, 4, 0);
  closeSync(fd);
  const kind = head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))
    ? 'ELF executable'
    : head.subarray(0, 2).toString() === '#!'
      ? 'script'
      : 'executable';
  const st = statSync(bin);
  return { path: bin, kind, sizeBytes: st.size, mtime: st.mtime.toISOString() };
}

// ---------------------------------------------------------------- report

function median(values) {
  const s = values.filter(v => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (!s.length) return undefined;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function machineInfo() {
  const cpus = os.cpus();
  return {
    nproc: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    ramGiB: Math.round((os.totalmem() / GiB) * 10) / 10,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

const ROWS = [
  ['pluginBackup', 'plugin backup_data'],
  ['pluginRestore', 'plugin restore_data'],
  ['sdkUpload', `raw SDK upload (${SDK_UP_PART / MiB} MiB x ${SDK_UP_INFLIGHT})`],
  ['sdkDownload', `raw SDK download (${SDK_DOWN_PART / MiB} MiB x ${SDK_DOWN_INFLIGHT})`],
];

function summarize(samples, sizeMiB) {
  const out = {};
  for (const [key] of ROWS) {
    const runs = samples[key];
    const figure = f => median(runs.map(f));
    out[key] = {
      wallSec: figure(r => r.wallSec),
      mibPerSec: figure(r => sizeMiB / r.wallSec),
      cpuSecPerGiB: figure(r => r.cpuSec / (sizeMiB / 1024)),
      peakRssMiB: figure(r => r.peakRssMiB),
      peakAnonMiB: figure(r => r.peakAnonMiB),
    };
  }
  return out;
}

function printTable(info, med) {
  const fmt = (v, d) => (v === undefined ? '-' : v.toFixed(d));
  const lines = [];
  lines.push('gpbackup_s3_plugin transfer benchmark');
  lines.push(`date:     ${info.date}`);
  lines.push(
    `machine:  ${info.machine.nproc} CPUs, ${info.machine.cpuModel}, ${info.machine.ramGiB} GiB RAM, ${info.machine.kernel}`,
  );
  lines.push(`node:     ${info.node} (benchmark and s3rver)`);
  lines.push(
    `plugin:   ${relative(process.cwd(), info.binary.path) || info.binary.path} (${info.binary.kind}, ${(info.binary.sizeBytes / MiB).toFixed(1)} MiB)`,
  );
  const extra = Object.entries(info.extraOptions);
  lines.push(`options:  ${extra.length ? extra.map(([k, v]) => `${k}=${v}`).join(', ') : "the plugin's defaults"} (endpoint 127.0.0.1, encryption off)`);
  lines.push(`server:   s3rver ${info.server.version} on 127.0.0.1 (filesystem-backed, in ${os.tmpdir()})`);
  lines.push(`size:     ${info.sizeMiB} MiB per transfer, sha256 ${info.sha256.slice(0, 16)}...`);
  lines.push(`runs:     ${info.runs} (median of each figure shown)`);
  lines.push(`bench:    this process's peak RSS ${info.benchmarkMaxRssMiB} MiB`);
  if (info.binary.changedDuringRun) lines.push('WARNING:  the plugin binary changed during the benchmark (rebuilt?)');
  lines.push('');
  const head = ['transfer', 'wall s', 'MiB/s', 'CPU s/GiB', 'peak RSS MiB', 'anon MiB'];
  const rows = ROWS.map(([key, label]) => {
    const m = med[key];
    return [label, fmt(m.wallSec, 2), fmt(m.mibPerSec, 1), fmt(m.cpuSecPerGiB, 2), fmt(m.peakRssMiB, 1), fmt(m.peakAnonMiB, 1)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)));
  const line = r => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('   ');
  lines.push(line(head));
  lines.push(widths.map(w => '-'.repeat(w)).join('   '));
  for (const r of rows) lines.push(line(r));
  lines.push('');
  lines.push('plugin rows: CPU = user+sys of the plugin process (kernel accounting via sh `times`);');
  lines.push('  peak RSS = VmHWM polled every 20 ms; anon = largest RssAnon seen (without mapped executable pages).');
  lines.push('raw SDK rows: in this process; CPU = process.cpuUsage(), including generating / hashing the data.');
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  await ensureBinary(opts);
  const binary = describeBinary(opts.bin);
  const clk = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  if (clk.status === 0 && Number(clk.stdout) > 0) CLK_TCK = Number(clk.stdout);
  const log = msg => process.stderr.write(`[bench] ${msg}\n`);

  state.root = mkdtempSync(join(os.tmpdir(), 'gpb-s3-bench-'));
  const home = join(state.root, 'home');
  mkdirSync(home);

  const { port } = await startServer(state.root);
  const client = makeClient(port);
  state.client = client;
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));

  const pluginOptions = {
    endpoint: `127.0.0.1:${port}`,
    encryption: 'off',
    bucket: BUCKET,
    folder: FOLDER,
    aws_access_key_id: ACCESS_KEY,
    aws_secret_access_key: SECRET_KEY,
    ...opts.options,
  };
  const configPath = join(state.root, 'config.yaml');
  writeFileSync(
    configPath,
    [`executablepath: ${opts.bin}`, 'options:', ...Object.entries(pluginOptions).map(([k, v]) => `  ${k}: ${JSON.stringify(String(v))}`)].join('\n') + '\n',
  );
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, USER: process.env.USER ?? 'gpadmin' };

  const base = makeBase();
  log(`hashing the ${opts.sizeMiB} MiB reference stream`);
  const ref = await referenceHash(base, opts.bytes);

  const samples = Object.fromEntries(ROWS.map(([k]) => [k, []]));
  for (let run = 1; run <= opts.runs; run++) {
    // plugin backup_data
    log(`run ${run}/${opts.runs}: plugin backup_data`);
    const up = await runPlugin(opts.bin, ['backup_data', configPath, DATA_PATH], env, {
      stdin: dataStream(base, opts.bytes),
    });
    const stored = await objectSize(client, DATA_KEY);
    // client_side_encryption adds a 108-byte header and a 16-byte tag per 64 KiB segment (docs/encryption.md).
    const expected = opts.options.client_side_encryption === 'on' ? opts.bytes + 108 + Math.max(1, Math.ceil(opts.bytes / 65536)) * 16 : opts.bytes;
    if (stored !== expected) throw new Error(`backup_data stored ${stored} bytes, expected ${expected}`);
    samples.pluginBackup.push(up);

    // plugin restore_data
    log(`run ${run}/${opts.runs}: plugin restore_data`);
    const hash = createHash('sha256');
    let bytes = 0;
    const down = await runPlugin(opts.bin, ['restore_data', configPath, DATA_PATH], env, {
      onStdout: chunk => {
        hash.update(chunk);
        bytes += chunk.length;
      },
    });
    const sha = hash.digest('hex');
    if (bytes !== ref.bytes || sha !== ref.sha256) {
      throw new Error(`restore_data returned ${bytes} bytes (sha256 ${sha}), expected ${ref.bytes} (${ref.sha256})`);
    }
    samples.pluginRestore.push(down);
    await emptyFolder(client);

    // raw SDK client
    log(`run ${run}/${opts.runs}: raw SDK upload`);
    const sup = await timedInProcess(() => sdkUpload(client, base, opts.bytes));
    const sdkStored = await objectSize(client, SDK_KEY);
    if (sdkStored !== opts.bytes) throw new Error(`SDK upload stored ${sdkStored} bytes, expected ${opts.bytes}`);
    samples.sdkUpload.push(sup);
    log(`run ${run}/${opts.runs}: raw SDK download`);
    const sdown = await timedInProcess(() => sdkDownload(client));
    if (sdown.result.bytes !== ref.bytes || sdown.result.sha256 !== ref.sha256) {
      throw new Error(`SDK download returned ${sdown.result.bytes} bytes (sha256 ${sdown.result.sha256}), expected ${ref.bytes}`);
    }
    samples.sdkDownload.push(sdown);
    await emptyFolder(client);
  }

  const after = statSync(opts.bin);
  if (after.mtime.toISOString() !== binary.mtime || after.size !== binary.sizeBytes) {
    log(`WARNING: ${opts.bin} changed while the benchmark ran (rebuilt?): the runs may mix two builds`);
    binary.changedDuringRun = true;
  }
  const s3rverVersion = JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules/s3rver/package.json'), 'utf8')).version;
  const info = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    node: process.version,
    binary,
    server: { name: 's3rver', version: s3rverVersion },
    sizeMiB: opts.sizeMiB,
    runs: opts.runs,
    extraOptions: opts.options,
    sha256: ref.sha256,
    benchmarkMaxRssMiB: Math.round(process.resourceUsage().maxRSS / 102.4) / 10,
    method: {
      pluginCpu: 'user+sys of the plugin from the POSIX `times` builtin of a sh wrapper that waited for it (kernel accounting)',
      pluginPeakRss: `VmHWM from /proc/<pid>/status polled every ${POLL_MS} ms, last sample before exit`,
      sdk: 'in-process; cpu = process.cpuUsage() delta (includes data generation / hashing)',
    },
  };
  const med = summarize(samples, opts.sizeMiB);
  if (opts.json) {
    const strip = r => {
      const { result, stderr, ...rest } = r;
      return rest;
    };
    const raw = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map(strip)]));
    console.log(JSON.stringify({ ...info, median: med, samples: raw }, null, 2));
  } else {
    printTable(info, med);
  }
}

let interrupted = false;
process.on('SIGINT', () => {
  interrupted = true;
  process.stderr.write('[bench] interrupted; cleaning up\n');
  cleanup().finally(() => process.exit(130));
});
process.on('SIGTERM', () => {
  interrupted = true;
  cleanup().finally(() => process.exit(143));
});
process.on('exit', cleanupSync);

main().then(
  () => cleanup(),
  async err => {
    if (interrupted) return; // the signal handler cleans up and exits
    process.stderr.write(`[bench] error: ${err?.stack ?? err}\n`);
    await cleanup();
    process.exitCode = 1;
  },
);
