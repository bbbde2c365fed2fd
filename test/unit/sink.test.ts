import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { DescriptorSink } from '../../src/storage/sink.js';

test('DescriptorSink: small first write at once, then large writes, all bytes in order, nothing through the fallback', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-'));
  try {
    const file = join(dir, 'out');
    const fd = openSync(file, 'w');
    const chunks = [Buffer.from('head'), Buffer.alloc(3 << 20, 7), Buffer.from('tail')];
    let fallbacks = 0;
    const sink = new DescriptorSink(fd, 'out', () => (fallbacks++, new PassThrough()));
    for (const c of chunks) await sink.write(c);
    await sink.flush();
    closeSync(fd);
    assert.deepEqual(readFileSync(file), Buffer.concat(chunks));
    assert.equal(fallbacks, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('DescriptorSink: a write to a closed descriptor fails naming the sink', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-'));
  try {
    const fd = openSync(join(dir, 'out'), 'w');
    closeSync(fd);
    const sink = new DescriptorSink(fd, 'stdout', () => new PassThrough());
    await assert.rejects(sink.write(Buffer.alloc(1 << 20)), /^Error: writing to stdout: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
