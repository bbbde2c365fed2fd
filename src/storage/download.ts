/**
 * Parallel ranged GETs written strictly in order: at most `concurrency`
 * requests in flight, and the sink's pace holds the fetching back. The first error cancels every
 * request and stops output: nothing after a failed piece is written.
 */
import { PluginError } from '../protocol/errors.js';
import { s3Url } from './keys.js';
import type { Sink } from './sink.js';
import type { ObjectStore, RangeResponse } from './store.js';
import type { TransferOptions } from './upload.js';

export interface Range {
  start: number;
  /** Exclusive. */
  end: number;
}

async function collect(res: RangeResponse, what: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(res.length);
  let filled = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    if (filled + chunk.length > res.length) {
      res.body.destroy();
      throw new PluginError(`downloading ${what}: the server sent more bytes than asked for`);
    }
    buf.set(chunk, filled);
    filled += chunk.length;
  }
  if (filled !== res.length) {
    throw new PluginError(`downloading ${what}: the connection ended after ${filled} of ${res.length} bytes`);
  }
  return buf;
}

/** Splits ranges into pieces of at most partSize bytes. */
export function splitRanges(ranges: Range[], partSize: number): Range[] {
  const pieces: Range[] = [];
  for (const r of ranges) {
    for (let s = r.start; s < r.end; s += partSize) pieces.push({ start: s, end: Math.min(r.end, s + partSize) });
  }
  return pieces;
}

/**
 * Fetches pieces in parallel and writes them in order. `first`, if given, is
 * the already-started fetch of pieces[0].
 */
async function fetchInOrder(
  store: ObjectStore,
  key: string,
  pieces: Range[],
  sink: Sink,
  opts: TransferOptions,
  first?: (signal: AbortSignal) => Promise<Buffer>,
): Promise<number> {
  const cancel = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, cancel.signal]) : cancel.signal;
  const what = s3Url(store.bucket, key);
  const fetchPiece = async (p: Range): Promise<Buffer> => {
    const res = await store.getRange(key, p.start, p.end, signal);
    if (res.length !== p.end - p.start) {
      res.body.destroy();
      throw new PluginError(
        `downloading ${what}: bytes ${p.start}-${p.end - 1} are beyond the object's end (${res.size} bytes)`,
      );
    }
    return collect(res, what);
  };
  // At most `concurrency` requests in flight, and at most one more piece held
  // than that (the one being written): memory <= (concurrency + 1) x part size.
  const pending: Array<Promise<Buffer> | undefined> = [];
  let launched = 0;
  let inFlight = 0;
  let written = 0;
  let bytes = 0;
  const launch = () => {
    while (launched < pieces.length && inFlight < opts.concurrency && launched - written <= opts.concurrency) {
      const p = launched === 0 && first ? first(signal) : fetchPiece(pieces[launched]);
      inFlight++;
      const settled = p.finally(() => {
        inFlight--;
        launch();
      });
      settled.catch(() => {}); // handled when its turn comes; until then it must not be "unhandled"
      pending[launched++] = settled;
    }
  };
  try {
    for (; written < pieces.length; written++) {
      launch();
      const buf = await pending[written]!;
      pending[written] = undefined;
      signal.throwIfAborted();
      await sink.write(buf);
      bytes += buf.length;
    }
  } catch (err) {
    cancel.abort(err);
    throw err;
  }
  return bytes;
}

/**
 * The whole object. The first GET asks for the first part by range and learns
 * the size from its answer, so an object of up to one part is one request.
 */
export async function downloadObject(store: ObjectStore, key: string, sink: Sink, opts: TransferOptions): Promise<number> {
  const head = await store.getRange(key, 0, opts.partSize, opts.signal);
  if (head.size === 0) {
    head.body.destroy();
    return 0;
  }
  const what = s3Url(store.bucket, key);
  const pieces = splitRanges([{ start: 0, end: head.size }], opts.partSize);
  return fetchInOrder(store, key, pieces, sink, opts, () => collect(head, what));
}

/** Given byte ranges of the object, concatenated. */
export async function downloadRanges(
  store: ObjectStore,
  key: string,
  ranges: Range[],
  sink: Sink,
  opts: TransferOptions,
): Promise<number> {
  return fetchInOrder(store, key, splitRanges(ranges, opts.partSize), sink, opts);
}
