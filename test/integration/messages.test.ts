/**
 * Messages that point at the fix, as a new user meets them: an endpoint that is not S3, TLS
 * against plain http and plain http against a TLS port (failing at once, naming the option),
 * an S3 error without message text, delete_backup on a server that cannot list multipart uploads
 * (gofakes3, from ../shared/e2e) and of a timestamp that matches nothing, and a reader that
 * closes stdout early.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { PLUGIN_BIN, PluginEnv, patternBytes } from '../support/plugin.js';
import { referenceTools } from '../support/reference.js';
import { freePort, startS3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, testOptions, waitForHttp, type TestS3Server } from '../support/s3server.js';
import { startTlsFront, type TlsFront } from '../support/tls.js';

const BUCKET = 'gpbackup-messages';
const FOLDER = 'cluster1/messages';
const TS = '20250401020304';

let s3: TestS3Server;
let env: PluginEnv;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

/** An http server on 127.0.0.1 answering every request with `answer`; counts the connections made to it. */
async function fakeServer(answer: (res: import('node:http').ServerResponse) => void): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((_req, res) => answer(res));
  server.on('connection', () => connections++);
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, connections: () => connections };
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.doesNotMatch(lines[0]!, /:\s{2,}|: \(|:\s*$/, `no empty part: ${lines[0]}`);
  return lines[0]!;
}

describe('the endpoint', () => {
  test('a web server answering 404 without an S3 error: named as not S3, with its status and what to check', async () => {
    const web = await fakeServer(res => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html><body><h1>Not Found</h1></body></html>');
    });
    try {
      const cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: `http://127.0.0.1:${web.port}/` }), 'web.yaml');
      for (const args of [['list_directory', cfg], ['restore_data', cfg, env.backupPath(TS, `gpbackup_0_${TS}_1`)], ['list_backups', cfg]]) {
        const r = await env.run(args);
        assert.equal(r.code, 1);
        const line = oneLine(r.stderr);
        assert.match(line, new RegExp(`the endpoint http://127\\.0\\.0\\.1:${web.port} did not answer as S3 \\(HTTP 404 .*with no S3 error code\\): check the endpoint option`), args[0]);
        assert.doesNotMatch(line, /no such object/);
      }
    } finally {
      web.server.close();
    }
  });

  test('TLS against a plain-http server fails at once, naming encryption: off', async () => {
    const plain = await fakeServer(res => res.end());
    try {
      const cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: `127.0.0.1:${plain.port}`, encryption: 'on', max_retries: '5' }), 'tls-to-plain.yaml');
      const r = await env.run(['list_directory', cfg]);
      assert.equal(r.code, 1);
      assert.match(oneLine(r.stderr), /https:\/\/127\.0\.0\.1:\d+ does not speak TLS .*set encryption: off/);
      assert.equal(plain.connections(), 1, 'one handshake, not retried');
    } finally {
      plain.server.close();
    }
  });

  test('plain http against a TLS port fails at once, naming encryption: on', async () => {
    const front: TlsFront = await startTlsFront(s3.port);
    try {
      const cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: `127.0.0.1:${front.port}`, encryption: 'off', max_retries: '5' }), 'plain-to-tls.yaml');
      const r = await env.run(['list_directory', cfg]);
      assert.equal(r.code, 1);
      assert.match(oneLine(r.stderr), /http:\/\/127\.0\.0\.1:\d+ is a TLS \(https\) port: .*set encryption: on/);
      assert.equal(front.handshakeFailures, 1, 'one plain-http request, not retried');
      assert.equal(front.requests, 0);
    } finally {
      await front.stop();
    }
  });

  test('an S3 error without message text (Ceph RGW\'s SignatureDoesNotMatch) has no empty part', async () => {
    const rgwLike = await fakeServer(res => {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message></Message><RequestId>tx1</RequestId></Error>');
    });
    try {
      const cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: `http://127.0.0.1:${rgwLike.port}` }), 'rgw-like.yaml');
      const r = await env.run(['list_directory', cfg]);
      assert.equal(r.code, 1);
      assert.match(oneLine(r.stderr), /listing s3:\/\/gpbackup-messages\/cluster1\/messages\/: SignatureDoesNotMatch \(HTTP 403\): check aws_access_key_id and aws_secret_access_key$/);
    } finally {
      rgwLike.server.close();
    }
  });
});

