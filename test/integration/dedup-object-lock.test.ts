/**
 * deduplication: on with object_lock_mode, with the built executable on a server with S3 Object
 * Lock (Ceph RGW, S3_TEST_SERVER=rgw): chunks carry the backup's retention, session markers none;
 * a later backup with a longer retention extends the chunks it reuses; restores round-trip;
 * delete_backup refuses a locked backup; prune keeps unnamed chunks still under retention and
 * deletes the unlocked ones. (test/integration/dedup.test.ts: on any server, such a config is
 * accepted and setup checks that the bucket has object lock.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectRetentionCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { copyRows } from '../support/copy-rows.js';
import { backupKey, PluginEnv, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const DAY = 86_400_000;
const LOCKED_BUCKET = 'gpbackup-dedup-locked';
const FOLDER = 'cluster1/dedup-locked';
const TS1 = '20240910010000';
const TS2 = '20240911010000';
const TS3 = '20240912010000';

let s3: TestS3Server;
let env: PluginEnv;

before(async () => {
  s3 = await startS3Server();
  env = new PluginEnv();
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

const localDir = (ts: string) => env.path('coordinator', 'backups', ts.slice(0, 8), ts);

describe('deduplicated backups in a locked bucket (needs a server with object lock: S3_TEST_SERVER=rgw)', () => {
  let skip: string | false = false;
  const config = (extra: Record<string, string>, name: string) =>
    env.writeConfig({ ...testOptions(s3, LOCKED_BUCKET, FOLDER), deduplication: 'on', ...extra }, name);
  const locked = (days: number) => config({ object_lock_mode: 'GOVERNANCE', object_lock_days: String(days) }, `locked-${days}.yaml`);

  before(async () => {
    if (s3.kind !== 'rgw') {
      skip = `${s3.kind} does not implement S3 Object Lock`;
      return;
    }
    await s3.client.send(new CreateBucketCommand({ Bucket: LOCKED_BUCKET, ObjectLockEnabledForBucket: true }));
  });

  /** Each chunk's retain-until (ms), or undefined where it has none. */
  async function chunkRetentions(): Promise<Map<string, { mode?: string; until?: number }>> {
    const out = new Map<string, { mode?: string; until?: number }>();
    for (const key of await s3.listKeys(LOCKED_BUCKET, `${FOLDER}/chunks/`)) {
      const r = await s3.client.send(new GetObjectRetentionCommand({ Bucket: LOCKED_BUCKET, Key: key })).catch(() => undefined);
      out.set(key, { mode: r?.Retention?.Mode, until: r?.Retention?.RetainUntilDate?.getTime() });
    }
    return out;
  }

  test('chunks locked, markers not; reuse extends; restores; delete_backup refused; prune keeps locked chunks', async t => {
    if (skip) return t.skip(skip);
    const short = locked(1);
    const long = locked(3);
    const data = copyRows(90_000, 1); // some 5 MiB: a few chunks
    const path = (ts: string) => env.backupPath(ts, `gpbackup_0_${ts}_16384`);
    ok(await env.run(['setup_plugin_for_backup', short, localDir(TS1), 'master', '"-1"']), 'setup');

    // 1. A one-day backup: the manifest carries its retention, every chunk a day more (the margin:
    //    a quarter of the days, at least a day).
    const before1 = Date.now();
    ok(await env.run(['backup_data', short, path(TS1)], { stdin: data }), 'backup_data 1 day');
    const first = await chunkRetentions();
    assert.ok(first.size >= 3, `${first.size} chunks`);
    for (const [key, r] of first) {
      assert.equal(r.mode, 'GOVERNANCE', key);
      assert.ok(r.until! >= before1 + 2 * DAY - 1000 && r.until! <= Date.now() + 2 * DAY, `${key}: until ${r.until}`);
    }
    const manifestLock = (await s3.client.send(new GetObjectRetentionCommand({ Bucket: LOCKED_BUCKET, Key: backupKey(FOLDER, TS1, `gpbackup_0_${TS1}_16384`) }))).Retention!;
    assert.ok(manifestLock.RetainUntilDate!.getTime() >= before1 + DAY - 1000 && manifestLock.RetainUntilDate!.getTime() <= Date.now() + DAY);

    // 2. Session markers: written and deleted by every call, never locked (in a versioned bucket
    //    each leaves a noncurrent version, which must stay deletable).
    const versions = await s3.client.send(new ListObjectVersionsCommand({ Bucket: LOCKED_BUCKET, Prefix: `${FOLDER}/chunks-sessions/` }));
    assert.ok((versions.Versions ?? []).length >= 1, 'the backup wrote a marker');
    assert.deepEqual(await s3.listKeys(LOCKED_BUCKET, `${FOLDER}/chunks-sessions/`), [], 'no marker is left current');
    for (const v of versions.Versions ?? []) {
      const r = await s3.client.send(new GetObjectRetentionCommand({ Bucket: LOCKED_BUCKET, Key: v.Key, VersionId: v.VersionId })).then(
        x => x.Retention,
        (err: Error) => (/ObjectLockConfiguration|NoSuchObjectLock|InvalidRequest|NotFound/i.test(err.name) ? undefined : Promise.reject(err)),
      );
      assert.equal(r?.Mode, undefined, `marker ${v.Key} (${v.VersionId}) has a retention`);
    }

    // 3. The same data again with three days: nothing new is stored, every shared chunk now lasts
    //    as long as the second backup, and a day more.
    const before2 = Date.now();
    ok(await env.run(['backup_data', long, path(TS2)], { stdin: data }), 'backup_data 3 days');
    const second = await chunkRetentions();
    assert.deepEqual([...second.keys()].sort(), [...first.keys()].sort(), 'no chunk uploaded again');
    for (const [key, r] of second) {
      assert.equal(r.mode, 'GOVERNANCE', key);
      // Three days and the margin: a quarter of them, at least a day (retention.ts).
      assert.ok(r.until! >= before2 + 4 * DAY - 1000 && r.until! <= Date.now() + 4 * DAY, `${key}: until ${new Date(r.until!).toISOString()}`);
    }
    assert.match(env.logText(), /the object lock retention of \d+ reused chunk\(s\) extended to this backup's/);

    // 4. Both restore, byte for byte.
    for (const [cfg, ts] of [[short, TS1], [long, TS2]] as const) {
      assert.ok(ok(await env.run(['restore_data', cfg, path(ts)]), `restore_data ${ts}`).stdout.equals(data));
    }

    // 5. delete_backup refuses a backup whose manifest is locked, deleting nothing.
    const del = await env.run(['delete_backup', long, TS2]);
    assert.equal(del.code, 1, 'a locked backup must not be deleted');
    assert.match(del.stderr, new RegExp(`delete_backup ${TS2}: 1 of 1 objects under .* are under S3 Object Lock retention \\(GOVERNANCE\\).*nothing was deleted`));
    assert.equal(del.stderr.trim().split('\n').length, 1, del.stderr);
    assert.ok(ok(await env.run(['restore_data', long, path(TS2)]), 'restore after the refusal').stdout.equals(data));

    // 6. A backup without object lock into the same folder stores other chunks, unlocked. Then
    //    every manifest goes by other means (a DELETE adds a delete marker, as a lifecycle rule
    //    would): prune deletes the unlocked chunks and keeps the locked ones, saying until when.
    const unlocked = config({}, 'unlocked.yaml');
    ok(await env.run(['backup_data', unlocked, path(TS3)], { stdin: copyRows(20_000, 2) }), 'backup_data without lock');
    const all = await chunkRetentions();
    const free = [...all].filter(([, r]) => r.until === undefined).map(([k]) => k);
    assert.ok(free.length >= 1 && all.size === first.size + free.length);
    for (const ts of [TS1, TS2, TS3]) {
      await s3.client.send(new DeleteObjectCommand({ Bucket: LOCKED_BUCKET, Key: backupKey(FOLDER, ts, `gpbackup_0_${ts}_16384`) }));
    }
    const pruned = ok(await env.run(['prune', unlocked, '--grace', '0']), 'prune').stdout.toString();
    const latest = new Date(Math.max(...[...second.values()].map(r => r.until!))).toISOString();
    assert.match(pruned, new RegExp(`in ${free.length} chunk\\(s\\); kept 0 chunk\\(s\\) named by 0 manifest\\(s\\)`), pruned);
    assert.ok(pruned.includes(`and ${first.size} unnamed chunk(s) under object lock retention (the latest until ${latest})`), pruned);
    assert.deepEqual((await s3.listKeys(LOCKED_BUCKET, `${FOLDER}/chunks/`)).sort(), [...first.keys()].sort());
  });
});
