/**
 * The built plugin against servers that treat S3's flexible checksums as servers in the field
 * do (test/support/personas/checksums.ts): B2's 400 refusal, a 501 refusal, a MinIO that predates
 * full-object checksums, and Ceph RGW 16's accept-and-ignore (checksums and SSE). On each, every
 * command round-trips its bytes exactly, Go-written objects restore (saying they are
 * unverified), and a refusal costs one request per process, never a failed backup. On the
 * ignoring server, uploads are still checked (Content-MD5) and multipart objects still verified
 * on restore (their ETag, from the part layout recorded with them), and SSE fails clearly.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { checksumHeaderNames, PERSONAS, startPersona, type PersonaName, type PersonaProxy } from '../support/personas/checksums.js';
import { PluginEnv, patternBytes, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const MiB = 1024 * 1024;
const BUCKET = 'gpbackup-personas';
const TS = '20240809101112';

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

const SMALL = patternBytes(1000, 21);
const LARGE = patternBytes(12 * MiB + 7, 22); // 5 MB parts: three
const FILE = patternBytes(6 * MiB + 1, 23);

function keyOf(folder: string, file: string, ts = TS): string {
  return `${folder}/backups/${ts.slice(0, 8)}/${ts}/${file}`;
}

function assertOk(r: RunResult, what: string): void {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  assert.equal(r.stderr, '', `${what}: nothing on stderr`);
}

/** One line on stderr, no stack trace, matching `pattern`. */
function assertFailed(r: RunResult, pattern: RegExp, what: string): void {
  assert.notEqual(r.code, 0, `${what} must fail`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line on stderr, got ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /    at /, `${what}: no stack trace`);
  assert.match(r.stderr, pattern, what);
}

interface Through {
  proxy: PersonaProxy;
  cfg: string;
  folder: string;
  /** Runs a command with the config; returns its result and the requests it made. */
  run(args: string[], stdin?: Buffer): Promise<RunResult & { refusals: number; carried: number }>;
}

async function through(persona: PersonaName, extra: Record<string, string> = {}, name = persona as string): Promise<Through> {
  const proxy = await startPersona(persona, s3.endpoint);
  const folder = `personas/${name}`;
  const cfg = env.writeConfig({ ...testOptions(s3, BUCKET, folder), endpoint: proxy.endpoint, ...extra }, `${name}.yaml`);
  return {
    proxy,
    cfg,
    folder,
    async run([command, ...rest], stdin) {
      const from = proxy.requests.length;
      const r = await env.run([command!, cfg, ...rest], { stdin });
      const made = proxy.requests.slice(from);
      return {
        ...r,
        refusals: made.filter(q => q.action === 'refused').length,
        carried: made.filter(q => checksumHeaderNames(q.headers).length > 0).length,
      };
    },
  };
}

