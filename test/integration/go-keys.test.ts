/**
 * Interoperability with the Go plugin's objects for folders it stores somewhere other than
 * where they are written: its SDK (aws-sdk-go v1) runs Go's path.Clean over the request path
 * `/<bucket>/<folder>/backups/...`, so a trailing, leading or doubled slash of the folder and
 * its `.`/`..` segments vanish from the keys. Objects are put at the keys the Go plugin's
 * requests carry (with the test server's own client), then restored, listed and deleted with
 * the built plugin; what the plugin writes lands at those keys too.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { dirname } from 'node:path';
import { PluginEnv, patternBytes } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-gokeys';
const TS = '20240305060708';
const OTHER_TS = '20240305060709';
const DAY = TS.slice(0, 8);

/**
 * Folder as configured, and the key prefix of the Go plugin's objects: path.Clean of
 * "/gpbackup-gokeys/<folder>/backups/..." without "/gpbackup-gokeys/" (worked out by hand).
 */
const FOLDERS: Array<{ what: string; folder: string; keyPrefix: string }> = [
  { what: 'a trailing slash', folder: 'trail/cluster1/', keyPrefix: 'trail/cluster1' },
  { what: 'a leading slash', folder: '/lead', keyPrefix: 'lead' },
  { what: 'doubled slashes', folder: 'dbl//cluster1', keyPrefix: 'dbl/cluster1' },
  { what: 'dot segments', folder: './dots/x/../cluster1/.', keyPrefix: 'dots/cluster1' },
];

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

for (const [i, { what, folder, keyPrefix }] of FOLDERS.entries()) {
  describe(`folder with ${what}: "${folder}" is stored at ${keyPrefix}/`, () => {
    const dataFile = `gpbackup_0_${TS}_16384.gz`;
    const metadataFile = `gpbackup_${TS}_metadata.sql`;
    const goKey = (ts: string, file: string) => `${keyPrefix}/backups/${ts.slice(0, 8)}/${ts}/${file}`;
    const data = patternBytes(64 * 1024 + i);
    const metadata = Buffer.from(`SET search_path = public; -- ${what}\n`);
    let cfg: string;

    before(async () => {
      cfg = env.writeConfig(testOptions(s3, BUCKET, folder), `gokeys-${i}.yaml`);
      // What the Go plugin leaves: data, metadata, the report (and another backup beside it).
      await s3.putObject(BUCKET, goKey(TS, dataFile), data);
      await s3.putObject(BUCKET, goKey(TS, metadataFile), metadata);
      await s3.putObject(BUCKET, goKey(TS, `gpbackup_${TS}_report`), Buffer.alloc(0));
      await s3.putObject(BUCKET, goKey(OTHER_TS, metadataFile.replace(TS, OTHER_TS)), metadata);
    });

    test('restore_data and restore_file read the Go plugin\'s objects', async () => {
      const r = await env.run(['restore_data', cfg, env.backupPath(TS, dataFile)]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(data), 'restored bytes equal the object');
      const local = env.backupPath(TS, metadataFile, `coordinator-${i}`);
      mkdirSync(dirname(local), { recursive: true });
      const f = await env.run(['restore_file', cfg, local]);
      assert.equal(f.code, 0, f.stderr);
      assert.ok(readFileSync(local).equals(metadata));
    });

    test('backup_data writes where the Go plugin writes', async () => {
      const file = `gpbackup_1_${TS}_16385.gz`;
      const r = await env.run(['backup_data', cfg, env.backupPath(TS, file, 'data/gpseg1')], { stdin: data });
      assert.equal(r.code, 0, r.stderr);
      assert.ok((await s3.getObject(BUCKET, goKey(TS, file)))?.equals(data), `the object is at ${goKey(TS, file)}`);
    });

    test('list_directory: the folder, a path from the bucket (as Go scripts pass it), a path from the folder', async () => {
      const names = (stdout: Buffer) => stdout.toString().trim().split('\n').slice(1).map(l => l.split('\t')[0]).sort();
      const all = await env.run(['list_directory', cfg]);
      assert.equal(all.code, 0, all.stderr);
      assert.ok(names(all.stdout).includes(goKey(TS, dataFile)), all.stdout.toString());
      assert.ok(names(all.stdout).includes(goKey(OTHER_TS, metadataFile.replace(TS, OTHER_TS))));
      const expected = names(all.stdout).filter(k => k.startsWith(`${keyPrefix}/backups/${DAY}/${TS}/`));
      for (const path of [`${keyPrefix}/backups/${DAY}/${TS}`, `backups/${DAY}/${TS}/`]) {
        const r = await env.run(['list_directory', cfg, path]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, '');
        assert.deepEqual(names(r.stdout), expected, path);
      }
    });

    test('a path that matches nothing says on stderr where it looked, and exits 0', async () => {
      const r = await env.run(['list_directory', cfg, `backups/${DAY}/19990101000000`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'NAME\tSIZE(bytes)\n');
      assert.equal(
        r.stderr,
        `list_directory: no objects under s3://${BUCKET}/${keyPrefix}/backups/${DAY}/19990101000000/ (path "backups/${DAY}/19990101000000" taken relative to the folder "${keyPrefix}")\n`,
      );
    });

    test('delete_backup deletes the Go plugin\'s backup and only it; delete_directory takes a path from the bucket', async () => {
      const r = await env.run(['delete_backup', cfg, TS]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await s3.listKeys(BUCKET, `${keyPrefix}/backups/${DAY}/${TS}/`), []);
      const otherDir = `${keyPrefix}/backups/${DAY}/${OTHER_TS}`;
      assert.equal((await s3.listKeys(BUCKET, `${otherDir}/`)).length, 1, 'the other backup stays');
      const d = await env.run(['delete_directory', cfg, otherDir]);
      assert.equal(d.code, 0, d.stderr);
      assert.deepEqual(await s3.listKeys(BUCKET, `${keyPrefix}/`), []);
      const again = await env.run(['delete_directory', cfg, otherDir]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stderr, `delete_directory: no objects under s3://${BUCKET}/${otherDir}/ (path "${otherDir}" taken relative to the bucket)\n`);
    });
  });
}

test('a folder whose ".." climbs out of the bucket is refused before any request', async () => {
  const cfg = env.writeConfig(testOptions(s3, BUCKET, '../other-bucket/x'), 'gokeys-climb.yaml');
  const r = await env.run(['restore_data', cfg, env.backupPath(TS, `gpbackup_0_${TS}_16384.gz`)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /option "folder" \(line \d+\): its "\.\." segments climb out of the bucket; name the folder without them, such as backups\/prod, got "\.\.\/other-bucket\/x"/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
