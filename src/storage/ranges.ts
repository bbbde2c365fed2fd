/**
 * How restore_data_subset fetches its ranges. A filtered restore of many small tables names
 * ranges by the million, most of them a few hundred bytes apart: one GET each would take hours.
 * Ranges whose gap is below MERGE_GAP_BYTES are fetched together by one ranged GET of at most a
 * part (the gap's bytes are read and dropped), and a range larger than a part is split into
 * parts, so memory stays bounded by part size x concurrency as for restore_data.
 */
import type { Range } from './download.js';

/**
 * Below this gap two ranges share a GET. Reading a gap costs its bytes; a request costs a round
 * trip, in which S3 sends some megabytes on one connection: gaps of up to 1 MiB are cheaper read.
 */
export const MERGE_GAP_BYTES = 1024 * 1024;

/** One ranged GET: the bytes [start, end) of the object, holding pieces[first, last) of the plan. */
export interface RangeGet extends Range {
  first: number;
  last: number;
}

export interface RangePlan {
  /** The requested ranges, none larger than a part, in order. */
  pieces: Range[];
  /** The GETs, in order; each at most a part long. */
  gets: RangeGet[];
  /** Bytes requested (what is written). */
  bytes: number;
}

/** `ranges` ascend and do not overlap (parseOffsets checks that). */
export function planRangeGets(ranges: readonly Range[], partSize: number, maxGap = MERGE_GAP_BYTES): RangePlan {
  const pieces: Range[] = [];
  let bytes = 0;
  for (const r of ranges) {
    bytes += r.end - r.start;
    if (r.end - r.start <= partSize) pieces.push(r);
    else for (let s = r.start; s < r.end; s += partSize) pieces.push({ start: s, end: Math.min(r.end, s + partSize) });
  }
  const gets: RangeGet[] = [];
  let current: RangeGet | undefined;
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (current && p.start - current.end < maxGap && p.end - current.start <= partSize) {
      current.end = p.end;
      current.last = i + 1;
    } else {
      current = { start: p.start, end: p.end, first: i, last: i + 1 };
      gets.push(current);
    }
  }
  return { pieces, gets, bytes };
}

/**
 * Moves the requested pieces of one GET's bytes (`data`, from the object's offset `get.start`)
 * to the front of `data`, in order, and returns that part of it: the bytes to write.
 */
export function selectPieces(data: Buffer, get: RangeGet, pieces: readonly Range[]): Buffer {
  let written = 0;
  for (let i = get.first; i < get.last; i++) {
    const p = pieces[i]!;
    const from = p.start - get.start;
    const length = p.end - p.start;
    if (from !== written) data.copy(data, written, from, from + length); // memmove: the target never passes the source
    written += length;
  }
  return data.subarray(0, written);
}
