/**
 * The offsets file gpbackup_helper hands to restore_data_subset: one line
 * `N s1 e1 ... sN eN` (decimal, single spaces, usually no trailing newline);
 * ends are exclusive and the ranges ascend (table OID order). Anything else
 * is refused before a byte is written.
 */
import type { Range } from '../storage/download.js';
import { PluginError } from './errors.js';

export function parseOffsets(text: string, source: string): Range[] {
  const fail = (why: string): never => {
    throw new PluginError(`restore_data_subset: malformed offsets file ${source}: ${why}`);
  };
  const words = text.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) fail('it is empty');
  const bad = words.find(w => !/^\d+$/.test(w));
  if (bad !== undefined) fail(`"${bad.slice(0, 40)}" is not a non-negative whole number`);
  const nums = words.map(Number);
  if (nums.some(n => !Number.isSafeInteger(n))) fail('a number is too large');
  const [count, ...bounds] = nums;
  if (count === 0) fail('it names no ranges');
  if (bounds.length !== 2 * count) fail(`it says ${count} ranges but holds ${bounds.length} numbers after the count (expected ${2 * count})`);
  const ranges: Range[] = [];
  for (let i = 0; i < count; i++) {
    const start = bounds[2 * i];
    const end = bounds[2 * i + 1];
    if (end <= start) fail(`range ${i + 1} (${start} ${end}) ends before it starts or is empty`);
    const prev = ranges[i - 1];
    if (prev && start < prev.end) fail(`range ${i + 1} (${start} ${end}) overlaps or precedes range ${i} (${prev.start} ${prev.end})`);
    ranges.push({ start, end });
  }
  return ranges;
}

/** Refuses ranges past the object's end, before any output. */
export function checkRangesWithin(ranges: Range[], size: number, what: string): void {
  const last = ranges[ranges.length - 1];
  if (last.end > size) {
    throw new PluginError(
      `restore_data_subset: range ${last.start}-${last.end} is beyond the end of ${what} (${size} bytes)`,
    );
  }
}
