/**
 * Every plugin command, run as gpbackup runs it (a process, real pipes),
 * against a real S3 server on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PluginEnv, patternBytes, type Options } from '../support/plugin.js';
import { startS3Server, TEST_SECRET_KEY, testOptions, type TestS3Server } from '../support/s3server.js';

const MB = 1024 * 1024;
const BUCKET = 'gpbackup-test';
const FOLDER = 'cluster1/prod';
const TS = '20240102030405';
const SIBLING_TS = '20240102030406';

let s3: TestS3Server;
let env: PluginEnv;
let cfg: string;

function options(extra: Options = {}): Options {
  return testOptions(s3, BUCKET, FOLDER, extra);
}

/** The key gpbackup's local path maps to. */
function keyOf(ts: string, file: string): string {
  return `${FOLDER}/backups/${ts.slice(0, 8)}/${ts}/${file}`;
}

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  cfg = env.writeConfig(options());
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

describe('version and usage', () => {
  test('plugin_api_version prints 0.5.0', async () => {
    const r = await env.run(['plugin_api_version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.toString(), '0.5.0\n');
    assert.equal(r.stderr, '');
  });

  test('--version prints "<name> version <version>"', async () => {
    const r = await env.run(['--version']);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    assert.equal(r.code, 0);
    assert.equal(r.stdout.toString(), `gpbackup_s3_plugin version ${pkg.version}\n`);
  });

  test('unknown commands, missing commands and wrong argument counts: usage on stderr, non-zero exit', async () => {
    for (const args of [[], ['backup_everything'], ['backup_data', cfg], ['restore_data', cfg, 'a', 'b'], ['setup_plugin_for_backup', cfg], ['plugin_api_version', 'x'], ['delete_backup', cfg]]) {
      const r = await env.run(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.equal(r.stdout.length, 0, args.join(' '));
      assert.match(r.stderr, /\[ERROR\]:-/, args.join(' '));
      assert.match(r.stderr, /Usage: gpbackup_s3_plugin <command>/);
      assert.doesNotMatch(r.stderr, /    at /); // no stack trace
    }
  });
});

describe('setup and cleanup hooks', () => {
  const localDir = () => env.path('coordinator/backups', TS.slice(0, 8), TS); // never created: --metadata-only

  for (const hook of ['setup_plugin_for_backup', 'setup_plugin_for_restore', 'cleanup_plugin_for_backup', 'cleanup_plugin_for_restore']) {
    test(`${hook}: every scope, content ID quoted or bare, local dir absent`, async () => {
      const calls = [
        ['master', '"-1"'],
        ['master', '-1'],
        ['coordinator', '"-1"'],
        ['segment_host'],
        ['segment', '"0"'],
        ['segment', '3'],
      ];
      const results = await Promise.all(calls.map(c => env.run([hook, cfg, localDir(), ...c])));
      results.forEach((r, i) => assert.equal(r.code, 0, `${hook} ${calls[i].join(' ')}: ${r.stderr}`));
    });
  }

  test('setup for backup leaves only the backup\'s empty report object, as the Go plugin does', async () => {
    const before = await s3.listKeys(BUCKET);
    const r = await env.run(['setup_plugin_for_backup', cfg, localDir(), 'master', '"-1"']);
    assert.equal(r.code, 0, r.stderr);
    const report = keyOf(TS, `gpbackup_${TS}_report`);
    // The hook rounds above may have written it already: nothing but it is new, and it is empty.
    const after = await s3.listKeys(BUCKET);
    assert.deepEqual(after.filter(k => !before.includes(k) && k !== report), []);
    assert.ok(after.includes(report), `${report} is written`);
    assert.equal((await s3.getObject(BUCKET, report))?.length, 0);
  });

  test('setup for backup and restore fail early, naming the bucket, when it does not exist', async () => {
    const bad = env.writeConfig(options({ bucket: 'no-such-bucket' }), 'nobucket.yaml');
    for (const hook of ['setup_plugin_for_backup', 'setup_plugin_for_restore']) {
      const r = await env.run([hook, bad, localDir(), 'master', '"-1"']);
      assert.equal(r.code, 1, hook);
      assert.match(r.stderr, /no-such-bucket/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  test('cleanup does not need a readable config; setup validates it', async () => {
    const missing = env.path('does-not-exist.yaml');
    assert.equal((await env.run(['cleanup_plugin_for_backup', missing, localDir(), 'master', '"-1"'])).code, 0);
    const r = await env.run(['setup_plugin_for_backup', missing, localDir(), 'master', '"-1"']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does-not-exist\.yaml/);
  });

  test('a malformed content ID is refused', async () => {
    const r = await env.run(['setup_plugin_for_backup', cfg, localDir(), 'segment', 'seg0']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /content ID/);
  });
});

describe('backup_data and restore_data', () => {
  for (const [name, size] of [
    ['empty', 0],
    ['small', 1000],
    ['one part exactly', 5 * MB],
    ['three parts and a byte', 15 * MB + 1],
  ] as const) {
    test(`round trip: ${name} (${size} bytes)`, async () => {
      const data = patternBytes(size, size + 11);
      const file = `gpbackup_0_${TS}_${16384 + size}`;
      const path = env.backupPath(TS, file);
      const up = await env.run(['backup_data', cfg, path], { stdin: data });
      assert.equal(up.code, 0, up.stderr);
      assert.equal(up.stderr, '');
      const stored = await s3.headObject(BUCKET, keyOf(TS, file));
      assert.equal(stored?.size, size);

      const down = await env.run(['restore_data', cfg, path]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(down.stderr, '');
      assert.equal(down.stdout.length, size);
      assert.ok(down.stdout.equals(data), 'restored bytes differ');
    });
  }

  test('restore_data of a missing object fails with the key and writes nothing', async () => {
    const path = env.backupPath(TS, 'gpbackup_0_missing');
    const r = await env.run(['restore_data', cfg, path]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, new RegExp(`s3://${BUCKET}/${keyOf(TS, 'gpbackup_0_missing')}: no such object`));
  });

  test('restore_data stops at once when its reader goes away', async () => {
    const file = `gpbackup_1_${TS}_reader_gone`;
    const path = env.backupPath(TS, file);
    assert.equal((await env.run(['backup_data', cfg, path], { stdin: patternBytes(12 * MB) })).code, 0);
    const child = spawn(env.bin, ['restore_data', cfg, path], { env: { PATH: '/usr/bin:/bin', HOME: env.home } });
    const code = await new Promise<number | null>(resolve => {
      child.stdout.once('data', () => child.stdout.destroy());
      child.on('close', c => resolve(c));
    });
    assert.notEqual(code, 0);
  });

  test('SIGTERM during backup_data aborts the multipart upload: no object, no upload left', async () => {
    const file = `gpbackup_2_${TS}_interrupted`;
    const path = env.backupPath(TS, file);
    const child = spawn(env.bin, ['backup_data', cfg, path], { env: { PATH: '/usr/bin:/bin', HOME: env.home } });
    let stderr = '';
    child.stderr.on('data', d => (stderr += d));
    child.stdin.write(patternBytes(12 * MB)); // two parts go out; stdin stays open
    await new Promise(r => setTimeout(r, 1500));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>(resolve => child.on('close', c => resolve(c)));
    assert.notEqual(code, 0);
    assert.match(stderr, /interrupted by SIGTERM/);
    assert.equal(await s3.headObject(BUCKET, keyOf(TS, file)), undefined);
    assert.deepEqual(await s3.listMultipartUploads(BUCKET), []);
  });
});

describe('restore_data_subset', () => {
  const file = `gpbackup_0_${TS}`;
  const data = patternBytes(12 * MB + 5, 99);
  before(async () => {
    const r = await env.run(['backup_data', cfg, env.backupPath(TS, file)], { stdin: data });
    assert.equal(r.code, 0, r.stderr);
  });

  for (const offsets of ['1 3 10', '2 0 700000 900000 900001', `3 5 6 ${5 * MB - 3} ${10 * MB + 7} ${12 * MB} ${12 * MB + 5}`]) {
    test(`ranges ${offsets}`, async () => {
      const offsetsFile = env.writeFile(`offsets-${offsets.length}`, offsets);
      const r = await env.run(['restore_data_subset', cfg, env.backupPath(TS, file), offsetsFile]);
      assert.equal(r.code, 0, r.stderr);
      const nums = offsets.split(' ').map(Number).slice(1);
      const parts: Buffer[] = [];
      for (let i = 0; i < nums.length; i += 2) parts.push(data.subarray(nums[i], nums[i + 1]));
      assert.ok(r.stdout.equals(Buffer.concat(parts)));
    });
  }

  for (const [text, why] of [
    ['2 0 10', /says 2 ranges/],
    ['1 10 5', /ends before it starts/],
    ['2 10 20 5 8', /overlaps or precedes/],
    ['1 0 junk', /not a non-negative whole number/],
    [`1 0 ${12 * MB + 6}`, /beyond the end/],
    ['', /empty/],
  ] as const) {
    test(`a malformed offsets file (${JSON.stringify(text)}) fails before any output`, async () => {
      const offsetsFile = env.writeFile('bad-offsets', text);
      const r = await env.run(['restore_data_subset', cfg, env.backupPath(TS, file), offsetsFile]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout.length, 0);
      assert.match(r.stderr, why);
    });
  }
});

describe('backup_file and restore_file', () => {
  test('round trip: the file stays in place, is recreated identical', async () => {
    const content = patternBytes(7 * MB + 3, 5);
    const path = env.writeFile(`coord/backups/${TS.slice(0, 8)}/${TS}/gpbackup_${TS}_metadata.sql`, content);
    const up = await env.run(['backup_file', cfg, path]);
    assert.equal(up.code, 0, up.stderr);
    assert.ok(readFileSync(path).equals(content), 'backup_file must leave the file in place');
    assert.equal((await s3.headObject(BUCKET, keyOf(TS, `gpbackup_${TS}_metadata.sql`)))?.size, content.length);

    writeFileSync(path, 'stale'); // restore replaces what is there
    const down = await env.run(['restore_file', cfg, path]);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(readFileSync(path).equals(content));
  });

  test('backup_file of a missing local file fails naming it', async () => {
    const path = env.path(`coord/backups/${TS.slice(0, 8)}/${TS}/gpbackup_${TS}_nothere`);
    const r = await env.run(['backup_file', cfg, path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read .*gpbackup_20240102030405_nothere/);
  });

  test('restore_file of a missing object fails and leaves no file', async () => {
    const path = env.writeFile(`coord/backups/${TS.slice(0, 8)}/${TS}/placeholder`, '');
    const target = path.replace('placeholder', `gpbackup_${TS}_missing.yaml`);
    const r = await env.run(['restore_file', cfg, target]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such object/);
    assert.equal(existsSync(target), false);
    assert.deepEqual(readdirSync(dirname(target)).filter(f => f.includes('partial')), []);
  });
});

describe('the Go plugin layout', () => {
  test('objects written where the Go plugin writes them restore by their local paths', async () => {
    const ts = '20230405060708';
    const segData = patternBytes(6 * MB + 17, 3);
    const toc = Buffer.from('tocversion: 1\n');
    await s3.putObject(BUCKET, `${FOLDER}/backups/20230405/${ts}/gpbackup_3_${ts}_16385.gz`, segData);
    await s3.putObject(BUCKET, `${FOLDER}/backups/20230405/${ts}/gpbackup_${ts}_toc.yaml`, toc);

    const dataPath = `/data/primary/gpseg3/backups/20230405/${ts}/gpbackup_3_${ts}_16385.gz`;
    const r = await env.run(['restore_data', cfg, dataPath]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(segData));

    const tocPath = env.writeFile(`master/gpseg-1/backups/20230405/${ts}/x`, '').replace(/x$/, `gpbackup_${ts}_toc.yaml`);
    const f = await env.run(['restore_file', cfg, tocPath]);
    assert.equal(f.code, 0, f.stderr);
    assert.ok(readFileSync(tocPath).equals(toc));
  });
});

describe('delete_backup', () => {
  test('deletes exactly one backup; the sibling stays and restores', async () => {
    const ts = '20240503000000';
    const sibling = '20240503000001';
    const prefixTwin = '2024050300000'; // not a timestamp, but a prefix of both
    for (const t of [ts, sibling]) {
      for (const f of [`gpbackup_${t}_report`, `gpbackup_0_${t}_1`, `gpbackup_1_${t}_1`]) {
        await s3.putObject(BUCKET, keyOf(t, f), `data of ${f}`);
      }
    }
    await s3.putObject(BUCKET, `${FOLDER}/backups/20240503/${prefixTwin}/x`, 'x');
    await s3.putObject(BUCKET, `${FOLDER}/backups/20240503/${ts}0/y`, 'y'); // a 15-digit sibling directory
    const r = await env.run(['delete_backup', cfg, ts]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await s3.listKeys(BUCKET, keyOf(ts, '')), []);
    assert.equal((await s3.listKeys(BUCKET, keyOf(sibling, ''))).length, 3);
    assert.equal((await s3.listKeys(BUCKET, `${FOLDER}/backups/20240503/${prefixTwin}/`)).length, 1);
    assert.equal((await s3.listKeys(BUCKET, `${FOLDER}/backups/20240503/${ts}0/`)).length, 1);
    const restored = await env.run(['restore_data', cfg, env.backupPath(sibling, `gpbackup_0_${sibling}_1`)]);
    assert.equal(restored.stdout.toString(), `data of gpbackup_0_${sibling}_1`);
    const gone = await env.run(['restore_data', cfg, env.backupPath(ts, `gpbackup_0_${ts}_1`)]);
    assert.equal(gone.code, 1);
  });

  test('deleting a backup that does not exist succeeds', async () => {
    const r = await env.run(['delete_backup', cfg, '19990101000000']);
    assert.equal(r.code, 0, r.stderr);
  });

  test('anything but 14 digits is refused before S3 is touched', async () => {
    // An unreachable endpoint: reaching S3 would fail differently.
    const offline = env.writeConfig(options({ endpoint: '127.0.0.1:1' }), 'offline.yaml');
    for (const bad of ['2024010203040', '202401020304050', 'latest', '2024010203040*', `${SIBLING_TS.slice(0, 13)}/`, '']) {
      const r = await env.run(['delete_backup', offline, bad]);
      assert.equal(r.code, 1, bad);
      assert.match(r.stderr, /exactly 14 digits/, bad);
    }
  });
});

describe('list_directory and delete_directory', () => {
  test('list_directory pages past 1000 keys and shows sizes', async () => {
    const dir = `${FOLDER}/listing`;
    const keys: string[] = [];
    for (let i = 0; i < 1003; i++) keys.push(`${dir}/obj-${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((k, j) => s3.putObject(BUCKET, k, 'x'.repeat((i + j) % 7))));
    }
    const r = await env.run(['list_directory', cfg, 'listing']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().trim().split('\n');
    assert.equal(lines[0], 'NAME\tSIZE(bytes)');
    assert.equal(lines.length, 1004);
    assert.equal(lines[6], `${dir}/obj-0005\t5`);
    const all = await env.run(['list_directory', cfg]);
    assert.ok(all.stdout.toString().includes(`${dir}/obj-1002\t`));
  });

  test('delete_directory deletes only below the folder path it is given', async () => {
    await s3.putObject(BUCKET, `${FOLDER}/scratch/a`, 'a');
    await s3.putObject(BUCKET, `${FOLDER}/scratch/b/c`, 'c');
    await s3.putObject(BUCKET, `${FOLDER}/scratchpad/keep`, 'k');
    await s3.putObject(BUCKET, 'outside/scratch/keep', 'k');
    const r = await env.run(['delete_directory', cfg, 'scratch']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await s3.listKeys(BUCKET, `${FOLDER}/scratch/`), []);
    assert.deepEqual(await s3.listKeys(BUCKET, `${FOLDER}/scratchpad/`), [`${FOLDER}/scratchpad/keep`]);
    assert.deepEqual(await s3.listKeys(BUCKET, 'outside/'), ['outside/scratch/keep']);
  });

  test('delete_directory refuses paths that are empty or could leave the folder', async () => {
    const before = await s3.listKeys(BUCKET);
    for (const bad of ['', '/', '.', '..', '/etc', '../other', 'a/../../b', './x']) {
      const r = await env.run(['delete_directory', cfg, bad]);
      assert.equal(r.code, 1, bad);
      assert.match(r.stderr, /must be relative to the bucket or to the folder ".*" and stay inside the folder/, bad);
    }
    assert.deepEqual(await s3.listKeys(BUCKET), before);
  });
});

describe('config errors, logs and secrets', () => {
  test('an invalid config fails with one line naming each bad option, and no secret', async () => {
    const bad = env.writeConfig(
      options({ backup_max_concurrent_requests: 'lots', restore_subset: 'maybe', unknown_option: 'x', aws_secret_access_key: 'sup3r-s3cret-value' }),
      'bad.yaml',
    );
    const r = await env.run(['backup_data', bad, env.backupPath(TS, 'x')], { stdin: 'data' });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    for (const opt of ['backup_max_concurrent_requests', 'restore_subset', 'unknown_option']) assert.match(r.stderr, new RegExp(opt));
    assert.doesNotMatch(r.stderr + env.logText(), /sup3r-s3cret-value/);
  });

  test('the log is in gplog format under ~/gpAdminLogs and names what moved', async () => {
    const d = new Date();
    const day = `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
    assert.ok(existsSync(env.path('home/gpAdminLogs', `gpbackup_s3_plugin_${day}.log`)));
    const lines = env.logText().trim().split('\n');
    const format = /^\d{8}:\d{2}:\d{2}:\d{2} gpbackup_s3_plugin:[^:]+:[^:]+:\d{6}-\[(INFO|WARNING|ERROR|CRITICAL|DEBUG)\]:-.+$/;
    for (const line of lines) assert.match(line, format);
    // The Go plugin's words and figures first, for operators' greps.
    assert.ok(lines.some(l => /\[INFO\]:-Uploaded \d+ bytes for file gpbackup_0_20240102030405\S* in \d+(\.\d+)?m?s \(to s3:\/\//.test(l)));
    assert.ok(lines.some(l => /\[INFO\]:-Downloaded \d+ bytes for file \S+ in \d+(\.\d+)?m?s \(from s3:\/\//.test(l)));
    assert.ok(lines.some(l => /\[INFO\]:-Uploaded \d+ bytes for gpbackup_\S+ in \d+(\.\d+)?m?s \(\//.test(l)), 'backup_file');
    assert.ok(!env.logText().includes(TEST_SECRET_KEY));
  });
});
