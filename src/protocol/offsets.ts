/**
 * The offsets file gpbackup_helper hands to restore_data_subset: one line
 * `N s1 e1 ... sN eN` (decimal, single spaces, usually no trailing newline);
 * ends are exclusive and the ranges ascend (table OID order); an empty range
 * (start = end, a table with no rows on the segment) is dropped. Anything else
 * is refused before a byte is written.
 *
 * A filtered restore of many small tables names a million ranges or more (some 20 MB of text):
 * the file is scanned byte by byte, without splitting it into strings, in well under a second.
 */
import { readRegularFile } from '../config/regular-file.js';
import type { Range } from '../storage/download.js';
import { PluginError } from '../errors.js';

/** Room for some six million ranges of 10-digit offsets, far beyond any segment's table count. */
export const MAX_OFFSETS_FILE_BYTES = 128 * 1024 * 1024;

/** The offsets file's ranges; every problem with the file is one line of our own. */
export function readOffsetsFile(path: string): Range[] {
  const { bytes } = readRegularFile(
    path,
    MAX_OFFSETS_FILE_BYTES,
    `restore_data_subset: cannot read offsets file ${path}`,
    `restore_data_subset: offsets file ${path} is larger than 128 MiB: is it the right file?`,
  );
  return parseOffsets(bytes, path);
}

/** Space, tab, newline, vertical tab, form feed, carriage return. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

export function parseOffsets(input: string | Buffer, source: string): Range[] {
  const fail = (why: string): never => {
    throw new PluginError(`restore_data_subset: malformed offsets file ${source}: ${why}`);
  };
  const text = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  // Numbers go straight into the ranges (no array of every number: a million ranges would hold
  // two million of them at once). The count comes first; the rest is checked against it.
  let count = -1;
  let found = 0;
  let ranges: Range[] = [];
  let kept = 0;
  let start = 0;
  let prevStart = -1;
  let prevEnd = -1;
  let i = 0;
  while (i < text.length) {
    if (isSpace(text[i]!)) {
      i++;
      continue;
    }
    const wordStart = i;
    let n = 0;
    let digitsOnly = true;
    let tooLarge = false;
    for (; i < text.length && !isSpace(text[i]!); i++) {
      const d = text[i]! - 0x30;
      if (d < 0 || d > 9) digitsOnly = false;
      else if (n > (Number.MAX_SAFE_INTEGER - d) / 10) tooLarge = true;
      else n = n * 10 + d;
    }
    if (!digitsOnly) {
      const word = text.subarray(wordStart, Math.min(i, wordStart + 40)).toString('utf8');
      fail(`"${word}" is not a non-negative whole number`);
    }
    if (tooLarge) fail('a number is too large');
    if (count < 0) {
      count = n;
      if (count === 0) fail('it names no ranges');
      ranges = new Array(Math.min(count, text.length));
      continue;
    }
    found++;
    if (found > 2 * count) continue; // too many: reported below, with the count
    if (found % 2 === 1) {
      start = n;
      continue;
    }
    const r = found / 2;
    const end = n;
    if (end < start) fail(`range ${r} (${start} ${end}) ends before it starts`);
    if (start < prevEnd) fail(`range ${r} (${start} ${end}) overlaps or precedes range ${r - 1} (${prevStart} ${prevEnd})`);
    // gpbackup_helper names an empty range (start = end) for a table with no rows on the segment: no bytes to read.
    if (end > start) ranges[kept++] = { start, end };
    prevStart = start;
    prevEnd = end;
  }
  if (count < 0) fail('it is empty');
  if (found !== 2 * count) fail(`it says ${count} ranges but holds ${found} numbers after the count (expected ${2 * count})`);
  ranges.length = kept;
  return ranges;
}

/** Refuses ranges past the object's end, before any output. */
export function checkRangesWithin(ranges: Range[], size: number, what: string): void {
  const last = ranges[ranges.length - 1];
  if (last && last.end > size) {
    throw new PluginError(
      `restore_data_subset: range ${last.start}-${last.end} is beyond the end of ${what} (${size} bytes)`,
    );
  }
}