describe('delete_backup', () => {
  test('a timestamp that matches nothing: exit 0, and stderr says nothing was deleted', async () => {
    const cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER), 'delete.yaml');
    const r = await env.run(['delete_backup', cfg, '20250401999999']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, `delete_backup: no backup 20250401999999 under s3://${BUCKET}/${FOLDER}/backups/20250401/20250401999999/: nothing was deleted\n`);
  });

  test('on gofakes3, which answers ListMultipartUploads with 404 NoSuchUpload: the backup is deleted and the skipped clean-up logged', async t => {
    const tools = referenceTools();
    if (typeof tools === 'string') return t.skip(tools);
    const port = await freePort();
    const server: ChildProcess = spawn(tools.gofakes3, ['-backend', 'memory', '-host', `127.0.0.1:${port}`, '-quiet'], { stdio: 'ignore' });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/`, 10_000);
      const client = new S3Client({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY },
      });
      await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
      client.destroy();
      const goEnv = new PluginEnv();
      try {
        const cfg = goEnv.writeConfig(testOptions(s3, BUCKET, FOLDER, { endpoint: `http://127.0.0.1:${port}` }));
        const up = await goEnv.run(['backup_data', cfg, goEnv.backupPath(TS, `gpbackup_0_${TS}_16384`)], { stdin: patternBytes(1000) });
        assert.equal(up.code, 0, up.stderr);
        const del = await goEnv.run(['delete_backup', cfg, TS]);
        assert.equal(del.code, 0, del.stderr);
        assert.equal(del.stderr, '');
        assert.match(goEnv.logText(), /\[WARNING\]:-delete_backup \d{14}: cannot list multipart uploads under .*\(the server answered 404 NoSuchUpload.*\): uploads left by killed backups were not looked for, nor removed/);
        assert.match(goEnv.logText(), /delete_backup: deleted 1 object\(s\)/);
        const list = await goEnv.run(['list_directory', cfg]);
        assert.doesNotMatch(list.stdout.toString(), /gpbackup_0_/);
      } finally {
        goEnv.cleanup();
      }
    } finally {
      server.kill('SIGTERM');
      tools.cleanup();
    }
  });
});

test('a reader that closes stdout early: logged as such, not as a download error, and still exit 1', async () => {
  const cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER), 'reader.yaml');
  const path = env.backupPath(TS, `gpbackup_0_${TS}_16390`);
  const up = await env.run(['backup_data', cfg, path], { stdin: patternBytes(24 * 1024 * 1024) });
  assert.equal(up.code, 0, up.stderr);
  const logBefore = env.logText().length;
  const child = spawn(PLUGIN_BIN, ['restore_data', cfg, path], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: env.home, USER: 'gpadmin' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // Read the first chunk, then close the pipe, as gpbackup_helper does once it has its tables.
  await new Promise<void>(resolve => child.stdout!.once('data', () => resolve()));
  child.stdout!.destroy();
  const code = await new Promise<number | null>(resolve => child.on('close', c => resolve(c)));
  assert.equal(code, 1);
  const line = oneLine(stderr);
  assert.match(line, /\[INFO\]:-restore_data: the reader of stdout closed it before the end of the stream: stopped, exit 1/);
  const logged = env.logText().slice(logBefore);
  assert.doesNotMatch(logged, /\[ERROR\]/);
  assert.doesNotMatch(logged, /Error while downloading/);
});
