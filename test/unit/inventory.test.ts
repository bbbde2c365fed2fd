/** The inventory's pieces: gpbackup's files as gpbackup writes them, grouping a listing by backup, and the progress line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBackupConfig, parseSegmentToc, parseTocDataEntries, reportStatus, dataExtension } from '../../src/inventory/gpbackup-files.js';
import { groupByBackup } from '../../src/inventory/layout.js';
import { plausibleChunkSize } from '../../src/inventory/chunks.js';
import { StderrProgress } from '../../src/inventory/progress.js';
import { encryptBuffer } from '../../src/storage/encryption/format.js';
import { configYaml, reportText, tocYaml } from '../support/gpbackup-fixture.js';

test('a config as yaml.v2 writes it: a timestamp left unquoted stays text, booleans and counts are read', () => {
  const text = configYaml({ timestamp: '20250304010000', compression: 'zstd', segments: 3, incrementalOf: ['20250303010000'] }, '/bin/plugin')
    .replace('timestamp: "20250304010000"', 'timestamp: 20250304010000');
  const c = parseBackupConfig(text, 'config');
  assert.equal(c.timestamp, '20250304010000');
  assert.deepEqual([c.segmentCount, c.compressed, c.compressionType, c.incremental, c.singleDataFile], [3, true, 'zstd', true, false]);
  assert.deepEqual(c.restorePlan.map(e => e.timestamp), ['20250303010000', '20250304010000']);
  assert.equal(dataExtension(c), '.zst');
  assert.equal(dataExtension({ ...c, compressed: false }), '');
  assert.equal(dataExtension({ ...c, compressionType: '' }), '.gz', 'old gpbackups name no compression type: gzip');
  assert.throws(() => parseBackupConfig('segmentcount: three\n', 'gpbackup_x_config.yaml'), /gpbackup_x_config\.yaml: segmentcount is "three", not a whole number/);
  assert.throws(() => parseBackupConfig('a: [\n', 'cfg'), /cfg is not YAML/);
});

test('TOCs: the main TOC\'s data entries by OID, a segment TOC\'s byte ranges by OID', () => {
  assert.deepEqual(parseTocDataEntries(tocYaml({ timestamp: '20250304010000', tables: [{ oid: 7, schema: 's', name: 't' }] }), 'toc'), [{ schema: 's', name: 't', oid: 7 }]);
  const seg = parseSegmentToc('dataentries:\n  16384:\n    startbyte: 0\n    endbyte: 120\n  16390:\n    startbyte: 120\n    endbyte: 300\n', 'segtoc');
  assert.deepEqual([...seg], [[16384, { startByte: 0, endByte: 120 }], [16390, { startByte: 120, endByte: 300 }]]);
  assert.equal(parseSegmentToc('dataentries: {}\n', 'segtoc').size, 0);
});

test('the report\'s backup status', () => {
  assert.equal(reportStatus(reportText({ timestamp: '20250304010000' })), 'Success');
  assert.equal(reportStatus(reportText({ timestamp: '20250304010000', status: 'Failure' })), 'Failure');
  assert.equal(reportStatus(''), undefined);
});

test('a listing grouped by backup: only <folder>/backups/<YYYYMMDD>/<TS>/<file> keys whose date is the timestamp\'s', () => {
  const groups = groupByBackup('f/', [
    { key: 'f/backups/20250304/20250304010000/gpbackup_20250304010000_report', size: 10 },
    { key: 'f/backups/20250304/20250304010000/gpbackup_0_20250304010000_1.gz', size: 20 },
    { key: 'f/backups/20250305/20250304010000/stray', size: 1 },
    { key: 'f/backups/20250304/20250304010000/sub/deeper', size: 1 },
    { key: 'f/other/x', size: 1 },
  ]);
  assert.deepEqual([...groups.keys()], ['20250304010000']);
  assert.deepEqual([...groups.get('20250304010000')!.files.values()], [10, 20]);
  assert.equal(groups.get('20250304010000')!.prefix, 'f/backups/20250304/20250304010000/');
});

test('progress: objects, bytes, rate and time left; rewritten in place on a terminal, plain lines otherwise', () => {
  let now = 0;
  const written: string[] = [];
  const stream = (isTTY: boolean) => ({ isTTY, write: (s: string) => written.push(s) }) as unknown as NodeJS.WriteStream;
  const p = new StderrProgress(stream(true), () => now);
  p.start(4, 4 * 1024 * 1024);
  now = 2000;
  p.advance(1024 * 1024);
  assert.equal(p.line(), 'verify_backup: 1/4 objects, 1.00 MiB of 4.00 MiB, 512 KiB/s, 6s left');
  p.finish();
  assert.deepEqual(written, ['\rverify_backup: 1/4 objects, 1.00 MiB of 4.00 MiB, 512 KiB/s, 6s left\x1b[K\n']);
  written.length = 0;
  const plain = new StderrProgress(stream(false), () => now);
  plain.start(1, 10);
  plain.finish();
  assert.deepEqual(written, [], 'off a terminal, nothing at the end: the summary follows on stdout');
});

test('a stored chunk\'s plausible size: a codec byte and at most its length, sealed when encrypted', () => {
  assert.ok(plausibleChunkSize(1025, 1024, false), 'stored as is');
  assert.ok(plausibleChunkSize(40, 1024, false), 'zstd-compressed');
  assert.ok(!plausibleChunkSize(1026, 1024, false), 'longer than a stored chunk can be');
  assert.ok(!plausibleChunkSize(0, 1024, false), 'empty');
  const sealed = encryptBuffer(Buffer.alloc(1025), { kind: 'raw', key: Buffer.alloc(32, 1), source: 'test' });
  assert.ok(plausibleChunkSize(sealed.length, 1024, true));
  assert.ok(!plausibleChunkSize(10, 1024, true), 'shorter than a sealed object\'s header');
  assert.ok(!plausibleChunkSize(sealed.length, 1000, true), 'more plaintext than the manifest allows');
});