for (const persona of PERSONAS) {
  describe(`a server like ${persona}`, () => {
    let t: Through;
    before(async () => {
      t = await through(persona);
    });
    after(async () => {
      await t?.proxy.stop();
    });

    test('backup_data and restore_data, one PUT and multipart, byte-exact; a refusal costs one request per process', async () => {
      for (const [file, data] of [[`gpbackup_0_${TS}_small`, SMALL], [`gpbackup_0_${TS}_large`, LARGE]] as const) {
        const path = env.backupPath(TS, file);
        const up = await t.run(['backup_data', path], data);
        assertOk(up, `backup_data ${file}`);
        const down = await t.run(['restore_data', path]);
        assertOk(down, `restore_data ${file}`);
        assert.ok(down.stdout.equals(data), `${file}: restored ${down.stdout.length} bytes of ${data.length}, or other bytes`);
        for (const r of [up, down]) assert.ok(r.refusals <= 1, `${file}: ${r.refusals} refused requests in one process`);
        if (persona === 'b2' || persona === 'refuse501') {
          // Once refused, no later request of the process carries the headers: only the refused one did.
          assert.equal(up.carried, up.refusals, `${file}: requests with checksum headers after the refusal`);
          assert.equal(up.refusals, 1, `${file}: the first upload request is refused`);
        }
        // MinIO before full-object checksums: only the completion's whole-object CRC-32 is refused.
        if (persona === 'old-minio') assert.equal(up.refusals, data === LARGE ? 1 : 0, `${file}: refusals`);
      }
      assert.deepEqual(await s3.listMultipartUploads(BUCKET), []);
      // Every byte of the multipart object was verified on restore, with the server's help or without.
      assert.doesNotMatch(env.logText(), new RegExp(`unverified: .*${TS}_large`));
    });

    test('backup_file, restore_file, restore_data_subset, list_directory, delete_backup', async () => {
      const ts = '20240809101113';
      const local = env.writeFile(`${persona}/backups/${ts.slice(0, 8)}/${ts}/gpbackup_${ts}_metadata.sql`, FILE);
      assertOk(await t.run(['backup_file', local]), 'backup_file');
      const dataPath = env.backupPath(ts, `gpbackup_0_${ts}_data`, `${persona}-seg`);
      assertOk(await t.run(['backup_data', dataPath], LARGE), 'backup_data');
      const target = env.writeFile(`${persona}-restore/backups/${ts.slice(0, 8)}/${ts}/gpbackup_${ts}_metadata.sql`, 'stale');
      assertOk(await t.run(['restore_file', target]), 'restore_file');
      assert.ok(readFileSync(target).equals(FILE), 'restore_file: other bytes');

      const offsets = env.writeFile(`${persona}-offsets`, `2 3 90 ${5 * MiB - 2} ${10 * MiB + 9}`);
      const subset = await t.run(['restore_data_subset', dataPath, offsets]);
      assertOk(subset, 'restore_data_subset');
      assert.ok(subset.stdout.equals(Buffer.concat([LARGE.subarray(3, 90), LARGE.subarray(5 * MiB - 2, 10 * MiB + 9)])), 'subset bytes');

      const listed = await t.run(['list_directory']);
      assertOk(listed, 'list_directory');
      assert.match(listed.stdout.toString(), new RegExp(`${keyOf(t.folder, `gpbackup_0_${ts}_data`, ts)}\\t${LARGE.length}\\n`));
      assert.match(listed.stdout.toString(), new RegExp(`gpbackup_${ts}_metadata.sql\\t${FILE.length}\\n`));

      assertOk(await t.run(['delete_backup', ts]), 'delete_backup');
      assert.deepEqual(await s3.listKeys(BUCKET, `${t.folder}/backups/${ts.slice(0, 8)}/${ts}/`), []);
    });

    test('objects the Go plugin wrote (no checksum, no metadata) restore, logged as unverified', async () => {
      for (const size of [1000, 11 * MiB + 3]) {
        const file = `gpbackup_1_${TS}_go_${size}`;
        const data = patternBytes(size, size);
        await s3.putObject(BUCKET, keyOf(t.folder, file), data);
        const r = await t.run(['restore_data', env.backupPath(TS, file)]);
        assertOk(r, `restore_data of a Go-written ${size}-byte object`);
        assert.ok(r.stdout.equals(data), 'restored bytes differ');
        assert.match(
          env.logText(),
          new RegExp(`restored unverified: the object carries no checksum \\(written by the Go plugin or by a server that keeps none\\) \\(s3://${BUCKET}/${keyOf(t.folder, file)}\\)`),
        );
      }
    });
  });
}

