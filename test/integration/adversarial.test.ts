/**
 * Inputs and events chosen to make the plugin report success that is not (issue 12): closed
 * stdin or stdout, a config or offsets "file" that is a device, a FIFO or stdin, a signal while
 * the server has stopped answering, multipart uploads orphaned by SIGKILL, secrets in URLs and
 * the environment, a million ranges for restore_data_subset, control characters, long file
 * names, unbalanced quotes and a HOME under /proc. Each must fail (or succeed) honestly:
 * non-zero exit with one line of our own on stderr, nothing written, nothing left behind.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { PluginEnv, PLUGIN_BIN, patternBytes, registerSecret, runProcess, secretsIn, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const BUCKET = 'gpbackup-adversarial';
const FOLDER = 'adv';
const TS = '20240703000000';

let s3: TestS3Server;
let env: PluginEnv;
let cfg: string;

function keyOf(file: string, ts = TS): string {
  return `${FOLDER}/backups/${ts.slice(0, 8)}/${ts}/${file}`;
}

function pluginEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: env.home, USER: 'gpadmin', ...extra };
}

/** The plugin run by a shell with `redirect` applied (e.g. `<&-`): what a caller's closed descriptor looks like. */
function runRedirected(args: string[], redirect: string, input?: Buffer): Promise<RunResult> {
  return runProcess('/bin/sh', ['-c', `exec "$@" ${redirect}`, 'sh', PLUGIN_BIN, ...args], { env: pluginEnv(), stdin: input });
}

function assertOneErrorLine(r: RunResult, pattern: RegExp, what: string): void {
  assert.notEqual(r.code, 0, `${what}: exit 0`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${what}: stderr is not one line: ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /-\[ERROR\]:-/, what);
  assert.match(lines[0]!, pattern, what);
  assert.doesNotMatch(r.stderr, /\n\s+at |node:internal|E[A-Z]+: /, `${what}: raw Node text or a stack trace`);
}

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER));
  await s3.putObject(BUCKET, keyOf('source'), patternBytes(3 * MiB, 4));
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

describe('closed stdin or stdout', () => {
  test('backup_data with stdin closed: refused, no object; with < /dev/null: an empty object', async () => {
    const closed = await runRedirected(['backup_data', cfg, env.backupPath(TS, 'closed-stdin')], '<&-');
    assertOneErrorLine(closed, /stdin was closed/, 'backup_data <&-');
    assert.equal(await s3.headObject(BUCKET, keyOf('closed-stdin')), undefined, 'an object was written');

    const empty = await runRedirected(['backup_data', cfg, env.backupPath(TS, 'dev-null')], '< /dev/null');
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal((await s3.headObject(BUCKET, keyOf('dev-null')))?.size, 0);
  });

  test('restore_data and restore_data_subset with stdout closed: refused before any GET; > /dev/null still restores', async () => {
    const offsets = env.writeFile('closed-offsets', '1 0 10');
    for (const args of [
      ['restore_data', cfg, env.backupPath(TS, 'source')],
      ['restore_data_subset', cfg, env.backupPath(TS, 'source'), offsets],
    ]) {
      const r = await runRedirected(args, '>&-');
      assertOneErrorLine(r, /stdout was closed/, `${args[0]} >&-`);
    }
    const ok = await runRedirected(['restore_data', cfg, env.backupPath(TS, 'source')], '> /dev/null');
    assert.equal(ok.code, 0, ok.stderr);
  });
});

