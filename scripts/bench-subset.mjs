#!/usr/bin/env node
// restore_data_subset benchmark: a filtered restore of many small tables, as gprestore's
// --include-table of thousands of tables makes it. One object (default 100 MiB) on a local
// s3rver, an offsets file of (default) 10^6 ranges of 1-64 bytes with gaps of 0-64 bytes,
// and the plugin's restore_data_subset to a pipe read by this process.
//
//   node scripts/bench-subset.mjs [--size-mib N] [--ranges K] [--bin PATH] [--json]
//
// Measured: wall time from spawn to the end of the output and the peak resident set (VmHWM of
// /proc/<pid>/status, polled every 20 ms). The output is checked byte for byte (its length and
// SHA-256) against the bytes the ranges hold. Everything lives in one temporary directory,
// removed at the end.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { launchS3rver } from '../test/support/s3rver-launch.mjs';

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const SIZE = Number(opt('--size-mib', '100')) * 1024 * 1024;
const RANGES = Number(opt('--ranges', '1000000'));
const BIN = resolve(opt('--bin', join(PROJECT_ROOT, 'dist/gpbackup_s3_plugin')));
const JSON_OUT = args.includes('--json');
const BUCKET = 'bench-subset';
const TS = '20240101000000';

if (!existsSync(BIN)) {
  console.error(`${BIN} is missing: run make build first`);
  process.exit(1);
}

const root = mkdtempSync(join(os.tmpdir(), 'gpb-bench-subset-'));
let server;
const cleanup = () => {
  server?.child.kill('SIGTERM');
  rmSync(root, { recursive: true, force: true });
};
process.on('SIGINT', () => (cleanup(), process.exit(130)));
process.on('SIGTERM', () => (cleanup(), process.exit(143)));

try {
  server = launchS3rver(join(root, 's3rver'));
  const port = await server.port;
  const endpoint = `http://127.0.0.1:${port}`;
  // The SDK (here an independent client beside the plugin's own) would warn that it drops Node 20 in 2027.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  // A deterministic object: a linear congruential stream of bytes.
  const object = Buffer.alloc(SIZE);
  let x = 12345;
  for (let i = 0; i < SIZE; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    object.writeUInt32LE(x, i);
  }
  const key = `bench/backups/${TS.slice(0, 8)}/${TS}/gpbackup_0_${TS}_subset`;
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: object }));

  const words = [];
  const hash = createHash('sha256');
  let at = 0;
  let seed = 7;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16;
  let requested = 0;
  for (let i = 0; i < RANGES; i++) {
    at += next() % 65;
    const end = at + 1 + (next() % 64);
    if (end > SIZE) break;
    words.push(at, end);
    hash.update(object.subarray(at, end));
    requested += end - at;
    at = end;
  }
  const count = words.length / 2;
  const expected = hash.digest('hex');
  const offsets = join(root, 'offsets');
  writeFileSync(offsets, `${count} ${words.join(' ')}`);
  const home = join(root, 'home');
  mkdirSync(home);
  const config = join(root, 'config.yaml');
  writeFileSync(
    config,
    [
      `executablepath: ${BIN}`,
      'options:',
      `  endpoint: ${endpoint}`,
      '  encryption: "off"',
      `  bucket: ${BUCKET}`,
      '  folder: bench',
      '  aws_access_key_id: S3RVER',
      '  aws_secret_access_key: S3RVER',
      '',
    ].join('\n'),
  );

  const started = process.hrtime.bigint();
  const child = spawn(BIN, ['restore_data_subset', config, `/data/backups/${TS.slice(0, 8)}/${TS}/gpbackup_0_${TS}_subset`, offsets], {
    env: { PATH: process.env.PATH, HOME: home, USER: 'bench' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const outHash = createHash('sha256');
  let outBytes = 0;
  let stderr = '';
  child.stdout.on('data', d => {
    outHash.update(d);
    outBytes += d.length;
  });
  child.stderr.on('data', d => (stderr += d));
  let peakKb = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      // exited
    }
  }, 20);
  const code = await new Promise(r => child.on('close', r));
  clearInterval(poll);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`restore_data_subset exited ${code}: ${stderr}`);
  if (outBytes !== requested || outHash.digest('hex') !== expected) throw new Error('restore_data_subset wrote other bytes than the ranges hold');
  const result = { ranges: count, objectMiB: SIZE / 1048576, bytesWritten: outBytes, seconds: Number(seconds.toFixed(2)), peakRssMiB: Number((peakKb / 1024).toFixed(1)) };
  if (JSON_OUT) console.log(JSON.stringify(result));
  else {
    console.log(`restore_data_subset, ${count.toLocaleString('en')} ranges over a ${SIZE / 1048576} MiB object (${os.cpus().length} CPUs):`);
    console.log(`  ${result.seconds} s, peak RSS ${result.peakRssMiB} MiB, ${outBytes.toLocaleString('en')} bytes written, verified`);
  }
} finally {
  cleanup();
}

