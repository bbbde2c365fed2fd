/**
 * The built dist/gpbackup_s3_plugin as a deliverable: one ELF file that runs
 * with an empty environment, from a directory with nothing beside it, and
 * that the environment of the postgres server it runs in cannot reconfigure:
 * NODE_OPTIONS (--require, --import, --inspect, heap limits...) is ignored,
 * and runtime flags on the command line are plain arguments of the plugin.
 * Its runtime is Bun (scripts/bun-compile.mjs): BUN_OPTIONS, BUN_BE_BUN and
 * BUN_INSPECT* are ignored (renamed inside the runtime), bunfig.toml, .env*,
 * tsconfig.json and package.json of the working directory are not read
 * (autoloads off), and the other variables Bun reads at start refuse the start.
 *
 * Every run copies the executable into an empty directory first, so nothing
 * (no node_modules, no bundle) can be found beside it, and runs it from
 * another empty directory with PATH as its only variable.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { PLUGIN_BIN, PROJECT_ROOT, PluginEnv, patternBytes, runProcess, type RunResult } from '../support/plugin.js';
import { startS3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, type TestS3Server } from '../support/s3server.js';

const VERSION: string = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).version;
/** The runtime the executable is made of, unpatched, to show the preload files do work on a plain Bun. */
const RUNTIME = join(PROJECT_ROOT, 'node_modules/@oven/bun-linux-x64-baseline/bin/bun');
const CLEAN_ENV = { PATH: '/usr/bin:/bin' };

let root: string;
let bin: string; // the copy under test
let cwd: string; // an empty working directory
let marker: string; // written by the preload scripts if they ever run
let preloadCjs: string;
let preloadMjs: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'gpb-s3-exe-'));
  mkdirSync(join(root, 'bin'));
  bin = join(root, 'bin', 'gpbackup_s3_plugin');
  copyFileSync(PLUGIN_BIN, bin);
  chmodSync(bin, 0o755);
  cwd = join(root, 'cwd');
  mkdirSync(cwd);
  marker = join(root, 'PRELOAD-RAN');
  const body = `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x'); process.stderr.write('PRELOAD RAN\\n');\n`;
  preloadCjs = join(root, 'preload.cjs');
  writeFileSync(preloadCjs, body);
  preloadMjs = join(root, 'preload.mjs');
  writeFileSync(preloadMjs, `import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n${body}`);
});

after(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Runs the copy under test; the preload marker is cleared first, so each run is judged alone. */
function run(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  rmSync(marker, { force: true });
  return runProcess(bin, args, { env: { ...CLEAN_ENV, ...env }, cwd, timeoutMs: 20_000 });
}

function assertApiVersion(r: RunResult): void {
  assert.equal(r.stderr, '');
  assert.equal(r.stdout.toString(), '0.5.0\n');
  assert.equal(r.code, 0);
  assert.equal(existsSync(marker), false, 'a preload script ran inside the plugin');
}

describe('the file', () => {
  test('is one ELF executable, not a script', () => {
    const head = Buffer.alloc(4);
    const fd = openSync(PLUGIN_BIN, 'r');
    try {
      readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(head, Buffer.from([0x7f, 0x45, 0x4c, 0x46]), 'does not start with \\x7fELF');
    assert.equal(existsSync(`${PLUGIN_BIN}.cjs`), false, 'a bundle lies beside the executable');
  });
});

describe('with an empty environment, alone in its directory', () => {
  test('plugin_api_version prints exactly 0.5.0 and nothing on stderr', async () => {
    assertApiVersion(await run(['plugin_api_version']));
  });

  test('--version prints the package version', async () => {
    const r = await run(['--version']);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout.toString(), `gpbackup_s3_plugin version ${VERSION}\n`);
    assert.equal(r.code, 0);
  });

  test('the first argument is the command and the rest are its arguments', async () => {
    // If the executable's own path were not argv[1], slice(2) would drop the command.
    const r = await run(['plugin_api_version', 'extra']);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /plugin_api_version takes no arguments, got 1/);
  });
});

