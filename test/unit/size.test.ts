import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { formatSize, parseSize } from '../../src/config/size.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

test('parseSize reads the Go plugin syntax, all units 1024-based', () => {
  const cases: [string, number][] = [
    ['500MB', 500 * MiB],
    ['5 MB', 5 * MiB],
    ['1.5GB', 1.5 * GiB],
    ['16MiB', 16 * MiB],
    ['5242880', 5 * MiB],
    [' 10mb ', 10 * MiB],
    ['\t64 Mb\n', 64 * MiB],
    ['1B', 1],
    ['7 bytes', 7],
    ['1 Byte', 1],
    ['2KB', 2048],
    ['2 kilobytes', 2048],
    ['3 MEGABYTE', 3 * MiB],
    ['1 gigabytes', GiB],
    ['1kib', 1024],
    ['2GiB', 2 * GiB],
    ['1TB', 1024 * GiB],
    ['1 TiB', 1024 * GiB],
    ['1 terabyte', 1024 * GiB],
    ['1PB', 2 ** 50],
    ['1 petabytes', 2 ** 50],
    ['.5KB', 512],
    ['5.MB', 5 * MiB],
    ['0005MB', 5 * MiB],
    ['1.5B', 1],
    ['0.9999999KB', 1023],
    ['0', 0],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
});

test('parseSize rejects what is not a size, with a message quoting the text', () => {
  for (const text of ['', '   ', '-5MB', '100M', '5 XB', 'abc', 'MB', '5 M B', '1.5', '5MB5', '1,5MB', '0x10', '1e3MB', '+5MB', '1PiB', '5 MB MB']) {
    assert.throws(() => parseSize(text), (err: Error) => {
      assert.ok(err.message.includes(JSON.stringify(text)), `${text}: ${err.message}`);
      return true;
    }, text);
  }
  assert.throws(() => parseSize('100M'), /unknown unit "M"/);
  assert.throws(() => parseSize('1.5'), /needs a unit/);
  assert.throws(() => parseSize('1EB'), /too large/);
});

test('formatSize names whole binary units', () => {
  assert.equal(formatSize(5 * MiB), '5MiB');
  assert.equal(formatSize(5 * GiB), '5GiB');
  assert.equal(formatSize(1536 * 1024), '1536KiB');
  assert.equal(formatSize(100), '100 bytes');
});

test("the schema's size pattern accepts exactly what parseSize accepts", () => {
  const schema = JSON.parse(readFileSync(new URL('../../schemas/plugin-config.schema.json', import.meta.url), 'utf8'));
  const options = schema.properties.options.properties;
  const pattern = new RegExp(options.backup_multipart_chunksize.pattern, 'u');
  assert.equal(options.restore_multipart_chunksize.pattern, options.backup_multipart_chunksize.pattern);
  const samples = [
    '500MB', '5 MB', '1.5GB', '16MiB', '5242880', ' 10mb ', '1 Byte', '7 bytes', '2 kilobytes', '3 MEGABYTE',
    '1 gigabytes', '1kib', '1 TiB', '1 terabytes', '1PB', '1 petabyte', '.5KB', '5.MB', '1.5B', '3 exabytes',
    '   ', '-5MB', '100M', '5 XB', 'abc', 'MB', '5 M B', '1.5', '5MB5', '1,5MB', '0x10', '1e3MB', '+5MB', '1PiB',
    '1EiB', '5 MB MB', '5 MBS', '1 kilobyt', '1 KiBs',
  ];
  for (const text of samples) {
    let parses = true;
    try {
      parseSize(text);
    } catch (err) {
      parses = /too large/.test((err as Error).message); // syntax fine, number too big for a byte count
    }
    assert.equal(pattern.test(text), parses, JSON.stringify(text));
  }
});
