#!/usr/bin/env node
// The cost of client_side_encryption: scripts/bench-transfer.mjs run twice against s3rver, once
// with the plugin's defaults and once with client_side_encryption on (a raw 256-bit key file),
// and the difference of the plugin's CPU (user+sys, kernel accounting) per GiB, each way, with
// the peak RSS of both. Budget (issue 14): at most 0.5 CPU-s/GiB more each way.
//
//   node scripts/bench-encryption.mjs [--size-mib N] [--runs K]   (defaults: 1024, 3)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const sizeMiB = flag('--size-mib', '1024');
const runs = flag('--runs', '3');
const BUDGET = 0.5;

const dir = mkdtempSync(join(tmpdir(), 'bench-encryption-'));
try {
  const keyFile = join(dir, 'key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const bench = extra => {
    const r = spawnSync(process.execPath, [join(here, 'bench-transfer.mjs'), '--json', '--size-mib', sizeMiB, '--runs', runs, ...extra], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`bench-transfer.mjs ${extra.join(' ')} failed (exit ${r.status})`);
    return JSON.parse(r.stdout);
  };
  const plain = bench([]);
  const encrypted = bench(['--option', 'client_side_encryption=on', '--option', `encryption_key_file=${keyFile}`]);
  const rows = [
    ['backup_data', 'pluginBackup'],
    ['restore_data', 'pluginRestore'],
  ];
  console.log('client_side_encryption cost (medians of each run set)');
  console.log(`date:    ${encrypted.date}`);
  console.log(`machine: ${JSON.stringify(encrypted.machine)}`);
  console.log(`size:    ${sizeMiB} MiB x ${runs} runs, s3rver ${encrypted.server.version}`);
  console.log('');
  console.log('| command | plain CPU-s/GiB | encrypted CPU-s/GiB | added | plain MiB/s | encrypted MiB/s | plain peak RSS MiB | encrypted peak RSS MiB |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  let over = false;
  for (const [label, key] of rows) {
    const p = plain.median[key];
    const e = encrypted.median[key];
    const added = e.cpuSecPerGiB - p.cpuSecPerGiB;
    if (added > BUDGET) over = true;
    console.log(
      `| ${label} | ${p.cpuSecPerGiB.toFixed(2)} | ${e.cpuSecPerGiB.toFixed(2)} | ${added.toFixed(2)} | ${p.mibPerSec.toFixed(0)} | ${e.mibPerSec.toFixed(0)} | ${p.peakRssMiB.toFixed(0)} | ${e.peakRssMiB.toFixed(0)} |`,
    );
  }
  if (over) {
    console.log(`\nover budget: more than ${BUDGET} CPU-s/GiB added`);
    process.exitCode = 1;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