describe('the environment cannot reconfigure the runtime', () => {
  test('control: the preload script does run on a plain Bun via BUN_OPTIONS, bunfig.toml and .env', { skip: !existsSync(RUNTIME) }, async () => {
    const probe = join(root, 'probe.js');
    writeFileSync(probe, `process.stdout.write(String(process.env.GPB_DOTENV_PROBE));\n`);
    const dir = mkdtempSync(join(root, 'control-'));
    const plain = (env: Record<string, string>) => runProcess(RUNTIME, [probe], { env: { ...CLEAN_ENV, ...env }, cwd: dir });
    rmSync(marker, { force: true });
    let r = await plain({ BUN_OPTIONS: `--preload=${preloadCjs}` });
    assert.equal(existsSync(marker), true, `BUN_OPTIONS did not run the preload on plain Bun: ${r.stderr}`);
    rmSync(marker, { force: true });
    writeFileSync(join(dir, 'bunfig.toml'), `preload = [${JSON.stringify(preloadCjs)}]\n`);
    r = await plain({});
    assert.equal(existsSync(marker), true, `bunfig.toml did not run the preload on plain Bun: ${r.stderr}`);
    rmSync(join(dir, 'bunfig.toml'));
    writeFileSync(join(dir, '.env'), 'GPB_DOTENV_PROBE=loaded\n');
    r = await plain({});
    assert.equal(r.stdout.toString(), 'loaded', '.env was not loaded by plain Bun');
    rmSync(marker, { force: true });
  });

  test('Bun variables that would run code or a debugger are ignored', async () => {
    const envs: Array<Record<string, string>> = [
      { BUN_OPTIONS: `--preload=${preloadCjs}` },
      { BUN_OPTIONS: `--preload ${preloadCjs} --inspect-brk=127.0.0.1:0` },
      { BUN_OPTIONS: '--no-such-flag' },
      { BUN_BE_BUN: '1' },
      { BUN_INSPECT: 'ws://127.0.0.1:1/gpbackup' },
      { BUN_INSPECT_CONNECT_TO: `unix://${join(root, 'no-such.sock')}` },
      { BUN_INSPECT_PRELOAD: preloadCjs },
    ];
    for (const env of envs) {
      await test(JSON.stringify(env), async () => {
        assertApiVersion(await run(['plugin_api_version'], env));
      });
    }
  });

  test('named bun, the executable is still the plugin', async () => {
    const asBun = join(root, 'bin', 'bun');
    rmSync(asBun, { force: true });
    copyFileSync(bin, asBun);
    chmodSync(asBun, 0o755);
    const r = await runProcess(asBun, ['plugin_api_version'], { env: { ...CLEAN_ENV, BUN_BE_BUN: '1' }, cwd });
    assertApiVersion(r);
    const e = await runProcess(asBun, ['-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`], { env: CLEAN_ENV, cwd });
    assert.notEqual(e.code, 0);
    assert.match(e.stderr, /unknown command "-e"/);
    assert.equal(existsSync(marker), false);
  });

  test('bunfig.toml, .env files, tsconfig.json and package.json in the working directory or HOME are not read', async () => {
    const dir = mkdtempSync(join(root, 'hostile-cwd-'));
    const home = mkdtempSync(join(root, 'hostile-home-'));
    const bunfig = `preload = [${JSON.stringify(preloadCjs)}]\n[run]\nbun = true\n`;
    writeFileSync(join(dir, 'bunfig.toml'), bunfig);
    writeFileSync(join(home, '.bunfig.toml'), bunfig);
    // Were any .env file loaded, its BUN_ variable would make the plugin refuse to start.
    for (const f of ['.env', '.env.local', '.env.production', '.env.development', '.env.test']) {
      writeFileSync(join(dir, f), 'BUN_CONFIG_VERBOSE_FETCH=curl\nNODE_OPTIONS=--require ' + preloadCjs + '\n');
    }
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { jsx: 'react', paths: { 'node:fs': [preloadCjs] } } }));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', imports: { '#x': preloadCjs } }));
    rmSync(marker, { force: true });
    const r = await runProcess(bin, ['plugin_api_version'], { env: { ...CLEAN_ENV, HOME: home, XDG_CONFIG_HOME: home }, cwd: dir });
    assertApiVersion(r);
  });

  test('other variables the runtime reads at start: it refuses to start, naming them', async () => {
    const envs: Array<Record<string, string>> = [
      { BUN_JSC_useJIT: '0' },
      { JSC_useJIT: '0' },
      { BUN_GARBAGE_COLLECTOR_LEVEL: '2' },
      { BUN_CONFIG_VERBOSE_FETCH: 'curl' },
      { BUN_FEATURE_FLAG_DISABLE_IO_POOL: '1' },
      { NODE_CHANNEL_FD: '3' },
    ];
    for (const env of envs) {
      const [name] = Object.keys(env);
      await test(name, async () => {
        const r = await run(['plugin_api_version'], env);
        assert.equal(r.code, 1);
        assert.equal(r.stdout.length, 0);
        assert.match(r.stderr, new RegExp(`^\\S.*\\[ERROR\\]:-refusing to start: ${name} is set, .*unset it`));
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      });
    }
    // The installer's variables are not the runtime's: a gpadmin with Bun installed is not refused.
    assertApiVersion(await run(['plugin_api_version'], { BUN_INSTALL: join(root, '.bun') }));
  });

  const cases = () => [
    `--require ${preloadCjs}`,
    `--import ${pathToFileURL(preloadMjs).href}`,
    '--inspect=127.0.0.1:0',
    '--inspect-brk=127.0.0.1:0',
    '--max-old-space-size=1',
    '--stack-size=1',
    '--no-such-flag',
  ];
  test('NODE_OPTIONS is ignored: no preload runs and the output is unchanged', async () => {
    for (const opt of cases()) {
      await test(opt, async () => {
        assertApiVersion(await run(['plugin_api_version'], { NODE_OPTIONS: opt }));
      });
    }
  });

  test('Node and Bun flags on the command line are arguments of the plugin, not of the runtime', async () => {
    for (const args of [
      ['--require', preloadCjs, 'plugin_api_version'],
      [`--preload=${preloadCjs}`, 'plugin_api_version'],
      ['run', preloadCjs],
      ['-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`],
      [`--node-options=--require ${preloadCjs}`, 'plugin_api_version'],
      ['--inspect-brk=127.0.0.1:0', 'plugin_api_version'],
    ]) {
      const r = await run(args);
      assert.notEqual(r.code, 0, `${args.join(' ')} was accepted`);
      assert.match(r.stderr, /unknown command/);
      assert.doesNotMatch(r.stderr, /PRELOAD RAN|Debugger/);
      assert.equal(existsSync(marker), false);
    }
  });

  test('NODE_PATH and the usual Node variables leave plugin_api_version unchanged', async () => {
    assertApiVersion(
      await run(['plugin_api_version'], {
        NODE_PATH: root,
        NODE_DEBUG: 'module,fs,net,http,tls',
        NODE_PENDING_DEPRECATION: '1',
        NODE_NO_WARNINGS: '0',
        NODE_EXTRA_CA_CERTS: join(root, 'no-such-ca.pem'),
      }),
    );
  });
});

