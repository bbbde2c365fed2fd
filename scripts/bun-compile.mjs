// Turns the esbuild bundle into one ELF executable on the Bun runtime (`bun build --compile
// --bytecode`), for Linux x64 (the "baseline" build: no AVX2 needed, glibc 2.17, no libstdc++, so
// it runs on RHEL/CentOS 7 and on pre-2013 CPUs) or Linux aarch64.
//
// Why Bun and not a Node single executable: docs/performance.md (a third of Node's start-up time
// and half its memory; Node 24 needs glibc 2.28 and GLIBCXX_3.4.21, which RHEL 7 lacks).
//
// Steps (nothing is fetched; the same inputs give the same bytes):
//   1. copy the pinned runtime (npm package @oven/bun-linux-x64-baseline, or the aarch64 one that
//      scripts/arm64-runtime.mjs unpacks) and rename, inside it, the environment variables that
//      would let the environment run code or a debugger in the plugin (RENAMED_VARIABLES below);
//   2. compile the bundle onto that copy with every run-time autoload off (.env, bunfig.toml,
//      tsconfig.json, package.json of the working directory), with an empty environment;
//   3. check the result where it can run: a smoke command must print exactly what is expected,
//      also with every renamed variable set to something that would make Bun fail or run code.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/**
 * Environment variables the Bun runtime reads before any of the plugin's code runs, and that could
 * inject code or flags: BUN_OPTIONS (extra runtime flags, e.g. --preload=evil.js), BUN_BE_BUN (the
 * executable becomes the bun CLI and runs any script), BUN_INSPECT* (opens a debugger, runs a
 * preload for it). Bun has no flag to turn them off, so the build renames them inside the runtime:
 * each name's first byte becomes NUL, and a name that starts with NUL is in no environment (C's
 * getenv of it finds nothing, and no environ entry can hold a NUL). Other variables Bun reads at
 * run time are refused by the plugin itself when it starts (src/protocol/runtime-env.ts).
 */
export const RENAMED_VARIABLES = ['BUN_OPTIONS', 'BUN_BE_BUN', 'BUN_INSPECT', 'BUN_INSPECT_CONNECT_TO', 'BUN_INSPECT_PRELOAD'];

/** Builds for these targets; `runtime` is the pinned Bun binary of that architecture. */
export const TARGETS = {
  x64: { bunTarget: 'bun-linux-x64-baseline', pkg: '@oven/bun-linux-x64-baseline', elfMachine: 62 },
  arm64: { bunTarget: 'bun-linux-arm64', pkg: '@oven/bun-linux-aarch64', elfMachine: 183 },
};

/** The pinned x64 Bun that compiles (and is the runtime of the x64 executable). */
export function hostBun() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the executable is built on Linux x64 only (this is ${process.platform}-${process.arch})`);
  }
  const pkgDir = dirname(require.resolve(`${TARGETS.x64.pkg}/package.json`));
  const bin = join(pkgDir, 'bin/bun');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm ci`);
  return { bin, version: JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version };
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return r;
}

/**
 * Renames each of `names` where it appears in `buf` as a whole identifier (not followed by an
 * upper-case letter, digit or underscore, so BUN_INSPECT does not also hit BUN_INSPECT_PRELOAD
 * twice). Throws when a name is not found: a runtime upgrade that moved it must not go unnoticed.
 */
export function renameVariables(buf, names) {
  const isNameByte = b => (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x5f;
  for (const name of names) {
    const needle = Buffer.from(name);
    let hits = 0;
    for (let at = buf.indexOf(needle); at >= 0; at = buf.indexOf(needle, at + 1)) {
      if (isNameByte(buf[at + needle.length] ?? 0) || (at > 0 && isNameByte(buf[at - 1]))) continue;
      buf[at] = 0;
      hits++;
    }
    if (hits === 0) throw new Error(`${name} not found in the Bun runtime: check RENAMED_VARIABLES against this Bun version`);
  }
  return buf;
}

/** Env values that make an unpatched Bun misbehave visibly (fail, or print its own banner). */
export const HOSTILE_ENV = {
  BUN_OPTIONS: '--preload=/nonexistent-gpbackup-s3-plugin.js',
  BUN_BE_BUN: '1',
  BUN_INSPECT: 'ws://127.0.0.1:1/x',
  BUN_INSPECT_CONNECT_TO: 'unix:///nonexistent-gpbackup-s3-plugin.sock',
  BUN_INSPECT_PRELOAD: '/nonexistent-gpbackup-s3-plugin.js',
};

/**
 * Compiles `bundle` into `output` for `arch` ('x64' or 'arm64'), on the runtime binary `runtime`
 * (default: the pinned x64 one). `smoke` ({ args, stdout }) is run on x64 builds.
 */
export function compile({ bundle, output, arch = 'x64', runtime, buildDir, smoke }) {
  const target = TARGETS[arch];
  const host = hostBun();
  const base = runtime ?? host.bin;
  mkdirSync(buildDir, { recursive: true });
  const patched = join(buildDir, `bun-${arch}-runtime`);
  writeFileSync(patched, renameVariables(readFileSync(base), RENAMED_VARIABLES));
  chmodSync(patched, 0o755);
  // The bundle's path is recorded in the executable: give it relative to buildDir (the cwd).
  const main = join(buildDir, 'gpbackup_s3_plugin.cjs');
  copyFileSync(bundle, main);
  const tmp = join(buildDir, `gpbackup_s3_plugin-${arch}.tmp`);
  rmSync(tmp, { force: true });
  run(
    host.bin,
    [
      'build',
      '--compile',
      '--bytecode',
      '--format=cjs',
      `--target=${target.bunTarget}`,
      `--compile-executable-path=${patched}`,
      '--no-compile-autoload-dotenv',
      '--no-compile-autoload-bunfig',
      '--no-compile-autoload-tsconfig',
      '--no-compile-autoload-package-json',
      // Optional extras the dependencies require() inside try/catch (build.mjs OPTIONAL_EXTERNALS).
      '--external=kerberos',
      relative(buildDir, main),
      '--outfile',
      relative(buildDir, tmp),
    ],
    // An empty environment: no BUN_* variable, bunfig.toml or .env of the builder's changes the build.
    { cwd: buildDir, env: { PATH: '/usr/bin:/bin', HOME: buildDir } },
  );
  const head = readFileSync(tmp).subarray(0, 20);
  if (head.readUInt32BE(0) !== 0x7f454c46 || head.readUInt16LE(18) !== target.elfMachine) {
    throw new Error(`${tmp} is not an ELF executable for ${arch}`);
  }
  if (arch === 'x64' && smoke) checkExecutable(tmp, smoke);
  mkdirSync(dirname(output), { recursive: true });
  renameSync(tmp, output);
  chmodSync(output, 0o755);
  return { runtimeVersion: host.version, bunTarget: target.bunTarget };
}

/** `exe ...smoke.args` must print exactly smoke.stdout and nothing on stderr, also with HOSTILE_ENV. */
export function checkExecutable(exe, smoke) {
  for (const env of [{}, HOSTILE_ENV]) {
    const r = spawnSync(exe, smoke.args, { encoding: 'utf8', env, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.error) throw r.error;
    if (r.status !== 0 || r.stdout !== smoke.stdout || r.stderr !== '') {
      throw new Error(
        `${exe} ${smoke.args.join(' ')} (env ${JSON.stringify(env)}): exit ${r.status ?? r.signal}, ` +
          `stdout ${JSON.stringify(r.stdout)} (expected ${JSON.stringify(smoke.stdout)}), stderr ${JSON.stringify(r.stderr)}`,
      );
    }
  }
}

export { root };
