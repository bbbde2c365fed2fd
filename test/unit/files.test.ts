import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';
import { tempPathFor } from '../../src/protocol/files.js';

test("restore_file's temporary file: in the target's directory, with a name that fits beside a 255-byte name", () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpb-files-'));
  try {
    const target = join(dir, 'x'.repeat(255));
    const temp = tempPathFor(target);
    assert.equal(dirname(temp), dir);
    assert.notEqual(temp, target);
    assert.ok(basename(temp).startsWith('.'));
    closeSync(openSync(temp, 'wx')); // the file system takes the name
    closeSync(openSync(target, 'wx'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
