/** Small input files (config, offsets) must be regular files, read with a bound. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readRegularFile } from '../../src/config/regular-file.js';

const dir = mkdtempSync(join(tmpdir(), 'gpb-regular-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const read = (path: string, max = 16) => readRegularFile(path, max, `reading ${path}`, 'too large');

test('a regular file, directly or through a symlink, is read whole; one byte over the bound is refused', () => {
  const file = join(dir, 'f');
  writeFileSync(file, '0123456789abcdef');
  symlinkSync(file, join(dir, 'link'));
  assert.equal(read(file).bytes.toString(), '0123456789abcdef');
  assert.equal(read(join(dir, 'link')).bytes.toString(), '0123456789abcdef');
  assert.throws(() => read(file, 15), /^PluginError: too large$/);
});

test('a device, a FIFO without a writer and a directory are refused without reading (and without hanging)', () => {
  const fifo = join(dir, 'fifo');
  spawnSync('mkfifo', [fifo]);
  assert.throws(() => read('/dev/zero'), /reading \/dev\/zero: it is a character device, not a regular file/);
  assert.throws(() => read(fifo), /it is a FIFO \(named pipe\), not a regular file/);
  assert.throws(() => read(dir), new RegExp(`reading ${dir}: it is a directory$`));
  assert.throws(() => read(join(dir, 'missing')), /reading .*missing: no such file$/);
});
