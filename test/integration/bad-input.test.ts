/**
 * Bad input of every kind, run through the built executable against a real S3 server: each
 * case must fail with exactly one error line on stderr (gplog format) that names what failed,
 * exit non-zero, print no stack trace and nothing on stdout, and leave the S3 server as it
 * was (same buckets, same keys, no multipart upload). commands.test.ts has the cases it
 * already covers (some argument counts, bad delete_backup timestamps, delete_directory
 * paths, most malformed offsets files); this file has the rest.
 *
 * Last, the secret check of test/support/plugin.ts is shown to fire, and a session token is
 * shown to appear nowhere when commands fail.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { PluginEnv, patternBytes, registerSecret, runProcess, type Options } from '../support/plugin.js';
import { startS3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-bad-input';
const FOLDER = 'cluster1/bad';
const TS = '20240102030405';
/** A refused connection must fail this fast, retries included; a hang is a failure. */
const REFUSED_WITHIN_MS = 8000;
/** Every line the plugin writes to stderr: gplog's prefix, then the message. */
const GPLOG_ERROR = /^\d{8}:\d\d:\d\d:\d\d gpbackup_s3_plugin:[^:]*:[^:]*:\d{6}-\[ERROR\]:-(.+)$/;

let s3: TestS3Server;
let env: PluginEnv;
let cfg: string;
/** A path gpbackup would hand over, and an object restores may read. */
let dataPath: string;
let offsetsFile: string;
let closedPort: number;

function options(extra: Options = {}): Options {
  return testOptions(s3, BUCKET, FOLDER, extra);
}

let configsWritten = 0;

/** A config file of its own: the options of the test server with `extra` on top, `remove` left out. */
function configWith(extra: Options, remove: string[] = []): string {
  const opts = options(extra);
  for (const name of remove) delete opts[name];
  return env.writeConfig(opts, `configs/${++configsWritten}.yaml`);
}

/** A config file with exactly this text. */
function rawConfig(name: string, text: string | Buffer): string {
  return env.writeFile(`configs/raw-${name}.yaml`, text);
}

/** The whole server as a test can see it: buckets, keys of the test bucket, open uploads. */
async function serverState(): Promise<{ buckets: string[]; keys: string[]; uploads: string[] }> {
  const listed = await s3.client.send(new ListBucketsCommand({}));
  return {
    buckets: (listed.Buckets ?? []).map(b => b.Name!).sort(),
    keys: await s3.listKeys(BUCKET),
    uploads: await s3.listMultipartUploads(BUCKET),
  };
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
async function unusedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', () => resolve()));
  const { port } = srv.address() as { port: number };
  await new Promise(resolve => srv.close(resolve));
  return port;
}

interface Case {
  name: string;
  /** Called when the case runs (configs are written then). */
  args: () => string[];
  /** What the error line must say: it names the option, path, bucket... that failed. */
  error: RegExp;
  /** 2 for a wrong command line (the usage text follows the error line), 1 otherwise. */
  exitCode?: 1 | 2;
  stdin?: Buffer;
  /** The working directory, if not the test runner's. */
  cwd?: () => string;
  maxMs?: number;
}

