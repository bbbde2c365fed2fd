import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { formatMilliseconds, formatRate, formatSize, parseDuration, parseRate, parseSize } from '../../src/config/size.js';

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

test('parseRate reads a size a second, the /s optional', () => {
  const cases: [string, number][] = [
    ['100MB', 100 * MiB],
    ['100MB/s', 100 * MiB],
    ['1.5GB/s', 1.5 * GiB],
    ['100 MiB / s', 100 * MiB],
    [' 64kb/S ', 64 * 1024],
    ['65536', 65536],
    ['65536/s', 65536],
    ['2 megabytes/s', 2 * MiB],
    ['0', 0],
    ['0/s', 0],
    ['0MB/s', 0],
  ];
  for (const [text, bytes] of cases) assert.equal(parseRate(text), bytes, text);
});

test('parseRate rejects what is not a rate, quoting the text', () => {
  for (const text of ['', '/s', 'MB/s', '100MB/h', '100MB/s/s', '100 MBps', '100MB/', '-1MB/s', '1.5/s', 'fast']) {
    assert.throws(() => parseRate(text), (err: Error) => {
      assert.equal(err.message, `${JSON.stringify(text)} is not a rate: expected a size a second, such as 100MB/s or 1.5GB/s`);
      return true;
    }, text);
  }
  assert.throws(() => parseRate('1EB/s'), /^Error: "1EB\/s" is too large$/);
  assert.equal(formatRate(64 * 1024), '64KiB/s');
});

test('parseDuration reads ms, s and m; a bare number is seconds', () => {
  const cases: [string, number][] = [
    ['500ms', 500],
    ['10s', 10_000],
    ['2m', 120_000],
    ['1.5s', 1500],
    ['30', 30_000],
    ['0.1', 100],
    ['.5m', 30_000],
    ['5.s', 5000],
    [' 10 S ', 10_000],
    ['250MS', 250],
    ['10M', 600_000],
    ['1.0004s', 1000],
    ['2.5ms', 3],
    ['0', 0],
    ['0010s', 10_000],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

test('parseDuration rejects what is not a duration, quoting the text', () => {
  for (const text of ['', '  ', 's', '10 sec', '1h', '10us', '-5s', '+5s', '1e3ms', '1,5s', '10s5', '5 m s', '10ss', '1m30s']) {
    assert.throws(() => parseDuration(text), (err: Error) => {
      assert.equal(err.message, `${JSON.stringify(text)} is not a duration: expected a number and a unit ms, s or m, such as 500ms, 10s or 2m`);
      return true;
    }, text);
  }
  assert.throws(() => parseDuration('9'.repeat(400)), /is too long/);
});

test('formatMilliseconds uses the largest unit that shows the value whole', () => {
  assert.equal(formatMilliseconds(100), '100ms');
  assert.equal(formatMilliseconds(1000), '1s');
  assert.equal(formatMilliseconds(1500), '1.5s');
  assert.equal(formatMilliseconds(90_000), '90s');
  assert.equal(formatMilliseconds(600_000), '10m');
  assert.equal(formatMilliseconds(3_600_000), '60m');
});

/** Whether `parse` accepts the syntax of `text` (a number too large for it still counts). */
function parses(parse: (text: string) => number, text: string): boolean {
  try {
    parse(text);
    return true;
  } catch (err) {
    return /too large|too long/.test((err as Error).message);
  }
}

test("the schema's duration and bandwidth patterns accept exactly what parseDuration and parseRate accept", () => {
  const schema = JSON.parse(readFileSync(new URL('../../schemas/plugin-config.schema.json', import.meta.url), 'utf8'));
  const options = schema.properties.options.properties;
  for (const [a, b] of [['connect_timeout', 'request_timeout'], ['backup_max_bandwidth', 'restore_max_bandwidth']]) {
    assert.equal(options[a].pattern, options[b].pattern, `${a} and ${b}`);
  }
  // The empty text is the schema's "take the default", not a value for the parsers.
  const duration = new RegExp(options.connect_timeout.pattern.replace(/^\^\$\|/, ''), 'u');
  const durations = ['500ms', '10s', '2m', '1.5s', '30', '.5m', '5.s', ' 10 S ', '250MS', '10M', '0', '9'.repeat(400),
    '  ', 's', '10 sec', '1h', '10us', '-5s', '+5s', '1e3ms', '1,5s', '10s5', '5 m s', '10ss', '1m30s', 'ms5'];
  for (const text of durations) assert.equal(duration.test(text), parses(parseDuration, text), JSON.stringify(text));

  const rate = new RegExp(options.backup_max_bandwidth.pattern.replace(/^\^\$\|/, ''), 'u');
  const rates = ['100MB', '100MB/s', '1.5GB/s', '100 MiB / s', ' 64kb/S ', '65536', '65536/s', '2 megabytes/s', '0', '0/s',
    '1EB/s', '/s', 'MB/s', '100MB/h', '100MB/s/s', '100 MBps', '100MB/', '-1MB/s', '1.5/s', 'fast', '100M/s', '5 MB MB/s'];
  for (const text of rates) assert.equal(rate.test(text), parses(parseRate, text), JSON.stringify(text));
});
