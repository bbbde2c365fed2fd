/**
 * Interruptions in the middle of a transfer, as gpbackup and gprestore cause
 * them when they cancel: a signal to the plugin, the reader of restore_data
 * going away, the process feeding backup_data dying. Each ends the plugin
 * promptly with a non-zero exit, and a backup cut short leaves nothing in the
 * bucket: no object, no unfinished multipart upload.
 *
 * The plugin reaches the server through the fault proxy (with no faults), so
 * the test can see which requests it made and when.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { PluginEnv, PLUGIN_BIN, patternBytes } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const BUCKET = 'gpbackup-signals';
const FOLDER = 'signals';
const TS = '20240601000000';
/** How long the plugin may take to end after it is told to. */
const PROMPT_MS = 5_000;
/** A restore long enough (12 ranged GETs) to be cut in the middle. */
const RESTORE_SIZE = 60 * MiB;

let s3: TestS3Server;
let proxy: FaultProxy;
let env: PluginEnv;
let cfg: string;

function keyOf(file: string): string {
  return `${FOLDER}/backups/${TS.slice(0, 8)}/${TS}/${file}`;
}

function pathOf(file: string): string {
  return `/${BUCKET}/${keyOf(file)}`;
}

function pluginEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: env.home, USER: 'gpadmin' };
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

interface Running {
  child: ChildProcess;
  stderr: () => string;
  /** On the process's exit, not on its pipes' closing: a reader that stopped reading must not delay it. */
  exited: Promise<Exit>;
  /** All of stderr has been read. */
  stderrClosed: Promise<void>;
}

function startPlugin(args: string[]): Running {
  const child = spawn(PLUGIN_BIN, args, { env: pluginEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.on('error', () => {});
  const exited = new Promise<Exit>(resolve => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  const stderrClosed = new Promise<void>(resolve => child.stderr!.on('close', () => resolve()));
  return { child, stderr: () => stderr, exited, stderrClosed };
}

/** The exit, or a failure (and a SIGKILL) if it does not come within `ms`. */
async function exitWithin(run: Running, ms: number, what: string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(new Error(`${what}: still running ${ms} ms later`));
    }, ms);
  });
  try {
    return await Promise.race([run.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/** Part 1 of the file's multipart upload went through: the upload is in progress. */
function firstPartUploaded(file: string): boolean {
  return proxy.requests.some(r => r.path === pathOf(file) && r.method === 'PUT' && r.query.get('partNumber') === '1' && r.status === 200);
}

function assertOneLine(stderr: string, what: string): void {
  assert.equal(stderr.trim().split('\n').length, 1, `${what}: stderr is not one line: ${JSON.stringify(stderr)}`);
  assert.notEqual(stderr.trim(), '', `${what}: nothing on stderr`);
  assert.doesNotMatch(stderr, /\n\s+at |node:internal/, `${what}: stack trace`);
}

async function assertNothingLeft(file: string): Promise<void> {
  assert.equal(await s3.headObject(BUCKET, keyOf(file)), undefined, `an object was left at ${keyOf(file)}`);
  // Only this file's: a test that failed before must not fail the next one too.
  const uploads = await s3.listMultipartUploads(BUCKET);
  assert.ok(!uploads.includes(keyOf(file)), `a multipart upload of ${keyOf(file)} was left`);
}

/** Reads a restore's stdout until `bytes` have come, then calls `then` once. */
function afterReading(stdout: Readable, bytes: number, then: () => void): void {
  let seen = 0;
  const onData = (d: Buffer) => {
    seen += d.length;
    if (seen < bytes) return;
    stdout.off('data', onData);
    then();
  };
  stdout.on('data', onData);
}

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  proxy = await startFaultProxy({ target: s3.endpoint });
  env = new PluginEnv();
  cfg = env.writeConfig(
    testOptions(s3, BUCKET, FOLDER, {
      endpoint: proxy.endpoint,
      backup_multipart_chunksize: '5MB',
      restore_multipart_chunksize: '5MB',
      backup_max_concurrent_requests: '3',
      restore_max_concurrent_requests: '3',
    }),
  );
  // Written directly, not by the plugin: the restores below only need its bytes.
  await s3.putObject(BUCKET, keyOf('restore-source'), patternBytes(RESTORE_SIZE, 21));
});

after(async () => {
  await proxy?.stop();
  await s3?.stop();
  env?.cleanup();
});

describe('backup_data interrupted mid-stream', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    test(`${sig} during a multipart upload: non-zero exit within ${PROMPT_MS / 1000} s, no object, no upload left`, async () => {
      const file = `gpbackup_0_${TS}_${sig}`;
      const run = startPlugin(['backup_data', cfg, env.backupPath(TS, file)]);
      // More than a part, then nothing: the stream stays open, the upload in progress.
      run.child.stdin!.write(patternBytes(PART + MiB, 11));
      await waitFor(() => firstPartUploaded(file), 'part 1 to be uploaded');
      assert.ok((await s3.listMultipartUploads(BUCKET)).includes(keyOf(file)), 'no multipart upload in progress');

      const sent = Date.now();
      run.child.kill(sig);
      const exit = await exitWithin(run, PROMPT_MS, `backup_data after ${sig}`);
      run.child.stdin!.destroy();
      await run.stderrClosed;
      assert.equal(exit.signal, null, `killed by ${exit.signal}: the plugin did not handle ${sig}`);
      assert.notEqual(exit.code, 0);
      assert.ok(exit.at - sent < PROMPT_MS, `exit took ${exit.at - sent} ms`);
      assertOneLine(run.stderr(), `backup_data after ${sig}`);
      assert.match(run.stderr(), new RegExp(`${sig}|interrupt`, 'i'));
      await assertNothingLeft(file);
    });
  }

  test('the process feeding stdin dies (SIGKILL): the orphaned plugin abandons the upload, no object, no upload left', async () => {
    const file = `gpbackup_0_${TS}_orphaned`;
    // A parent in between, as gpbackup_helper or the COPY ... PROGRAM shell is: it holds the
    // write end of the plugin's stdin, sends more than a part, then nothing, and reports
    // the plugin's pid on fd 3. When it is killed, the plugin's stdin ends and the
    // plugin is re-parented.
    const parentScript = `
      const { spawn } = require('node:child_process');
      const { writeSync } = require('node:fs');
      const [bin, ...args] = JSON.parse(process.argv[1]);
      const plugin = spawn(bin, args, { stdio: ['pipe', 'inherit', 'inherit'] });
      writeSync(3, plugin.pid + '\\n');
      plugin.stdin.write(Buffer.alloc(${PART + MiB}, 7));
    `;
    const parent = spawn(process.execPath, ['-e', parentScript, JSON.stringify([PLUGIN_BIN, 'backup_data', cfg, env.backupPath(TS, file)])], {
      env: pluginEnv(),
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    parent.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    parent.stdout!.resume();
    // The plugin holds the test's ends of stdout and stderr too: they close when it exits.
    const pluginGone = new Promise<number>(resolve => parent.stderr!.on('close', () => resolve(Date.now())));
    const pid = await new Promise<number>((resolve, reject) => {
      let text = '';
      (parent.stdio[3] as Readable).on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('\n')) resolve(Number(text.trim()));
      });
      parent.once('exit', () => reject(new Error(`the parent exited early: ${stderr}`)));
    });
    try {
      await waitFor(() => firstPartUploaded(file), 'part 1 to be uploaded');
      const killed = Date.now();
      parent.kill('SIGKILL');
      let timer: NodeJS.Timeout | undefined;
      const gone = await Promise.race([
        pluginGone,
        new Promise<number>(resolve => (timer = setTimeout(() => resolve(Infinity), PROMPT_MS))),
      ]);
      clearTimeout(timer);
      assert.ok(gone - killed < PROMPT_MS, `the orphaned plugin was still running ${PROMPT_MS} ms after its parent died`);
      await assertNothingLeft(file);
      assertOneLine(stderr, 'orphaned backup_data');
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone, as it should be
      }
    }
  });
});