describe('config and offsets files that are not regular files', () => {
  const dataPath = () => env.backupPath(TS, 'source');

  test('a config that is stdin is refused for backup_data, and no object is written', async () => {
    for (const config of ['/dev/stdin', '/proc/self/fd/0']) {
      const file = `stdin-config-${config.length}`;
      const r = await env.run(['backup_data', config, env.backupPath(TS, file)], { stdin: readFileSync(cfg) });
      assertOneErrorLine(r, /is stdin/, `backup_data ${config}`);
      assert.equal(await s3.headObject(BUCKET, keyOf(file)), undefined, `${config}: an object was written`);
    }
  });

  test('a device, a FIFO without a writer or a directory as config: a clear error within seconds, bounded memory', async () => {
    const fifo = env.path('config.fifo');
    spawnSync('mkfifo', [fifo]);
    for (const [config, kind] of [
      ['/dev/zero', /character device, not a regular file/],
      ['/dev/urandom', /character device/],
      [fifo, /FIFO/],
      [env.home, /it is a directory/],
    ] as const) {
      const started = Date.now();
      const r = await env.run(['restore_data', config, dataPath()], { timeoutMs: 10_000 });
      assert.equal(r.signal, null, `${config}: killed (a hang or a runaway read)`);
      assert.ok(Date.now() - started < 10_000);
      assertOneErrorLine(r, kind, `config ${config}`);
      assert.equal(r.stdout.length, 0);
    }
  });

  test('offsets files: device, FIFO, directory and missing file refused in our own words', async () => {
    const fifo = env.path('offsets.fifo');
    spawnSync('mkfifo', [fifo]);
    for (const [offsets, kind] of [
      ['/dev/zero', /offsets file \/dev\/zero: it is a character device/],
      [fifo, /offsets file .*offsets\.fifo: it is a FIFO/],
      [env.home, /offsets file .*: it is a directory/],
      ['/nonexistent-offsets', /cannot read offsets file \/nonexistent-offsets: no such file$/],
    ] as const) {
      const r = await env.run(['restore_data_subset', cfg, dataPath(), offsets], { timeoutMs: 10_000 });
      assert.equal(r.signal, null, `${offsets}: killed (a hang or a runaway read)`);
      assertOneErrorLine(r, kind, `offsets ${offsets}`);
      assert.equal(r.stdout.length, 0);
    }
  });
});

describe('small inputs', () => {
  test('control characters in folder or in a path are refused', async () => {
    const badFolder = env.writeConfig(testOptions(s3, BUCKET, 'adv\nother'), 'ctl-folder.yaml');
    const r1 = await env.run(['backup_data', badFolder, env.backupPath(TS, 'ctl')], { stdin: 'x' });
    assertOneErrorLine(r1, /option "folder".*control characters/, 'folder with a newline');
    const r2 = await env.run(['backup_data', cfg, env.backupPath(TS, 'a\nb')], { stdin: 'x' });
    assertOneErrorLine(r2, /control character \(0x0a\)/, 'path with a newline');
    const r3 = await env.run(['list_directory', cfg, 'backups\tx']);
    assertOneErrorLine(r3, /control character \(0x09\)/, 'list_directory path with a tab');
    assert.deepEqual((await s3.listKeys(BUCKET)).filter(k => /[\n\t]/.test(k)), []);
  });

  // s3rver keeps an object in files named <key's last component>._S3rver_metadata.json and more: 230 characters
  // is the longest name it can store (test/unit/files.test.ts has the 255-character case).
  test('restore_file of a 230-character file name', async () => {
    const name = `${'n'.repeat(226)}.dat`;
    const local = env.backupPath(TS, name, 'coordinator');
    env.writeFile(local.slice(env.root.length + 1), patternBytes(70_000, 9));
    const up = await env.run(['backup_file', cfg, local]);
    assert.equal(up.code, 0, up.stderr);
    writeFileSync(local, 'replaced');
    const down = await env.run(['restore_file', cfg, local]);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(readFileSync(local).equals(patternBytes(70_000, 9)));
  });

  test('a content ID with one quote is refused; bare and fully quoted are taken', async () => {
    const dir = env.path('coordinator/backups', TS.slice(0, 8), TS);
    for (const id of ['"3', '3"', '""3']) {
      const r = await env.run(['setup_plugin_for_restore', cfg, dir, 'segment', id]);
      assert.equal(r.code, 2, `content ID ${id}: ${r.stderr}`);
      assert.match(r.stderr, /content ID must be a number/);
    }
    for (const id of ['3', '"3"', '-1', '"-1"']) {
      const r = await env.run(['setup_plugin_for_restore', cfg, dir, 'segment', id]);
      assert.equal(r.code, 0, `content ID ${id}: ${r.stderr}`);
    }
  });

  test('a HOME under /proc neither hangs nor spins: the command ends within seconds', async () => {
    const started = Date.now();
    const r = await runProcess(PLUGIN_BIN, ['restore_data', cfg, env.backupPath(TS, 'source')], {
      env: pluginEnv({ HOME: '/proc/gpbackup-no-such-home' }),
      timeoutMs: 10_000,
    });
    assert.equal(r.signal, null, 'killed after 10 s: it hung');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(patternBytes(3 * MiB, 4)));
    assert.match(r.stderr, /cannot write log file \/proc\/gpbackup-no-such-home\/gpAdminLogs/);
    assert.ok(Date.now() - started < 10_000);
  });
});