describe('start-up cost', () => {
  // The executable's main script is this bundle. Bun keeps no list of the modules it loaded, so
  // the bundle runs under this test's Node, where a --require hook can list the built-in modules
  // it loads (the same static imports, whatever the runtime).
  const bundle = join(PROJECT_ROOT, 'build/gpbackup_s3_plugin.cjs');
  test(
    'plugin_api_version and --version do not load the AWS SDK (no http, https, http2, crypto)',
    { skip: !existsSync(bundle) },
    async () => {
      const hook = join(root, 'list-builtins.cjs');
      const out = join(root, 'builtins.json');
      writeFileSync(
        hook,
        `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(` +
          `process.moduleLoadList.filter(m => m.startsWith('NativeModule ')).map(m => m.slice(13)))));\n`,
      );
      for (const args of [['plugin_api_version'], ['--version']]) {
        rmSync(out, { force: true });
        const r = await runProcess(process.execPath, ['--require', hook, bundle, ...args], { env: CLEAN_ENV, cwd });
        assert.equal(r.code, 0, r.stderr);
        const loaded: string[] = JSON.parse(readFileSync(out, 'utf8'));
        const sdkOnly = loaded.filter(m => ['http', 'https', 'http2', 'crypto'].includes(m));
        assert.deepEqual(sdkOnly, [], `${args[0]} loaded ${sdkOnly.join(', ')}: a static import reaches the S3 code`);
      }
    },
  );
});

describe('against S3 (the AWS SDK loaded inside the executable)', () => {
  let s3: TestS3Server;
  let env: PluginEnv;
  let cfg: string;

  before(async () => {
    s3 = await startS3Server();
    await s3.createBucket('exe-test');
    env = new PluginEnv(bin);
    cfg = env.writeConfig({
      aws_access_key_id: TEST_ACCESS_KEY,
      aws_secret_access_key: TEST_SECRET_KEY,
      bucket: 'exe-test',
      endpoint: s3.endpoint,
      encryption: 'off',
      folder: 'exe',
    });
  });

  after(async () => {
    await s3?.stop();
    env?.cleanup();
  });

  test('backup_data + restore_data of 1 KiB: no warning on stderr, NODE_OPTIONS ignored', async () => {
    const data = patternBytes(1024, 7);
    const path = env.backupPath('20240102030405', 'gpbackup_0_20240102030405_1.gz');
    const vars = { HOME: env.home, NODE_OPTIONS: `--require ${preloadCjs}` };
    rmSync(marker, { force: true });
    const up = await runProcess(bin, ['backup_data', cfg, path], { env: { ...CLEAN_ENV, ...vars }, cwd, stdin: data });
    assert.equal(up.stderr, '', 'backup_data wrote to stderr (an SDK or runtime warning?)');
    assert.equal(up.code, 0);
    const down = await runProcess(bin, ['restore_data', cfg, path], { env: { ...CLEAN_ENV, ...vars }, cwd });
    assert.equal(down.stderr, '', 'restore_data wrote to stderr (an SDK or runtime warning?)');
    assert.equal(down.code, 0);
    assert.deepEqual(down.stdout, data);
    assert.equal(existsSync(marker), false);
    assert.doesNotMatch(env.logText(), /NodeVersionSupport|deprecat|no longer support/i);
  });
});
