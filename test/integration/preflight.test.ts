/**
 * The setup hooks' checks, run as gpbackup runs them, through a proxy that
 * records every request and answers chosen ones with AccessDenied: which
 * requests each check makes, the IAM action each failure names, and what is
 * left in the bucket afterwards (only the backup's empty report object, as the
 * Go plugin leaves it; setup never deletes).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFaultProxy, type ProxyRequestInfo } from '../support/fault-proxy.js';
import { PluginEnv } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-preflight';
const TS = '20240102030405';

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

/** The coordinator's local backup directory (never created, as with --metadata-only). */
const localDir = () => env.path('coordinator/backups', TS.slice(0, 8), TS);

/** Which S3 operation a recorded request was. */
function operation(r: ProxyRequestInfo): string {
  const q = r.query;
  const onBucket = r.path === `/${BUCKET}` || r.path === `/${BUCKET}/`;
  if (r.method === 'PUT') return q.has('uploadId') ? 'UploadPart' : 'PutObject';
  if (r.method === 'POST') return q.has('uploads') ? 'CreateMultipartUpload' : q.has('uploadId') ? 'CompleteMultipartUpload' : q.has('delete') ? 'DeleteObjects' : 'POST?';
  if (r.method === 'DELETE') return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  if (r.method === 'GET') return onBucket ? (q.has('uploads') ? 'ListMultipartUploads' : 'ListObjects') : 'GetObject';
  return r.method;
}

interface HookRun {
  code: number | null;
  stderr: string;
  requests: ProxyRequestInfo[];
}

/** Runs a setup hook with the plugin pointed at a proxy in front of the server that denies what `deny` says. */
async function runHook(
  hook: 'setup_plugin_for_backup' | 'setup_plugin_for_restore',
  folder: string,
  scope: string,
  deny?: (r: ProxyRequestInfo) => boolean,
): Promise<HookRun> {
  const proxy = await startFaultProxy({ target: s3.endpoint, deny });
  try {
    const cfg = env.writeConfig(testOptions(s3, BUCKET, folder, { endpoint: proxy.endpoint }), `${folder.replace(/\W/g, '_')}.yaml`);
    const args = scope === 'segment_host' ? [hook, cfg, localDir(), scope] : [hook, cfg, localDir(), scope, '"-1"'];
    const r = await env.run(args);
    return { code: r.code, stderr: r.stderr, requests: [...proxy.requests] };
  } finally {
    await proxy.stop();
  }
}

/** The folder's objects and open multipart uploads after a run. */
async function leftovers(folder: string): Promise<{ keys: string[]; uploads: string[] }> {
  const keys = await s3.listKeys(BUCKET, `${folder}/`);
  const uploads = (await s3.listMultipartUploads(BUCKET)).filter(k => k.startsWith(`${folder}/`));
  return { keys, uploads };
}

/** The backup's own report object, which setup writes empty (as the Go plugin does) and gpbackup replaces. */
const reportOf = (folder: string) => `${folder}/backups/${TS.slice(0, 8)}/${TS}/gpbackup_${TS}_report`;