describe('secrets from every source are masked', () => {
  test('a password in the endpoint URL and in http_proxy is shown nowhere', async () => {
    const secret = 'EndpointUserinfoSecret42';
    const proxySecret = 'ProxyUserinfoSecret42';
    // Refused by the config check (an endpoint takes no userinfo): the message shows the value.
    const withEndpoint = env.writeConfig(
      testOptions(s3, BUCKET, FOLDER, { endpoint: `http://AKIDEXAMPLE:${secret}@${new URL(s3.endpoint).host}` }),
      'userinfo-endpoint.yaml',
    );
    const r1 = await env.run(['list_directory', withEndpoint]);
    assertOneErrorLine(r1, /option "endpoint".*\*\*\*@/, 'endpoint with userinfo');
    // A proxy that refuses connections: its URL is in the error.
    const withProxy = env.writeConfig(
      testOptions(s3, BUCKET, FOLDER, { http_proxy: `http://user:${proxySecret}@127.0.0.1:1`, max_retries: '0' }),
      'userinfo-proxy.yaml',
    );
    const r2 = await env.run(['list_directory', withProxy], { timeoutMs: 20_000 });
    assert.notEqual(r2.code, 0);
    // writeConfig registered both passwords: the scan of every output covers them.
    assert.deepEqual(secretsIn(`x${secret}x ${proxySecret}`), ['endpoint userinfo password', 'http_proxy userinfo password']);
    // runProcess rejects on a leak on stderr; the log is searched by env.cleanup().
    assert.ok(!env.logText().includes(secret) && !env.logText().includes(proxySecret));
  });

  test('AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment are masked in messages', async () => {
    // The secret doubles as a bucket name, so the "no such bucket" message would show it.
    const secret = 'gpb-env-secret-0123456789';
    const token = 'gpb-env-token-0123456789';
    registerSecret(secret, 'AWS_SECRET_ACCESS_KEY');
    registerSecret(token, 'AWS_SESSION_TOKEN');
    for (const [bucket, name] of [[secret, 'AWS_SECRET_ACCESS_KEY'], [token, 'AWS_SESSION_TOKEN']]) {
      const opts = testOptions(s3, bucket!, FOLDER);
      const c = env.writeConfig(opts, `env-secret-${name}.yaml`);
      const r = await runProcess(PLUGIN_BIN, ['list_directory', c], { env: pluginEnv({ [name!]: bucket! }) });
      assertOneErrorLine(r, /bucket "\*\*\*" does not exist/, `${name} as bucket`);
    }
  });
});