async function expectCleanFailure(c: Case): Promise<void> {
  const before = await serverState();
  const started = Date.now();
  const r = await env.run(c.args(), { stdin: c.stdin ?? patternBytes(1000, 7), cwd: c.cwd?.(), timeoutMs: 30_000 });
  const elapsed = Date.now() - started;
  const exitCode = c.exitCode ?? 1;
  assert.equal(r.signal, null, `killed after ${elapsed} ms: it hung`);
  assert.equal(r.code, exitCode, `exit code; stderr: ${r.stderr}`);
  assert.equal(r.stdout.length, 0, `stdout: ${r.stdout.toString().slice(0, 200)}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'a stack trace on stderr');
  const lines = r.stderr.split('\n').filter(l => l !== '');
  const errorLines = lines.filter(l => /\[ERROR\]:-/.test(l));
  assert.equal(errorLines.length, 1, `one error line, got: ${r.stderr}`);
  if (exitCode === 1) assert.equal(lines.length, 1, `nothing but the error line, got: ${r.stderr}`);
  else assert.match(r.stderr, /Usage: gpbackup_s3_plugin <command>/);
  const message = GPLOG_ERROR.exec(errorLines[0]!)?.[1];
  assert.ok(message, `not a gplog line: ${errorLines[0]}`);
  assert.match(message, c.error);
  if (c.maxMs !== undefined) assert.ok(elapsed < c.maxMs, `took ${elapsed} ms, more than ${c.maxMs}`);
  assert.deepEqual(await serverState(), before, 'the server changed');
}

function runCases(cases: Case[]): void {
  for (const c of cases) test(c.name, () => expectCleanFailure(c));
}

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  cfg = env.writeConfig(options());
  dataPath = env.backupPath(TS, `gpbackup_0_${TS}_16384`);
  const up = await env.run(['backup_data', cfg, dataPath], { stdin: patternBytes(3000, 3) });
  assert.equal(up.code, 0, up.stderr);
  offsetsFile = env.writeFile('offsets', '1 0 10');
  closedPort = await unusedPort();
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

describe('config files that are not configs', () => {
  runCases([
    { name: 'missing file (backup_data)', args: () => ['backup_data', env.path('nope.yaml'), dataPath], error: /reading plugin config .*nope\.yaml: no such file/ },
    { name: 'missing file (list_directory)', args: () => ['list_directory', env.path('nope.yaml')], error: /reading plugin config .*nope\.yaml: no such file/ },
    { name: 'a directory', args: () => ['backup_data', env.home, dataPath], error: /reading plugin config .*\/home: it is a directory/ },
    { name: 'empty file', args: () => ['backup_data', rawConfig('empty', ''), dataPath], error: /plugin config .*raw-empty\.yaml is empty/ },
    { name: 'only a comment', args: () => ['backup_data', rawConfig('comment', '# nothing here\n'), dataPath], error: /raw-comment\.yaml is empty/ },
    { name: 'binary garbage', args: () => ['backup_data', rawConfig('garbage', patternBytes(4096, 42)), dataPath], error: /plugin config .*raw-garbage\.yaml/ },
    {
      name: 'larger than 1 MiB',
      args: () => ['backup_data', rawConfig('huge', `# ${'x'.repeat(1024 * 1024)}\nexecutablepath: /x\noptions:\n  bucket: ${BUCKET}\n`), dataPath],
      error: /raw-huge\.yaml is larger than 1 MiB/,
    },
    { name: 'a YAML list', args: () => ['backup_data', rawConfig('list', '- executablepath: /x\n- options: {}\n'), dataPath], error: /raw-list\.yaml is not a YAML mapping/ },
    { name: 'a YAML scalar', args: () => ['backup_data', rawConfig('scalar', 'just some text\n'), dataPath], error: /raw-scalar\.yaml is not a YAML mapping/ },
    { name: 'not YAML at all', args: () => ['backup_data', rawConfig('syntax', 'executablepath: /x\noptions: [\n'), dataPath], error: /raw-syntax\.yaml: not valid YAML at line \d+/ },
    { name: 'options as a list', args: () => ['backup_data', rawConfig('options-list', 'executablepath: /x\noptions:\n  - bucket\n'), dataPath], error: /options \(line 2\): must be a mapping/ },
    {
      name: 'an option at the top level',
      args: () => ['backup_data', rawConfig('top-level', `executablepath: /x\nbucket: ${BUCKET}\noptions:\n  endpoint: ${s3.endpoint}\n  folder: f\n`), dataPath],
      error: /unknown key "bucket" \(line 2\).*indent it under options/,
    },
    {
      name: 'a duplicate option',
      args: () => ['backup_data', rawConfig('duplicate', `executablepath: /x\noptions:\n  endpoint: ${s3.endpoint}\n  bucket: ${BUCKET}\n  folder: f\n  bucket: other-bucket\n`), dataPath],
      error: /option "bucket" \(line 6\): appears more than once/,
    },
  ]);
});