describe('a server that accepts and ignores checksums (rgw16): what it does validate still guards the bytes', () => {
  let t: Through;
  before(async () => {
    t = await through('rgw16', {}, 'rgw16-guard');
  });
  after(async () => {
    await t?.proxy.stop();
  });

  test('uploads carry Content-MD5 once the server shows it ignores the CRC-32', async () => {
    const path = env.backupPath(TS, `gpbackup_0_${TS}_md5`);
    const from = t.proxy.requests.length;
    assertOk(await t.run(['backup_data', path], LARGE), 'backup_data');
    const uploads = t.proxy.requests.slice(from).filter(q => q.method === 'PUT');
    assert.equal(uploads.length, 3);
    for (const q of uploads) assert.ok(q.headers['content-md5'], `part ${q.query.get('partNumber')} without Content-MD5`);
    const layout = (await s3.headObject(BUCKET, keyOf(t.folder, `gpbackup_0_${TS}_md5`)))?.metadata['gpbackup-part-layout'];
    assert.match(layout ?? '', /^5242880,\d+$/, 'the part layout is kept with the object');
  });

  for (const [name, data] of [['one PUT', SMALL], ['multipart', LARGE]] as const) {
    test(`${name}: a byte flipped on the way to the server fails the backup (BadDigest) and leaves nothing`, async () => {
      const file = `gpbackup_0_${TS}_flipped_${data.length}`;
      // The second part of a multipart upload, or the one PUT.
      t.proxy.setOptions({ corrupt: q => q.method === 'PUT' && (q.query.get('partNumber') ?? '2') === '2' });
      try {
        const r = await t.run(['backup_data', env.backupPath(TS, file)], data);
        assertFailed(r, /BadDigest/, 'backup_data of corrupted bytes');
      } finally {
        t.proxy.setOptions({});
      }
      assert.deepEqual(await s3.listKeys(BUCKET, keyOf(t.folder, file)), []);
      assert.deepEqual(await s3.listMultipartUploads(BUCKET), []);
    });

    test(`${name}: an object altered on the server fails its restore with a checksum mismatch`, async () => {
      const file = `gpbackup_0_${TS}_altered_${data.length}`;
      const path = env.backupPath(TS, file);
      assertOk(await t.run(['backup_data', path], data), 'backup_data');
      await s3.corruptObject(BUCKET, keyOf(t.folder, file), Math.floor(data.length * 0.7));
      assertFailed(await t.run(['restore_data', path]), /checksum mismatch/, 'restore_data of an altered object');
    });
  }

  test('server_side_encryption: the server does not confirm it, so the backup fails naming the option, and leaves nothing', async () => {
    const sse = await through('rgw16', { server_side_encryption: 'AES256' }, 'rgw16-sse');
    try {
      for (const [name, data] of [['one PUT', SMALL], ['multipart', LARGE]] as const) {
        const file = `gpbackup_0_${TS}_sse_${data.length}`;
        const r = await sse.run(['backup_data', env.backupPath(TS, file)], data);
        assertFailed(r, /server_side_encryption: AES256 is set, but the server's answer to (PutObject|CreateMultipartUpload) said nothing of it/, `${name} with SSE`);
        assert.deepEqual(await s3.listKeys(BUCKET, keyOf(sse.folder, file)), [], `${name}: an object was left`);
        assert.deepEqual(await s3.listMultipartUploads(BUCKET), [], `${name}: an upload was left`);
      }
    } finally {
      await sse.proxy.stop();
    }
  });
});

describe('checksums: crc32 and md5', () => {
  test('crc32 on a server that refuses flexible checksums fails clearly, naming the option', async () => {
    const t = await through('b2', { checksums: 'crc32' }, 'b2-crc32');
    try {
      const r = await t.run(['backup_data', env.backupPath(TS, `gpbackup_0_${TS}_strict`)], SMALL);
      assertFailed(r, /InvalidArgument: Unsupported header .*set checksums: auto/, 'backup_data with checksums: crc32');
      assert.deepEqual(await s3.listKeys(BUCKET, t.folder), []);
    } finally {
      await t.proxy.stop();
    }
  });

  test('crc32 on a server that ignores flexible checksums fails, naming the option, and leaves nothing', async () => {
    const t = await through('rgw16', { checksums: 'crc32' }, 'rgw16-crc32');
    try {
      for (const data of [SMALL, LARGE]) {
        const file = `gpbackup_0_${TS}_strict_${data.length}`;
        const r = await t.run(['backup_data', env.backupPath(TS, file)], data);
        assertFailed(r, /checksums: crc32 is set, but the server's answer did not echo the CRC-32/, `backup_data of ${data.length} bytes`);
        assert.deepEqual(await s3.listKeys(BUCKET, keyOf(t.folder, file)), []);
        assert.deepEqual(await s3.listMultipartUploads(BUCKET), []);
      }
    } finally {
      await t.proxy.stop();
    }
  });

  test('md5 sends no flexible-checksum header at all, on backup or restore', async () => {
    const t = await through('b2', { checksums: 'md5' }, 'b2-md5');
    try {
      const path = env.backupPath(TS, `gpbackup_0_${TS}_md5only`);
      const up = await t.run(['backup_data', path], LARGE);
      assertOk(up, 'backup_data');
      const down = await t.run(['restore_data', path]);
      assertOk(down, 'restore_data');
      assert.ok(down.stdout.equals(LARGE));
      assert.equal(up.carried + down.carried, 0);
      assert.equal(up.refusals + down.refusals, 0);
    } finally {
      await t.proxy.stop();
    }
  });
});