describe('orphaned multipart uploads', () => {
  /** Starts backup_data, feeds it more than a part, waits for the upload to be begun, and kills it with SIGKILL. */
  async function killMidUpload(file: string, ts: string, config = cfg): Promise<void> {
    const child = spawn(PLUGIN_BIN, ['backup_data', config, env.backupPath(ts, file)], { env: pluginEnv(), stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.on('error', () => {});
    child.stdin.write(patternBytes(PART + MiB, 3));
    const exited = new Promise(resolve => child.on('exit', resolve));
    const deadline = Date.now() + 30_000;
    while (!(await s3.listMultipartUploads(BUCKET)).includes(keyOf(file, ts))) {
      if (Date.now() > deadline) throw new Error('no multipart upload was begun');
      await new Promise(r => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    await exited;
    assert.ok((await s3.listMultipartUploads(BUCKET)).includes(keyOf(file, ts)), 'SIGKILL left no upload: nothing to test');
  }

  test('SIGKILL mid-upload, then delete_backup of that timestamp: the upload is gone, and the log names it', async () => {
    const ts = '20240703010101';
    const other = '20240703020202';
    await killMidUpload('killed', ts);
    await killMidUpload('other-backup', other);
    const r = await env.run(['delete_backup', cfg, ts]);
    assert.equal(r.code, 0, r.stderr);
    const uploads = await s3.listMultipartUploads(BUCKET);
    assert.ok(!uploads.includes(keyOf('killed', ts)), 'the orphaned upload is still there');
    assert.ok(uploads.includes(keyOf('other-backup', other)), "another backup's upload was aborted");
    assert.match(env.logText(), new RegExp(`delete_backup ${ts}: aborted unfinished multipart upload \\S+ of s3://${BUCKET}/${keyOf('killed', ts)}`));
    assert.equal((await env.run(['delete_backup', cfg, other])).code, 0);
    assert.ok(!(await s3.listMultipartUploads(BUCKET)).includes(keyOf('other-backup', other)));
  });

  test("the coordinator's cleanup_plugin_for_backup aborts the uploads of the backup just made", async () => {
    const ts = '20240703030303';
    await killMidUpload('killed-before-cleanup', ts);
    const dir = env.path('coordinator/backups', ts.slice(0, 8), ts);
    const segment = await env.run(['cleanup_plugin_for_backup', cfg, dir, 'segment_host']);
    assert.equal(segment.code, 0, segment.stderr);
    assert.ok((await s3.listMultipartUploads(BUCKET)).includes(keyOf('killed-before-cleanup', ts)), 'a segment host aborted uploads');
    const r = await env.run(['cleanup_plugin_for_backup', cfg, dir, 'coordinator', '"-1"']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!(await s3.listMultipartUploads(BUCKET)).includes(keyOf('killed-before-cleanup', ts)), 'the upload is still there');
    assert.match(env.logText(), /cleanup_plugin_for_backup: aborted unfinished multipart upload \S+ of s3:\/\/.*killed-before-cleanup/);
  });
});

describe('a signal while the server has stopped answering', () => {
  let proxy: FaultProxy;
  before(async () => {
    proxy = await startFaultProxy({ target: s3.endpoint, stallMs: 120_000 });
  });
  after(async () => {
    await proxy?.stop();
  });

  test('SIGTERM: exit within 5 s at the default request_timeout, and the log names the upload left behind', async () => {
    const config = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: proxy.endpoint }), 'stalling.yaml');
    const file = 'stalled';
    const child = spawn(PLUGIN_BIN, ['backup_data', config, env.backupPath(TS, file)], { env: pluginEnv(), stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => {});
    const exited = new Promise<{ code: number | null; signal: string | null; at: number }>(resolve =>
      child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
    );
    child.stdin.write(patternBytes(PART + MiB, 8));
    const deadline = Date.now() + 30_000;
    while (!proxy.requests.some(r => r.method === 'PUT' && r.query.get('partNumber') === '1' && r.status === 200)) {
      if (Date.now() > deadline) throw new Error('part 1 was not uploaded');
      await new Promise(r => setTimeout(r, 20));
    }
    // From now on the server answers nothing, the abort included.
    proxy.setOptions({ faultRate: 1, faults: ['stall'] });
    const sent = Date.now();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const exit = await exited;
    clearTimeout(timer);
    child.stdin.destroy();
    assert.equal(exit.signal, null, 'killed: it did not end by itself');
    assert.notEqual(exit.code, 0);
    assert.ok(exit.at - sent < 5_000, `exit took ${exit.at - sent} ms`);
    assert.match(stderr, /SIGTERM/);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    const uploadId = proxy.requests.find(r => r.method === 'PUT' && r.query.get('partNumber') === '1')!.query.get('uploadId')!;
    assert.match(env.logText(), new RegExp(`multipart upload ${uploadId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} of s3://${BUCKET}/${keyOf(file)} is left behind`));
    proxy.setOptions({ faultRate: 0 });
    // What delete_backup is there for.
    assert.equal((await env.run(['delete_backup', cfg, TS])).code, 0);
    assert.ok(!(await s3.listMultipartUploads(BUCKET)).includes(keyOf(file)));
  });

  test('SIGTERM while the server answers: the upload is aborted, and the log says so', async () => {
    proxy.setOptions({ faultRate: 0 });
    const config = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: proxy.endpoint }), 'answering.yaml');
    const file = 'aborted';
    const child = spawn(PLUGIN_BIN, ['backup_data', config, env.backupPath(TS, file)], { env: pluginEnv(), stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.on('error', () => {});
    const exited = new Promise(resolve => child.on('exit', resolve));
    child.stdin.write(patternBytes(PART + MiB, 8));
    const deadline = Date.now() + 30_000;
    while (!(await s3.listMultipartUploads(BUCKET)).includes(keyOf(file))) {
      if (Date.now() > deadline) throw new Error('no upload');
      await new Promise(r => setTimeout(r, 20));
    }
    child.kill('SIGTERM');
    assert.notEqual(await exited, 0);
    child.stdin.destroy();
    assert.ok(!(await s3.listMultipartUploads(BUCKET)).includes(keyOf(file)));
    assert.match(env.logText(), new RegExp(`multipart upload \\S+ of s3://${BUCKET}/${keyOf(file)} aborted`));
  });
});

describe('restore_data_subset of a million ranges', () => {
  test('10^6 small ranges over a 100 MiB object: the right bytes, in seconds, with bounded memory', async () => {
    const size = 100 * MiB;
    const object = patternBytes(size, 6);
    await s3.putObject(BUCKET, keyOf('big'), object);
    const words: number[] = [];
    let at = 0;
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 1_000_000; i++) {
      at += next() % 65;
      const end = at + 1 + (next() % 64);
      words.push(at, end);
      at = end;
    }
    assert.ok(at <= size);
    const offsets = env.writeFile('million-offsets', `${words.length / 2} ${words.join(' ')}`);
    const child = spawn(PLUGIN_BIN, ['restore_data_subset', cfg, env.backupPath(TS, 'big'), offsets], {
      env: pluginEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // The peak resident set, from the kernel's own record (VmHWM), read while it runs.
    let peakKb = 0;
    const poll = setInterval(() => {
      try {
        const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
        if (hwm) peakKb = Math.max(peakKb, Number(hwm));
      } catch {
        // exited
      }
    }, 25);
    const started = Date.now();
    // One GET per range (as before issue 12) would take an hour and more.
    const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>(resolve => child.on('close', resolve));
    const took = Date.now() - started;
    clearTimeout(kill);
    clearInterval(poll);
    assert.equal(code, 0, stderr);
    const result = Buffer.concat(out);
    let o = 0;
    for (let i = 0; i < words.length; i += 2) {
      const [s, e] = [words[i]!, words[i + 1]!];
      if (object.compare(result, o, o + e - s, s, e) !== 0) assert.fail(`range ${s}-${e} differs`);
      o += e - s;
    }
    assert.equal(result.length, o);
    assert.ok(took < 30_000, `took ${took} ms`);
    // The runtime, the parsed ranges and (concurrency + 1) parts of 5 MiB: far below the 431 MB of one GET per range.
    assert.ok(peakKb < 300 * 1024, `peak RSS ${peakKb} kB`);
    assert.ok(existsSync(join(env.home, 'gpAdminLogs')));
    assert.match(env.logText(), /Downloaded \d+ bytes for file \S+ in \S+ \(1000000 range\(s\) of /);
  });
});
