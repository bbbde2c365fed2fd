/**
 * The whole command set against one config, asserting real outcomes: setup hooks, a small and a
 * multipart stream (backup_data / restore_data), a file (backup_file / restore_file), a subset,
 * list_directory and delete_backup. For the persona tests: whatever a server in between does,
 * every byte must come back and every object be gone after delete_backup.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { backupKey, patternBytes, type PluginEnv, type RunResult } from './plugin.js';
import type { TestS3Server } from './s3server.js';

const MB = 1024 * 1024;

function ok(r: RunResult, what: string): void {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  assert.equal(r.stderr, '', `${what} printed on stderr`);
}

export async function runCommandSet(env: PluginEnv, s3: TestS3Server, bucket: string, folder: string, cfg: string, ts: string, vars: Record<string, string> = {}): Promise<void> {
  const run = (args: string[], stdin?: Buffer) => env.run(args, { stdin, env: vars });
  ok(await run(['setup_plugin_for_backup', cfg, env.path(`coord-${ts}`), 'coordinator', '"-1"']), 'setup_plugin_for_backup');
  const small = patternBytes(1000, 1);
  const large = patternBytes(6 * MB + 3, 2);
  const smallPath = env.backupPath(ts, `gpbackup_0_${ts}_small`);
  const largePath = env.backupPath(ts, `gpbackup_0_${ts}_large`);
  ok(await run(['backup_data', cfg, smallPath], small), 'backup_data (small)');
  ok(await run(['backup_data', cfg, largePath], large), 'backup_data (multipart)');
  const filePath = env.writeFile(`data/gpseg-1/backups/${ts.slice(0, 8)}/${ts}/gpbackup_${ts}_toc.yaml`, patternBytes(5000, 3));
  const fileBytes = readFileSync(filePath);
  ok(await run(['backup_file', cfg, filePath]), 'backup_file');

  ok(await run(['setup_plugin_for_restore', cfg, env.path(`coord-${ts}`), 'coordinator', '"-1"']), 'setup_plugin_for_restore');
  for (const [path, data] of [[smallPath, small], [largePath, large]] as const) {
    const down = await run(['restore_data', cfg, path]);
    ok(down, 'restore_data');
    assert.ok(down.stdout.equals(data), `restore_data of ${path}: other bytes`);
  }
  const offsets = env.writeFile(`offsets-${ts}`, `2 10 20 ${5 * MB} ${5 * MB + 100}`);
  const subset = await run(['restore_data_subset', cfg, largePath, offsets]);
  ok(subset, 'restore_data_subset');
  assert.ok(subset.stdout.equals(Buffer.concat([large.subarray(10, 20), large.subarray(5 * MB, 5 * MB + 100)])), 'restore_data_subset: other bytes');
  rmSync(filePath);
  ok(await run(['restore_file', cfg, filePath]), 'restore_file');
  assert.ok(readFileSync(filePath).equals(fileBytes), 'restore_file: other bytes');

  const listing = await run(['list_directory', cfg]);
  ok(listing, 'list_directory');
  const prefix = backupKey(folder, ts);
  assert.match(listing.stdout.toString(), new RegExp(`${prefix}gpbackup_0_${ts}_large\\t${large.length}`));
  assert.equal((await s3.listKeys(bucket, prefix)).length, 3);
  ok(await run(['delete_backup', cfg, ts]), 'delete_backup');
  assert.deepEqual(await s3.listKeys(bucket, prefix), []);
  assert.deepEqual(await s3.listMultipartUploads(bucket), []);
}
