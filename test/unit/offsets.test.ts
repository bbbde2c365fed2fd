import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRangesWithin, parseOffsets } from '../../src/protocol/offsets.js';

test('offsets: the helper format, with or without a trailing newline', () => {
  assert.deepEqual(parseOffsets('1 3 10', 'f'), [{ start: 3, end: 10 }]);
  assert.deepEqual(parseOffsets('2 0 700000 900000 900001\n', 'f'), [
    { start: 0, end: 700000 },
    { start: 900000, end: 900001 },
  ]);
  assert.deepEqual(parseOffsets('2 0 5 5 9', 'f'), [
    { start: 0, end: 5 },
    { start: 5, end: 9 },
  ]);
});

test('offsets: an empty range (a table with no rows on the segment) names no bytes and is dropped', () => {
  assert.deepEqual(parseOffsets('3 0 5 5 5 5 9', 'f'), [
    { start: 0, end: 5 },
    { start: 5, end: 9 },
  ]);
  assert.deepEqual(parseOffsets('1 7 7', 'f'), []);
  assert.throws(() => parseOffsets('2 0 5 3 3', 'f'), /range 2 \(3 3\) overlaps or precedes range 1 \(0 5\)/);
  checkRangesWithin([], 0, 'obj');
});

test('offsets: malformed files are refused with the reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['   \n', /empty/],
    ['0', /no ranges/],
    ['2 0 5', /says 2 ranges but holds 2 numbers/],
    ['1 0 5 7', /says 1 ranges but holds 3/],
    ['1 9 5', /ends before it starts/],
    ['2 10 20 15 30', /overlaps or precedes/],
    ['2 10 20 0 5', /overlaps or precedes/],
    ['1 -3 5', /not a non-negative whole number/],
    ['1 0x10 20', /not a non-negative whole number/],
    ['1 a b', /not a non-negative whole number/],
    ['1 0 99999999999999999999', /too large/],
    ['1 1.5 3', /not a non-negative whole number/],
  ];
  for (const [text, re] of cases) assert.throws(() => parseOffsets(text, '/tmp/o'), re, JSON.stringify(text));
  assert.throws(() => parseOffsets('x', '/tmp/gprestore_offsets_1'), /malformed offsets file \/tmp\/gprestore_offsets_1/);
});

test('offsets: ranges past the end of the object are refused', () => {
  checkRangesWithin([{ start: 0, end: 10 }], 10, 'obj');
  assert.throws(() => checkRangesWithin([{ start: 0, end: 11 }], 10, 'obj'), /beyond the end of obj \(10 bytes\)/);
});
