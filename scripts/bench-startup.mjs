#!/usr/bin/env node
// Start-up benchmark for the plugin executable.
//
//   node scripts/bench-startup.mjs [--runs N] [--json] [--moto] [BIN]
//
// Times `BIN plugin_api_version` (default BIN: dist/gpbackup_s3_plugin) over
// N runs (default 21) after one discarded warm-up run, and prints the median,
// min and max wall time and the size of BIN. Needs nothing but Node.js.
//
// timeCommand() is exported so that other measurements (e.g. a small
// backup_data + restore_data pair) can reuse the same method.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { launchS3rver } from '../test/support/s3rver-launch.mjs';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_BIN = join(PROJECT_ROOT, 'dist/gpbackup_s3_plugin');

/**
 * Runs `bin args` `runs` times (after `warmup` discarded runs) and returns
 * wall-time statistics in milliseconds. Every run must exit 0 (or the code
 * given as `expectCode`) or this throws, so a broken binary is never timed.
 *
 * opts: runs (21), warmup (1), expectCode (0; null: any), env (default: { PATH }), cwd, input (stdin:
 * string or Buffer), before(i) / after(i, result): hooks run outside the
 * timed section (e.g. to create or remove objects between runs).
 */
export function timeCommand(bin, args, opts = {}) {
  const runs = opts.runs ?? 21;
  const warmup = opts.warmup ?? 1;
  const env = opts.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const samples = [];
  for (let i = -warmup; i < runs; i++) {
    opts.before?.(i);
    const t0 = process.hrtime.bigint();
    const r = spawnSync(bin, args, {
      env,
      cwd: opts.cwd,
      input: opts.input,
      maxBuffer: opts.maxBuffer ?? 1 << 30,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.error) throw r.error;
    if (opts.expectCode !== null && r.status !== (opts.expectCode ?? 0)) {
      throw new Error(`${bin} ${args.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr).slice(0, 2000)}`);
    }
    opts.after?.(i, r);
    if (i >= 0) samples.push(ms);
  }
  return stats(samples);
}

/** Median, min, max and mean of a list of timings (ms). */
export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { runs: s.length, median, min: s[0], max: s[s.length - 1], mean, samples };
}

export function formatStats(label, st) {
  const f = x => x.toFixed(1);
  return `${label}: median ${f(st.median)} ms, min ${f(st.min)} ms, max ${f(st.max)} ms (${st.runs} runs)`;
}

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer().once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/**
 * Starts s3rver (as the tests do) or, with `moto`, moto_server (where it is installed: the
 * server the Go figures were measured on) with one bucket; returns its port and a stop
 * function.
 */
async function startLocalS3(kind = 's3rver') {
  const dir = mkdtempSync(join(tmpdir(), 'bench-s3-'));
  let child;
  let port;
  if (kind === 'moto') {
    port = await freePort();
    child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      try {
        await fetch(`http://127.0.0.1:${port}/`);
        break;
      } catch (err) {
        if (i > 200) throw err;
        await new Promise(r => setTimeout(r, 100));
      }
    }
  } else {
    const launched = launchS3rver(dir);
    child = launched.child;
    port = await launched.port;
  }
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
  client.destroy();
  return {
    port,
    dir,
    stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A 1 KiB backup_data followed by its restore_data, as one timed pair (what one small table costs). */
async function timeSmallPair(bin, runs, kind) {
  const s3 = await startLocalS3(kind);
  try {
    const home = join(s3.dir, 'home');
    const cfg = join(s3.dir, 'bench.yaml');
    writeFileSync(
      cfg,
      `executablepath: ${bin}\noptions:\n  endpoint: 127.0.0.1:${s3.port}\n  encryption: "off"\n  bucket: bench\n  folder: startup\n  aws_access_key_id: S3RVER\n  aws_secret_access_key: S3RVER\n`,
    );
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
    const data = Buffer.alloc(1024, 7);
    const samples = [];
    for (let i = -1; i < runs; i++) {
      const path = `/data/gpseg0/backups/20240101/20240101000000/gpbackup_0_20240101000000_${16384 + i + 1}`;
      const t0 = process.hrtime.bigint();
      const up = spawnSync(bin, ['backup_data', cfg, path], { env, input: data });
      const down = spawnSync(bin, ['restore_data', cfg, path], { env, maxBuffer: 1 << 20 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (up.status !== 0 || down.status !== 0 || !Buffer.from(down.stdout).equals(data)) {
        throw new Error(`1 KiB round trip failed: ${String(up.stderr)}${String(down.stderr)}`);
      }
      if (i >= 0) samples.push(ms);
    }
    return stats(samples);
  } finally {
    s3.stop();
  }
}

async function main(argv) {
  let runs = 21;
  let json = false;
  let bin = DEFAULT_BIN;
  let moto = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--moto') moto = true;
    else if (a === '--json') json = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scripts/bench-startup.mjs [--runs N] [--json] [--moto] [BIN]');
      return;
    } else bin = resolve(a);
  }
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs needs a positive integer');
  let size;
  try {
    size = statSync(bin).size;
  } catch {
    throw new Error(`${bin} not found: build it first (npm run build)`);
  }
  const apiVersion = timeCommand(bin, ['plugin_api_version'], { runs });
  const pair = await timeSmallPair(bin, runs, 's3rver');
  const motoPair = moto ? await timeSmallPair(bin, runs, 'moto') : undefined;
  if (json) {
    console.log(JSON.stringify({ bin, sizeBytes: size, plugin_api_version: apiVersion, backup_restore_1KiB: pair, backup_restore_1KiB_moto: motoPair }));
    return;
  }
  console.log(`binary: ${bin}`);
  console.log(`size: ${size} bytes (${(size / 2 ** 20).toFixed(1)} MiB)`);
  console.log(formatStats('plugin_api_version', apiVersion));
  console.log(formatStats('1 KiB backup_data + restore_data (local s3rver)', pair));
  if (motoPair) console.log(formatStats('1 KiB backup_data + restore_data (local moto_server)', motoPair));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch(err => {
    console.error(err.message);
    process.exit(1);
  });
}