describe('invalid option values', () => {
  // Each config is the test server's, with one thing wrong; backup_data would write if it ran.
  const bad: Array<[string, Options, RegExp, string[]?]> = [
    ['chunk size not a size', { backup_multipart_chunksize: 'lots' }, /option "backup_multipart_chunksize" \(line \d+\): must be a size/],
    ['chunk size below 5MB', { backup_multipart_chunksize: '4MB' }, /option "backup_multipart_chunksize" \(line \d+\): must be from 5MiB to 5GiB/],
    ['restore chunk size above 5GB', { restore_multipart_chunksize: '6GB' }, /option "restore_multipart_chunksize" \(line \d+\): must be from 1MiB to 5GiB/],
    ['backup concurrency 0', { backup_max_concurrent_requests: '0' }, /option "backup_max_concurrent_requests" \(line \d+\): must be a whole number from 1 to 256/],
    ['backup concurrency 257', { backup_max_concurrent_requests: '257' }, /option "backup_max_concurrent_requests" \(line \d+\): must be a whole number from 1 to 256/],
    ['restore concurrency 0', { restore_max_concurrent_requests: '0' }, /option "restore_max_concurrent_requests" \(line \d+\): must be a whole number from 1 to 256/],
    ['restore concurrency 257', { restore_max_concurrent_requests: '257' }, /option "restore_max_concurrent_requests" \(line \d+\): must be a whole number from 1 to 256/],
    ['folder climbing out of the bucket', { folder: '../other' }, /option "folder" \(line \d+\): its "\.\." segments climb out of the bucket/],
    ['a misspelt option', { backup_multipart_chunk_size: '16MB' }, /option "backup_multipart_chunk_size" \(line \d+\): unknown option \(did you mean "backup_multipart_chunksize"\?\)/],
    ['bucket with s3://', { bucket: `s3://${BUCKET}` }, /option "bucket" \(line \d+\): must be a bucket name.*without s3:\/\//],
    ['bucket with a path', { bucket: `${BUCKET}/backups` }, /option "bucket" \(line \d+\): must be a bucket name/],
    ['empty folder', { folder: '' }, /option "folder" \(line \d+\)/],
    ['no folder', {}, /option "folder" is required but missing/, ['folder']],
    ['no bucket', {}, /option "bucket" is required but missing/, ['bucket']],
    ['neither region nor endpoint', {}, /region or endpoint must be set/, ['endpoint']],
    ['key without secret', { aws_secret_access_key: '' }, /aws_secret_access_key must be set when aws_access_key_id is/],
    ['secret without key', { aws_access_key_id: '' }, /aws_access_key_id must be set when aws_secret_access_key is/],
    ['session token without a key pair', { aws_session_token: 'token-without-keys-0123' }, /aws_session_token can only be used with aws_access_key_id and aws_secret_access_key/, ['aws_access_key_id', 'aws_secret_access_key']],
    ['max_retries 21', { max_retries: '21' }, /option "max_retries" \(line \d+\): must be a whole number from 0 to 20/],
    ['max_retries -1', { max_retries: '-1' }, /option "max_retries" \(line \d+\): must be a whole number from 0 to 20/],
    ['max_retries five', { max_retries: 'five' }, /option "max_retries" \(line \d+\): must be a whole number from 0 to 20/],
    ['connect_timeout not a duration', { connect_timeout: 'soon' }, /option "connect_timeout" \(line \d+\): must be a duration/],
    ['connect_timeout in hours', { connect_timeout: '1h' }, /option "connect_timeout" \(line \d+\): must be a duration/],
    ['connect_timeout below 100ms', { connect_timeout: '50ms' }, /option "connect_timeout" \(line \d+\): must be from 100ms to 10m/],
    ['request_timeout 0', { request_timeout: '0' }, /option "request_timeout" \(line \d+\): must be from 1s to 60m/],
    ['request_timeout above 60m', { request_timeout: '61m' }, /option "request_timeout" \(line \d+\): must be from 1s to 60m/],
    ['backup bandwidth not a rate', { backup_max_bandwidth: 'fast' }, /option "backup_max_bandwidth" \(line \d+\): must be a size a second/],
    ['restore bandwidth below 64KB/s', { restore_max_bandwidth: '1KB/s' }, /option "restore_max_bandwidth" \(line \d+\): must be 0 \(unlimited\) or at least 64KiB\/s/],
    ['server_side_encryption foo', { server_side_encryption: 'foo' }, /option "server_side_encryption" \(line \d+\): must be AES256 or aws:kms/],
    ['server_side_encryption in lowercase', { server_side_encryption: 'aes256' }, /option "server_side_encryption" \(line \d+\): must be AES256 or aws:kms/],
    ['sse_kms_key_id without server_side_encryption', { sse_kms_key_id: 'alias/gpbackup' }, /sse_kms_key_id can only be used with server_side_encryption: aws:kms/],
    ['sse_kms_key_id with AES256', { server_side_encryption: 'AES256', sse_kms_key_id: 'alias/gpbackup' }, /sse_kms_key_id can only be used with server_side_encryption: aws:kms/],
    ['role_arn not an ARN', { role_arn: 'gpbackup-role' }, /option "role_arn" \(line \d+\): must be an IAM role ARN/],
    ['role_arn of a user', { role_arn: 'arn:aws:iam::123456789012:user/gpbackup' }, /option "role_arn" \(line \d+\): must be an IAM role ARN/],
    ['ca_bundle a missing file', { ca_bundle: '/nonexistent/gpbackup/ca.pem' }, /option "ca_bundle" \(line \d+\): cannot read \/nonexistent\/gpbackup\/ca\.pem: no such file/],
    ['ca_bundle a relative path', { ca_bundle: 'ca.pem' }, /option "ca_bundle" \(line \d+\): must be the absolute path/],
    ['ca_bundle a directory', { ca_bundle: '/tmp' }, /option "ca_bundle" \(line \d+\): cannot read \/tmp: it is a directory/],
    ['storage_class in lowercase', { storage_class: 'standard_ia' }, /option "storage_class" \(line \d+\): must be a storage class name/],
    ['force_path_style yes', { force_path_style: 'yes' }, /option "force_path_style" \(line \d+\): must be on or off/],
    ['aws_profile with a key pair', { aws_profile: 'backup' }, /aws_profile cannot be used with aws_access_key_id/],
    ['endpoint with another scheme', { endpoint: 'ftp://127.0.0.1:21' }, /option "endpoint" \(line \d+\): must be host\[:port\]/],
    ['region with spaces', { region: 'us east 1' }, /option "region" \(line \d+\): must be a region name/],
    ['http_proxy without a scheme', { http_proxy: 'proxy.example.com:3128' }, /option "http_proxy" \(line \d+\): must be an http:\/\/ or https:\/\/ URL/],
    ['logger_verbosity loud', { logger_verbosity: 'loud' }, /option "logger_verbosity" \(line \d+\): must be error, info, verbose or debug/],
    ['restore_subset yes', { restore_subset: 'yes' }, /option "restore_subset" \(line \d+\): must be on or off/],
    ['remove_duplicate_bucket yes', { remove_duplicate_bucket: 'yes' }, /option "remove_duplicate_bucket" \(line \d+\): must be true or false/],
  ];
  runCases(bad.map(([name, extra, error, remove]) => ({ name, args: () => ['backup_data', configWith(extra, remove), dataPath], error })));

  test('ca_bundle a file without a PEM certificate', () => {
    const notPem = env.writeFile('not-a-ca.pem', 'this is not a certificate\n');
    return expectCleanFailure({
      name: 'ca_bundle not PEM',
      args: () => ['backup_data', configWith({ ca_bundle: notPem }), dataPath],
      error: /option "ca_bundle" \(line \d+\): .*not-a-ca\.pem holds no PEM certificate/,
    });
  });
});

describe('command lines', () => {
  // name, fewest and most arguments (README's command table).
  const commands: Array<[string, number, number]> = [
    ['setup_plugin_for_backup', 3, 4],
    ['setup_plugin_for_restore', 3, 4],
    ['cleanup_plugin_for_backup', 3, 4],
    ['cleanup_plugin_for_restore', 3, 4],
    ['backup_file', 2, 2],
    ['restore_file', 2, 2],
    ['backup_data', 2, 2],
    ['restore_data', 2, 2],
    ['restore_data_subset', 3, 3],
    ['delete_backup', 2, 2],
    ['list_directory', 1, 2],
    ['delete_directory', 2, 2],
  ];
  // commands.test.ts has these already.
  const covered = new Set(['backup_data too few', 'restore_data too many', 'setup_plugin_for_backup too few', 'delete_backup too few']);
  const filler = (n: number) => [cfg, dataPath, offsetsFile, '"-1"', 'extra'].slice(0, n);
  const cases: Case[] = [];
  for (const [name, min, max] of commands) {
    for (const [how, count] of [['too few', min - 1], ['too many', max + 1]] as const) {
      if (covered.has(`${name} ${how}`)) continue;
      cases.push({
        name: `${name} with ${how} arguments (${count})`,
        args: () => [name, ...filler(count)],
        error: new RegExp(`^${name} takes .* arguments? \\(.*\\), got ${count}$`),
        exitCode: 2,
      });
    }
  }
  cases.push(
    { name: 'an unknown command with a hyphen', args: () => ['restore-data', cfg, dataPath], error: /unknown command "restore-data"/, exitCode: 2 },
    { name: 'a command in capitals', args: () => ['BACKUP_DATA', cfg, dataPath], error: /unknown command "BACKUP_DATA"/, exitCode: 2 },
  );
  runCases(cases);
});

describe('local paths that do not map to a key', () => {
  const cases: Case[] = [];
  const bad = ['/a/b', 'gpbackup_0_x', `/data/backups/20240102/../gpbackup_0_${TS}_1`, `/data/backups/20240102/${TS}/..`, `/data/backups/./${TS}/gpbackup_0_${TS}_1`];
  for (const path of bad) {
    const error = new RegExp(`cannot map "${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" to an object key`);
    cases.push(
      { name: `backup_data ${path}`, args: () => ['backup_data', cfg, path], error },
      { name: `restore_data ${path}`, args: () => ['restore_data', cfg, path], error },
      { name: `restore_data_subset ${path}`, args: () => ['restore_data_subset', cfg, path, offsetsFile], error },
      { name: `restore_file ${path}`, args: () => ['restore_file', cfg, path], error },
    );
  }
  // Relative, so that the file exists whatever the depth of the temp directory.
  cases.push({
    name: 'backup_file of an existing file at a short path',
    args: () => {
      env.writeFile('short/file', 'content');
      return ['backup_file', cfg, 'short/file'];
    },
    cwd: () => env.root,
    error: /cannot map "short\/file" to an object key/,
  });
  runCases(cases);
});

describe('offsets files commands.test.ts does not cover', () => {
  runCases([
    { name: 'a missing offsets file', args: () => ['restore_data_subset', cfg, dataPath, env.path('no-offsets')], error: /cannot read offsets file .*no-offsets/ },
    { name: 'a directory as offsets file', args: () => ['restore_data_subset', cfg, dataPath, env.home], error: /cannot read offsets file .*\/home/ },
    { name: 'zero ranges', args: () => ['restore_data_subset', cfg, dataPath, env.writeFile('offsets-zero', '0')], error: /malformed offsets file .*: it names no ranges/ },
    { name: 'a negative number', args: () => ['restore_data_subset', cfg, dataPath, env.writeFile('offsets-negative', '1 -1 10')], error: /malformed offsets file .*"-1" is not a non-negative whole number/ },
    { name: 'a number too large', args: () => ['restore_data_subset', cfg, dataPath, env.writeFile('offsets-huge', '1 0 99999999999999999999')], error: /malformed offsets file .*too large/ },
    { name: 'a range that ends before it starts', args: () => ['restore_data_subset', cfg, dataPath, env.writeFile('offsets-backwards', '1 9 5')], error: /malformed offsets file .*range 1 \(9 5\) ends before it starts/ },
    { name: 'beyond the end, by one byte', args: () => ['restore_data_subset', cfg, dataPath, env.writeFile('offsets-one-past', '2 0 10 20 3001')], error: /range 20-3001 is beyond the end of s3:\/\/.*\(3000 bytes\)/ },
    { name: 'ranges of a missing object', args: () => ['restore_data_subset', cfg, env.backupPath(TS, 'gpbackup_9_missing'), offsetsFile], error: /s3:\/\/gpbackup-bad-input\/.*gpbackup_9_missing: no such object/ },
  ]);
});

describe('a bucket that does not exist', () => {
  const missing = () => configWith({ bucket: 'no-such-bucket-gpb' });
  const error = /no-such-bucket-gpb/;
  runCases([
    { name: 'backup_data', args: () => ['backup_data', missing(), dataPath], error },
    { name: 'backup_data of several parts', args: () => ['backup_data', missing(), dataPath], stdin: patternBytes(11 * 1024 * 1024, 5), error },
    { name: 'restore_data', args: () => ['restore_data', missing(), dataPath], error },
    { name: 'restore_data_subset', args: () => ['restore_data_subset', missing(), dataPath, offsetsFile], error },
    { name: 'backup_file', args: () => ['backup_file', missing(), env.writeFile(`coord/backups/20240102/${TS}/gpbackup_${TS}_report`, 'report')], error },
    { name: 'restore_file', args: () => ['restore_file', missing(), env.writeFile(`coord/backups/20240102/${TS}/x`, '').replace(/x$/, `gpbackup_${TS}_toc.yaml`)], error },
    { name: 'list_directory', args: () => ['list_directory', missing()], error },
    { name: 'delete_backup', args: () => ['delete_backup', missing(), TS], error },
    { name: 'delete_directory', args: () => ['delete_directory', missing(), 'backups'], error },
  ]);
});

// Concurrent: each run spends its time in the backoff between retries.
describe('an endpoint that refuses connections fails within seconds', { concurrency: true }, () => {
  const refused = () => configWith({ endpoint: `http://127.0.0.1:${closedPort}` });
  const error = () => new RegExp(`connection refused by http://127\\.0\\.0\\.1:${closedPort}`);
  const cases: Array<[string, () => string[]]> = [
    ['backup_data', () => ['backup_data', refused(), dataPath]],
    ['restore_data', () => ['restore_data', refused(), dataPath]],
    ['list_directory', () => ['list_directory', refused()]],
    ['delete_backup', () => ['delete_backup', refused(), TS]],
    ['setup_plugin_for_backup', () => ['setup_plugin_for_backup', refused(), env.path('coord'), 'master', '"-1"']],
  ];
  for (const [name, args] of cases) {
    test(name, () => expectCleanFailure({ name, args, error: error(), maxMs: REFUSED_WITHIN_MS }));
  }
});

describe('management commands with bad arguments', () => {
  const cases: Case[] = [];
  for (const ts of [` ${TS}`, `${TS}\n`, '２０２４０１０２０３０４０５', `${TS.slice(0, 8)}-${TS.slice(8)}`]) {
    cases.push({ name: `delete_backup ${JSON.stringify(ts)}`, args: () => ['delete_backup', cfg, ts], error: /delete_backup needs a timestamp of exactly 14 digits/ });
  }
  for (const path of ['..', '.', '/', '/etc', '../other', 'a/../../b', './x', 'a//b', '']) {
    cases.push({ name: `list_directory ${JSON.stringify(path)}`, args: () => ['list_directory', cfg, path], error: /list_directory: path ".*" must be relative to the bucket or to the folder "[^"]*" and stay inside the folder/ });
  }
  cases.push({ name: 'delete_directory "a//b"', args: () => ['delete_directory', cfg, 'a//b'], error: /delete_directory: path "a\/\/b" must be relative to the bucket or to the folder "[^"]*" and stay inside the folder/ });
  runCases(cases);
});

describe('secrets', () => {
  test('the check fires: a process printing a registered secret makes runProcess reject, naming the command', async () => {
    const quiet = { env: { PATH: '/usr/bin:/bin' } };
    await assert.rejects(runProcess('/bin/echo', [TEST_SECRET_KEY], quiet), /secret leaked: `echo <TEST_SECRET_KEY>` printed TEST_SECRET_KEY on stdout/);
    await assert.rejects(runProcess('/bin/echo', [`key=${encodeURIComponent(TEST_SECRET_KEY)}`], quiet), /secret leaked: .* printed TEST_SECRET_KEY on stdout/);
    await assert.rejects(
      runProcess('/bin/sh', ['-c', 'echo "failed with $SECRET" >&2; exit 1'], { env: { PATH: '/usr/bin:/bin', SECRET: TEST_SECRET_KEY } }),
      /secret leaked: `sh -c` printed TEST_SECRET_KEY on stderr/,
    );
    registerSecret('another-secret-for-the-check', 'the check\'s own secret');
    await assert.rejects(runProcess('/bin/echo', ['x another-secret-for-the-check x'], quiet), /printed the check's own secret on stdout/);
    // A process that prints none passes.
    assert.equal((await runProcess('/bin/echo', [TEST_ACCESS_KEY], quiet)).code, 0);
  });

  test('the check fires: cleanup throws, naming the log file, when a log under HOME holds a secret', () => {
    const leaky = new PluginEnv();
    mkdirSync(leaky.path('home/gpAdminLogs'));
    writeFileSync(leaky.path('home/gpAdminLogs/gpbackup_s3_plugin_20240102.log'), `20240102:03:04:05 ... secret ${TEST_SECRET_KEY}\n`);
    assert.throws(() => leaky.cleanup(), /secret leaked into the plugin's log under HOME: TEST_SECRET_KEY in gpAdminLogs\/gpbackup_s3_plugin_20240102\.log/);
    const another = new PluginEnv();
    writeFileSync(another.path('home/helper.log'), TEST_SECRET_KEY);
    assert.throws(() => another.cleanup(), /TEST_SECRET_KEY in helper\.log/);
    const clean = new PluginEnv();
    writeFileSync(clean.path('home/notes.txt'), TEST_SECRET_KEY); // not a log: ~/.aws/credentials may hold keys
    clean.cleanup();
  });

  test('a session token appears nowhere when commands fail', async () => {
    const token = 'FwoGZXIvYXdzEGPB//Session+Token/do-not-print=0123456789';
    registerSecret(token, 'aws_session_token');
    const tokenEnv = new PluginEnv();
    try {
      const withToken = (extra: Options) =>
        tokenEnv.writeConfig(options({ aws_session_token: token, logger_verbosity: 'debug', ...extra }), `token-${Object.keys(extra).join('-')}.yaml`);
      const runs = [
        // Reaches the server, which answers 404.
        ['restore_data', withToken({}), tokenEnv.backupPath(TS, 'gpbackup_0_no_such_object')],
        // Reaches no server.
        ['backup_data', withToken({ endpoint: `http://127.0.0.1:${closedPort}`, max_retries: '0' }), dataPath],
        // Never gets past the config.
        ['backup_data', withToken({ restore_subset: 'yes', aws_secret_access_key: '' }), dataPath],
        ['list_directory', withToken({ bucket: 'no-such-bucket-gpb' })],
      ];
      for (const args of runs) {
        const r = await tokenEnv.run(args, { stdin: 'data' });
        assert.notEqual(r.code, 0, `${args[0]} should fail`);
        assert.ok(!r.stderr.includes(token) && !r.stdout.includes(token), `${args[0]} printed the token`);
        assert.ok(!r.stderr.includes(encodeURIComponent(token)), `${args[0]} printed the token URL-encoded`);
      }
      const log = tokenEnv.logText();
      assert.ok(log.length > 0, 'the plugin logged nothing');
      assert.ok(!log.includes(token), 'the token is in the log');
    } finally {
      tokenEnv.cleanup(); // searches the logs again, for every registered secret
    }
  });
});
