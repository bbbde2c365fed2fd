/**
 * The built executables run where Greenplum runs: RHEL/CentOS 7 x86_64 (glibc 2.17, GCC 4.8's
 * libstdc++ with GLIBCXX_3.4.19) and Linux aarch64.
 *
 * 1. `objdump -T` (binutils) of dist/gpbackup_s3_plugin and dist/arm64/gpbackup_s3_plugin: no symbol
 *    version above GLIBC_2.17 and, if libstdc++ is linked at all, none above GLIBCXX_3.4.19.
 * 2. dist/arm64/gpbackup_s3_plugin under qemu-user (Debian's qemu-user-static, with libc6:arm64
 *    from multiarch; `make test` installs both as root, scripts/system-packages.sh): plugin_api_version, then a multipart backup_data from
 *    a pipe and its restore_data against the local S3 server, bytes compared.
 * Where a tool is missing these skip with the reason, except under CI=true, where they fail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PLUGIN_BIN, PROJECT_ROOT, PluginEnv, patternBytes, runProcess } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const ARM64_BIN = process.env.PLUGIN_ARM64_BIN ?? join(PROJECT_ROOT, 'dist/arm64/gpbackup_s3_plugin');
const CI = process.env.CI === 'true';
const MAX = { GLIBC: [2, 17], GLIBCXX: [3, 4, 19] } as const;

function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** Undefined when the test can run; else why not (a failure under CI). */
function missing(what: Array<[boolean, string]>): string | undefined {
  const why = what.filter(([ok]) => !ok).map(([, msg]) => msg);
  if (why.length === 0) return undefined;
  if (CI) throw new Error(`CI=true and ${why.join('; ')}`);
  return why.join('; ');
}

const newer = (a: number[], b: readonly number[]) => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return false;
};

/** Every GLIBC_x and GLIBCXX_x version the file's dynamic symbols need, and its NEEDED libraries. */
function linkage(file: string): { versions: Map<string, string[]>; needed: string[] } {
  const syms = spawnSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(syms.status, 0, syms.stderr);
  const versions = new Map<string, string[]>();
  for (const m of syms.stdout.matchAll(/\b(GLIBC|GLIBCXX)_(\d+(?:\.\d+)*)\b/g)) {
    const list = versions.get(m[1]) ?? [];
    if (!list.includes(m[2])) list.push(m[2]);
    versions.set(m[1], list);
  }
  const dyn = spawnSync('objdump', ['-p', file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const needed = [...dyn.stdout.matchAll(/NEEDED\s+(\S+)/g)].map(m => m[1]);
  return { versions, needed };
}

describe('glibc and libstdc++ the executables need (objdump -T)', () => {
  const skip = missing([[has('objdump', ['--version']), 'objdump is not installed (apt-get install binutils)']]);
  for (const [name, file] of [
    ['x86_64', PLUGIN_BIN],
    ['aarch64', ARM64_BIN],
  ]) {
    test(`${name}: at most GLIBC_2.17, and at most GLIBCXX_3.4.19 if libstdc++ is linked`, { skip: skip ?? (!existsSync(file) && !CI ? `${file} is not built (make dist-arm64)` : undefined) }, () => {
      const { versions, needed } = linkage(file);
      const glibc = versions.get('GLIBC') ?? [];
      assert.ok(glibc.length > 0, 'no GLIBC symbol versions found: not a glibc executable?');
      const tooNew = glibc.filter(v => newer(v.split('.').map(Number), MAX.GLIBC));
      assert.deepEqual(tooNew, [], `needs GLIBC_${tooNew.join(', GLIBC_')} (RHEL 7 has 2.17)`);
      const cxx = versions.get('GLIBCXX') ?? [];
      const cxxTooNew = cxx.filter(v => newer(v.split('.').map(Number), MAX.GLIBCXX));
      assert.deepEqual(cxxTooNew, [], `needs GLIBCXX_${cxxTooNew.join(', GLIBCXX_')} (RHEL 7 has 3.4.19)`);
      if (cxx.length === 0) assert.ok(!needed.some(l => l.startsWith('libstdc++')), 'links libstdc++ without versioned symbols?');
    });
  }
});

describe('the aarch64 executable under qemu-user', () => {
  const QEMU = 'qemu-aarch64-static';
  const skip = missing([
    [existsSync(ARM64_BIN), `${ARM64_BIN} is not built (make dist-arm64)`],
    [has(QEMU, ['--version']), `${QEMU} is not installed (as root: bash scripts/system-packages.sh)`],
    [existsSync('/lib/ld-linux-aarch64.so.1'), 'the arm64 C library is not installed (as root: bash scripts/system-packages.sh)'],
  ]);
  let s3: TestS3Server;
  let env: PluginEnv;
  let cfg: string;
  const run = (args: string[], stdin?: Buffer) =>
    runProcess(QEMU, [ARM64_BIN, ...args], { env: { PATH: '/usr/bin:/bin', HOME: env.home }, stdin, timeoutMs: 120_000 });

  before(async () => {
    if (skip) return;
    s3 = await startS3Server();
    await s3.createBucket('arm64');
    env = new PluginEnv(ARM64_BIN);
    cfg = env.writeConfig(testOptions(s3, 'arm64', 'qemu'));
  });
  after(async () => {
    await s3?.stop();
    env?.cleanup();
  });

  test('plugin_api_version prints 0.5.0', { skip }, async () => {
    const r = await run(['plugin_api_version']);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout.toString(), '0.5.0\n');
    assert.equal(r.code, 0);
  });

  test('backup_data from a pipe (3 parts) and restore_data round-trip the bytes', { skip }, async () => {
    const data = patternBytes(11 * 1024 * 1024 + 7, 64);
    const path = env.backupPath('20250102030405', 'gpbackup_0_20250102030405_17.gz');
    const up = await run(['backup_data', cfg, path], data);
    assert.equal(up.stderr, '');
    assert.equal(up.code, 0);
    const keys = await s3.listKeys('arm64', 'qemu/');
    assert.deepEqual(keys, ['qemu/backups/20250102/20250102030405/gpbackup_0_20250102030405_17.gz']);
    const down = await run(['restore_data', cfg, path]);
    assert.equal(down.stderr, '');
    assert.equal(down.code, 0);
    assert.ok(down.stdout.equals(data), `restored ${down.stdout.length} bytes, not the ${data.length} backed up`);
  });
});
