/** restore_data_subset's plan: ranges close together share a GET, only their bytes are written, in order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseOffsets } from '../../src/protocol/offsets.js';
import { downloadRanges } from '../../src/storage/download.js';
import { MERGE_GAP_BYTES, planRangeGets, selectPieces } from '../../src/storage/ranges.js';
import type { Sink } from '../../src/storage/sink.js';
import { MIN_PART_SIZE } from '../../src/storage/store.js';
import { MemoryStore } from '../support/memory-store.js';
import { patternBytes } from '../support/plugin.js';

const P = MIN_PART_SIZE;
const MiB = 1024 * 1024;

class MemorySink implements Sink {
  chunks: Buffer[] = [];
  async write(buf: Buffer): Promise<void> {
    this.chunks.push(Buffer.from(buf));
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

test('ranges with gaps below the threshold share a GET of at most a part; a wide gap or a full part starts a new one', () => {
  const plan = planRangeGets(
    [
      { start: 0, end: 10 },
      { start: 20, end: 30 }, // gap 10: merged
      { start: 30 + MERGE_GAP_BYTES, end: 40 + MERGE_GAP_BYTES }, // gap of exactly the threshold: a new GET
      { start: 2 * P, end: 4 * P + 5 }, // larger than a part: split into three pieces, each its own GET
    ],
    P,
  );
  assert.deepEqual(
    plan.gets.map(g => [g.start, g.end, g.first, g.last]),
    [
      [0, 30, 0, 2],
      [30 + MERGE_GAP_BYTES, 40 + MERGE_GAP_BYTES, 2, 3],
      [2 * P, 3 * P, 3, 4],
      [3 * P, 4 * P, 4, 5],
      [4 * P, 4 * P + 5, 5, 6],
    ],
  );
  assert.equal(plan.bytes, 10 + 10 + 10 + 2 * P + 5);
  for (const g of plan.gets) assert.ok(g.end - g.start <= P);
});

test('selectPieces moves the requested bytes to the front, in order', () => {
  const data = Buffer.from('0123456789abcdef');
  const plan = planRangeGets([{ start: 100, end: 102 }, { start: 105, end: 106 }, { start: 110, end: 116 }], 1024);
  assert.equal(plan.gets.length, 1);
  assert.equal(selectPieces(data.subarray(0, 16), plan.gets[0]!, plan.pieces).toString(), '015abcdef');
});

test('downloadRanges: a million small ranges over 100 MiB are a few dozen GETs, the right bytes in order, in seconds', async () => {
  const size = 100 * MiB;
  const object = patternBytes(size, 5);
  const store = new MemoryStore();
  store.objects.set('k', object);
  // Ranges of 1 to 64 bytes with gaps of 0 to 64 bytes, as a filtered restore of small tables has them.
  const words: number[] = [];
  let at = 0;
  let seed = 1;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 1_000_000 && at < size - 200; i++) {
    at += next() % 65;
    const end = at + 1 + (next() % 64);
    words.push(at, end);
    at = end;
  }
  const text = Buffer.from(`${words.length / 2} ${words.join(' ')}`);
  const started = Date.now();
  const ranges = parseOffsets(text, 'offsets');
  const parsedIn = Date.now() - started;
  const sink = new MemorySink();
  const bytes = await downloadRanges(store, 'k', ranges, sink, { partSize: P, concurrency: 3 });
  const took = Date.now() - started;
  const gets = store.count('get');
  assert.equal(ranges.length, 1_000_000);
  assert.ok(gets <= Math.ceil(size / P) + 1, `${gets} GETs`);
  let expectedLength = 0;
  for (const r of ranges) expectedLength += r.end - r.start;
  assert.equal(bytes, expectedLength);
  const out = sink.data;
  assert.equal(out.length, expectedLength);
  let o = 0;
  for (const r of ranges) {
    if (object.compare(out, o, o + r.end - r.start, r.start, r.end) !== 0) assert.fail(`range ${r.start}-${r.end} differs`);
    o += r.end - r.start;
  }
  assert.ok(parsedIn < 5_000, `parsing took ${parsedIn} ms`);
  assert.ok(took < 20_000, `took ${took} ms`);
});

test('downloadRanges: at most `concurrency` GETs in flight', async () => {
  const store = new MemoryStore();
  store.objects.set('k', patternBytes(6 * P, 2));
  store.latencyMs = 20;
  const ranges = Array.from({ length: 6 }, (_, i) => ({ start: i * P + 10, end: i * P + 20 }));
  const bytes = await downloadRanges(store, 'k', ranges, new MemorySink(), { partSize: P, concurrency: 2 });
  assert.equal(bytes, 60);
  assert.equal(store.count('get'), 6);
  assert.ok(store.maxInFlight <= 2, `${store.maxInFlight} in flight`);
});
