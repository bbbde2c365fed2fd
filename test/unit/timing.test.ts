import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PluginError } from '../../src/errors.js';
import { goDuration, transferLine, transferring } from '../../src/protocol/timing.js';

test('goDuration: Go\'s time.Duration text of a duration rounded to the millisecond', () => {
  const cases: Array<[number, string]> = [
    [0, '0s'], [0.4, '0s'], [1, '1ms'], [999, '999ms'], [1000, '1s'], [1500, '1.5s'], [1234, '1.234s'],
    [60_000, '1m0s'], [78_066, '1m18.066s'], [3_600_000, '1h0m0s'], [3_723_040, '1h2m3.04s'],
  ];
  for (const [ms, text] of cases) assert.equal(goDuration(ms), text, String(ms));
});

test('transferLine: the Go plugin\'s words and figures first, ours in parentheses after', () => {
  const started = Date.now();
  assert.match(
    transferLine('Uploaded', 123, 'f/backups/20240102/20240102030405/gpbackup_0_20240102030405_16384.gz', started, { file: true, detail: 'to s3://b/k in 1 part(s)' }),
    /^Uploaded 123 bytes for file gpbackup_0_20240102030405_16384\.gz in \d+m?s \(to s3:\/\/b\/k in 1 part\(s\)(, [\d.]+ MiB\/s)?\)$/,
  );
  assert.match(transferLine('Downloaded', 5, 'f/x/y/gpbackup_20240102030405_report', started), /^Downloaded 5 bytes for gpbackup_20240102030405_report in \d+m?s( \([\d.]+ MiB\/s\))?$/);
});

test('transferring: a failure reads "Error while uploading/downloading <key>: ..." and keeps its exit code', async () => {
  await assert.rejects(
    transferring('uploading', 'f/k', async () => {
      throw new PluginError('uploading s3://b/f/k: AccessDenied (HTTP 403)', 3);
    }),
    (err: PluginError) => err.message === 'Error while uploading s3://b/f/k: AccessDenied (HTTP 403)' && err.exitCode === 3,
  );
  await assert.rejects(
    transferring('downloading', 'f/k', async () => {
      throw new Error('checksum mismatch');
    }),
    (err: PluginError) => err.message === 'Error while downloading f/k: checksum mismatch' && err.exitCode === 1,
  );
});