describe('restore_data interrupted mid-transfer', () => {
  const sourcePath = () => env.backupPath(TS, 'restore-source');

  test('the reader closes its end of stdout: non-zero exit within 5 s, no request started afterwards', async () => {
    const run = startPlugin(['restore_data', cfg, sourcePath()]);
    const requestsBefore = proxy.requests.length;
    let closed = 0;
    afterReading(run.child.stdout!, MiB, () => {
      closed = Date.now();
      run.child.stdout!.destroy();
    });
    const exit = await exitWithin(run, 30_000, 'restore_data');
    await run.stderrClosed;
    assert.ok(closed > 0, 'the restore ended before 1 MiB was read');
    // A moment for requests the plugin had begun before it saw the pipe close.
    const moment = 500;
    const countAfterMoment = await (async () => {
      const wait = closed + moment - Date.now();
      if (wait > 0) await sleep(wait);
      return proxy.requests.length;
    })();
    await sleep(500);
    assert.notEqual(exit.code, 0);
    assert.equal(exit.signal, null);
    assert.ok(exit.at - closed < PROMPT_MS, `exit took ${exit.at - closed} ms after the pipe closed`);
    assertOneLine(run.stderr(), 'restore_data with a closed stdout');
    assert.equal(proxy.requests.length, countAfterMoment, 'requests started after the pipe was closed');
    const gets = proxy.requests.slice(requestsBefore).filter(r => r.method === 'GET');
    assert.ok(gets.length < RESTORE_SIZE / PART, `fetched ${gets.length} ranges of ${RESTORE_SIZE / PART}: it did not stop`);
  });

  test('SIGTERM while its reader is slow: non-zero exit within 5 s', async () => {
    const run = startPlugin(['restore_data', cfg, sourcePath()]);
    let paused = 0;
    // The reader takes 1 MiB, then stops reading: the plugin waits on a full pipe.
    afterReading(run.child.stdout!, MiB, () => {
      run.child.stdout!.pause();
      paused = Date.now();
    });
    await waitFor(() => paused > 0, '1 MiB of the restore');
    await sleep(300);
    const sent = Date.now();
    run.child.kill('SIGTERM');
    const exit = await exitWithin(run, PROMPT_MS, 'restore_data after SIGTERM');
    run.child.stdout!.destroy();
    await run.stderrClosed;
    assert.equal(exit.signal, null, 'killed by SIGTERM: the plugin did not handle it');
    assert.notEqual(exit.code, 0);
    assert.ok(exit.at - sent < PROMPT_MS, `exit took ${exit.at - sent} ms`);
    assertOneLine(run.stderr(), 'restore_data after SIGTERM');
  });
});