describe('coordinator preflight before a backup', () => {
  test('passes with every permission, in six requests in the backup directory, leaving only the empty report object', async () => {
    const folder = 'pf-ok';
    const r = await runHook('setup_plugin_for_backup', folder, 'master');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(r.requests.map(operation), [
      'PutObject',
      'HEAD',
      'ListObjects',
      'CreateMultipartUpload',
      'UploadPart',
      'AbortMultipartUpload',
    ]);
    const backupDir = `/${BUCKET}/${folder}/backups/${TS.slice(0, 8)}/${TS}/`;
    for (const req of r.requests.filter(q => operation(q) !== 'ListObjects')) {
      assert.ok(req.path.startsWith(backupDir), `${operation(req)} ${req.path}`);
    }
    assert.ok(r.requests.every(q => q.status !== undefined && q.status < 300), JSON.stringify(r.requests.map(q => q.status)));
    assert.deepEqual(await leftovers(folder), { keys: [reportOf(folder)], uploads: [] });
    assert.equal((await s3.getObject(BUCKET, reportOf(folder)))?.length, 0);
    assert.match(env.logText(), /\[INFO\]:-setup_plugin_for_backup \(master\): not proven: s3:DeleteObject \(not tried: setup deletes nothing; only delete_backup and delete_directory need it/);
  });

  test('a role that may not delete passes setup: no delete is sent', async () => {
    const folder = 'pf-nodelete';
    const r = await runHook('setup_plugin_for_backup', folder, 'master', q => q.method === 'DELETE' && !q.query.has('uploadId') || (q.method === 'POST' && q.query.has('delete')));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.ok(!r.requests.some(q => q.status === 403), 'nothing was denied because no delete was asked');
    assert.deepEqual(await leftovers(folder), { keys: [reportOf(folder)], uploads: [] });
  });

  const isReportPut = (r: ProxyRequestInfo) => r.method === 'PUT' && !r.query.has('uploadId') && r.path.endsWith('_report');
  const denials: Array<{ what: string; deny: (r: ProxyRequestInfo) => boolean; message: RegExp; aborts?: boolean }> = [
    { what: 'PUT of the report object', deny: isReportPut, message: /cannot write objects under s3:\/\/gpbackup-preflight\/pf-put\/: AccessDenied \(HTTP 403\): the credentials need s3:PutObject/ },
    { what: 'HEAD of objects', deny: r => r.method === 'HEAD', message: /cannot read objects under .*: AccessDenied \(HTTP 403\): the credentials need s3:GetObject/ },
    { what: 'listing (GET on the bucket with list-type)', deny: r => r.method === 'GET' && r.query.has('list-type'), message: /cannot list objects under .*: AccessDenied \(HTTP 403\): the credentials need s3:ListBucket/ },
    { what: 'POST ?uploads', deny: r => r.method === 'POST' && r.query.has('uploads'), message: /cannot start multipart uploads under .*the credentials need s3:PutObject \(multipart upload\)/ },
    { what: 'UploadPart', deny: r => operation(r) === 'UploadPart', message: /cannot upload parts under .*the credentials need s3:PutObject \(multipart upload\)/, aborts: true },
  ];
  denials.forEach(({ what, deny, message, aborts }, i) => {
    test(`denied ${what}: non-zero exit, the IAM action named, no upload left`, async () => {
      const folder = i === 0 ? 'pf-put' : `pf-deny-${i}`;
      const r = await runHook('setup_plugin_for_backup', folder, 'master', deny);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(r.requests.some(q => q.status === 403), 'the denial was hit');
      assert.equal(r.requests.filter(q => operation(q) === 'AbortMultipartUpload').length, aborts ? 1 : 0);
      assert.deepEqual(await leftovers(folder), { keys: i === 0 ? [] : [reportOf(folder)], uploads: [] });
    });
  });

  test('denied AbortMultipartUpload: s3:AbortMultipartUpload named, the upload left and named', async () => {
    const folder = 'pf-abort';
    const r = await runHook('setup_plugin_for_backup', folder, 'master', q => operation(q) === 'AbortMultipartUpload');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot abort multipart uploads under s3:\/\/gpbackup-preflight\/pf-abort\/: AccessDenied \(HTTP 403\): the credentials need s3:AbortMultipartUpload; left behind: the multipart upload of s3:\/\/\S+_multipart$/m);
    const { uploads } = await leftovers(folder);
    assert.equal(uploads.length, 1);
    assert.ok(uploads[0].endsWith('_multipart'), uploads[0]);
  });

  test('denied UploadPart and AbortMultipartUpload: both actions named, only the unabortable upload left', async () => {
    const folder = 'pf-noabort';
    const r = await runHook('setup_plugin_for_backup', folder, 'master', q => operation(q) === 'UploadPart' || operation(q) === 'AbortMultipartUpload');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot upload parts under .*s3:PutObject \(multipart upload\); the multipart upload of s3:\/\/\S+_multipart could not be aborted: AccessDenied \(HTTP 403\): the credentials need s3:AbortMultipartUpload/);
    const { keys, uploads } = await leftovers(folder);
    assert.deepEqual(keys, [reportOf(folder)]);
    assert.equal(uploads.length, 1);
    assert.ok(uploads[0].endsWith('_multipart'), uploads[0]);
  });

  test('a missing bucket: one line saying the bucket does not exist', async () => {
    const proxy = await startFaultProxy({ target: s3.endpoint });
    try {
      const cfg = env.writeConfig(testOptions(s3, 'no-such-bucket', 'pf', { endpoint: proxy.endpoint }), 'nobucket.yaml');
      const r = await env.run(['setup_plugin_for_backup', cfg, localDir(), 'master', '"-1"']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /setup_plugin_for_backup: cannot write objects under s3:\/\/no-such-bucket\/pf\/: bucket "no-such-bucket" does not exist/);
      assert.equal(proxy.requests.length, 1, 'nothing after the first refusal');
    } finally {
      await proxy.stop();
    }
  });
});

describe('segment host check before a backup', () => {
  test('one put of the empty report object, no delete, so a role without delete passes', async () => {
    const ok = await runHook('setup_plugin_for_backup', 'sh-ok', 'segment_host', q => q.method === 'DELETE' || (q.method === 'POST' && q.query.has('delete')));
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(ok.requests.map(operation), ['PutObject']);
    assert.deepEqual(await leftovers('sh-ok'), { keys: [reportOf('sh-ok')], uploads: [] });
  });

  test('a denied put fails naming s3:PutObject', async () => {
    const r = await runHook('setup_plugin_for_backup', 'sh-noput', 'segment_host', q => q.method === 'PUT');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot write objects under s3:\/\/gpbackup-preflight\/sh-noput\/: AccessDenied \(HTTP 403\): the credentials need s3:PutObject/);
  });
});

describe('preflight before a restore', () => {
  const folder = 'rs';
  before(async () => {
    await s3.putObject(BUCKET, `${folder}/backups/20240102/${TS}/gpbackup_${TS}_metadata.sql`, 'SET search_path;\n');
  });

  test('passes with a listing and a one-byte read of the first object', async () => {
    for (const scope of ['master', 'segment_host']) {
      const r = await runHook('setup_plugin_for_restore', folder, scope);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.requests.map(operation), ['ListObjects', 'GetObject'], scope);
      assert.equal(r.requests[1].headers.range, 'bytes=0-0');
    }
  });

  test('an empty folder: the listing alone', async () => {
    const r = await runHook('setup_plugin_for_restore', 'rs-empty', 'master');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.requests.map(operation), ['ListObjects']);
  });

  test('a denied listing names s3:ListBucket; a denied read names s3:GetObject', async () => {
    const noList = await runHook('setup_plugin_for_restore', folder, 'master', q => operation(q) === 'ListObjects');
    assert.equal(noList.code, 1);
    assert.match(noList.stderr, /setup_plugin_for_restore: cannot list objects under s3:\/\/gpbackup-preflight\/rs\/: AccessDenied \(HTTP 403\): the credentials need s3:ListBucket/);
    const noGet = await runHook('setup_plugin_for_restore', folder, 'master', q => operation(q) === 'GetObject');
    assert.equal(noGet.code, 1);
    assert.match(noGet.stderr, /setup_plugin_for_restore: cannot read objects under s3:\/\/gpbackup-preflight\/rs\/: AccessDenied \(HTTP 403\): the credentials need s3:GetObject/);
  });
});
