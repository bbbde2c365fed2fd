#!/usr/bin/env node
// Start-up benchmark for the plugin executable.
//
//   node scripts/bench-startup.mjs [--runs N] [--json] [BIN]
//
// Times `BIN plugin_api_version` (default BIN: dist/gpbackup_s3_plugin) over
// N runs (default 21) after one discarded warm-up run, and prints the median,
// min and max wall time and the size of BIN. Needs nothing but Node.js.
//
// timeCommand() is exported so that other measurements (e.g. a small
// backup_data + restore_data pair) can reuse the same method.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

function main(argv) {
  let runs = 21;
  let json = false;
  let bin = DEFAULT_BIN;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--json') json = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scripts/bench-startup.mjs [--runs N] [--json] [BIN]');
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
  if (json) {
    const { samples, ...rest } = apiVersion;
    console.log(JSON.stringify({ bin, sizeBytes: size, plugin_api_version: { ...rest, samples } }));
    return;
  }
  console.log(`binary: ${bin}`);
  console.log(`size: ${size} bytes (${(size / 2 ** 20).toFixed(1)} MiB)`);
  console.log(formatStats('plugin_api_version', apiVersion));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
