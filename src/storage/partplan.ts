/**
 * Part sizes for a stream of unknown length. S3 allows at most 10,000 parts
 * of 5 MiB to 5 GiB each (the last may be smaller), and parts need not be
 * equal. Parts start at the configured size and double every `groupSize`
 * parts, with the largest group size that still lets 10,000 parts reach the
 * 5 TiB object limit: any stream S3 can hold fits, and parts stay at the
 * configured size for as long as possible (all of a stream up to
 * groupSize x partSize).
 */
import { MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, type PartLayout } from './store.js';

export interface PartPlan {
  /** Size of part n (1-based). */
  sizeOf(partNumber: number): number;
  /** Parts per doubling step. */
  groupSize: number;
}

function sizeAt(base: number, groupSize: number, partNumber: number): number {
  const doublings = Math.floor((partNumber - 1) / groupSize);
  return doublings >= 31 ? MAX_PART_SIZE : Math.min(MAX_PART_SIZE, base * 2 ** doublings);
}

function capacity(base: number, groupSize: number): number {
  let total = 0;
  for (let first = 1; first <= MAX_PARTS; first += groupSize) {
    const count = Math.min(groupSize, MAX_PARTS - first + 1);
    total += count * sizeAt(base, groupSize, first);
  }
  return total;
}

/** Size of part `partNumber` (1-based) of an upload that used `layout`. */
export function partSizeIn(layout: PartLayout, partNumber: number): number {
  return sizeAt(layout.partSize, layout.partsPerDoubling, partNumber);
}

export function planParts(baseSize: number): PartPlan {
  // capacity() falls as groupSize grows: find the largest groupSize that still reaches 5 TiB.
  let lo = 1;
  let hi = MAX_PARTS;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (capacity(baseSize, mid) >= MAX_OBJECT_SIZE) lo = mid;
    else hi = mid - 1;
  }
  const groupSize = lo;
  return { groupSize, sizeOf: n => sizeAt(baseSize, groupSize, n) };
}
