/**
 * Streams a source of unknown length to one object, as @aws-sdk/lib-storage's
 * Upload does, with bounded memory: parts are read one after another and at
 * most `concurrency` are in flight. A stream that ends within the first part
 * is one PutObject. On any failure or abort the multipart upload is aborted,
 * so no object and no orphaned parts are left.
 */
import { log } from '../log/gplog.js';
import { PluginError } from '../errors.js';
import { crc32Combine } from './crc32.js';
import { s3Url } from './keys.js';
import { planParts } from './partplan.js';
import { BufferPool } from './pool.js';
import type { Part, PartSource } from './source.js';
import { MAX_PARTS, type CompletedPart, type ObjectStore } from './store.js';

export interface TransferOptions {
  partSize: number;
  concurrency: number;
  signal?: AbortSignal;
  /** Resumes of a download piece whose body was cut off (the store retries whole requests itself). */
  retries?: number;
}

/** An interrupted upload gets one abort request of at most this long: the process must end within seconds. */
export const INTERRUPTED_ABORT_MS = 2_000;

/** Multipart uploads begun and neither completed nor aborted (upload ID to s3:// URL): what an exit now would leave behind. */
export const uploadsInProgress = new Map<string, string>();

export interface UploadResult {
  bytes: number;
  parts: number;
}

export async function uploadStream(
  store: ObjectStore,
  key: string,
  reader: PartSource,
  opts: TransferOptions,
): Promise<UploadResult> {
  const plan = planParts(opts.partSize);
  const pool = new BufferPool(plan.sizeOf(1));
  const first = await reader.read(pool.take(plan.sizeOf(1)));
  if (await reader.atEnd()) {
    opts.signal?.throwIfAborted();
    await store.putObject(key, first.data, first.crc, opts.signal);
    return { bytes: first.data.length, parts: 1 };
  }

  const uploadId = await store.createMultipartUpload(key, { partSize: plan.sizeOf(1), partsPerDoubling: plan.groupSize });
  const url = s3Url(store.bucket, key);
  uploadsInProgress.set(uploadId, url);
  try {
    const result = await uploadParts(store, key, uploadId, reader, pool, first, opts, plan.sizeOf);
    uploadsInProgress.delete(uploadId);
    return result;
  } catch (err) {
    // Interrupted: one quick attempt, whatever the server does; otherwise with the usual retries.
    const interrupted = opts.signal?.aborted === true;
    try {
      await store.abortMultipartUpload(key, uploadId, interrupted ? { deadlineMs: INTERRUPTED_ABORT_MS } : undefined);
    } catch (abortErr) {
      log.warn(
        `multipart upload ${uploadId} of ${url} is left behind (aborting it failed: ${(abortErr as Error).message}): ` +
          'delete_backup of its backup, or a lifecycle rule, removes it',
      );
      throw new PluginError(`${(err as Error).message}; and aborting multipart upload ${uploadId} of ${url} failed too: ${(abortErr as Error).message}`);
    } finally {
      uploadsInProgress.delete(uploadId);
    }
    log.info(`multipart upload ${uploadId} of ${url} aborted: nothing is left behind`);
    throw err;
  }
}

async function uploadParts(
  store: ObjectStore,
  key: string,
  uploadId: string,
  reader: PartSource,
  pool: BufferPool,
  first: Part,
  opts: TransferOptions,
  sizeOf: (n: number) => number,
): Promise<UploadResult> {
  const done: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let inFlightBytes = 0;
  let failure: unknown;
  let bytes = 0;
  // Bytes held at once: the parts in flight and the one being read.
  const budget = (opts.concurrency + 1) * opts.partSize;
  // The first failed part cancels the others: the upload is lost anyway.
  const cancel = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, cancel.signal]) : cancel.signal;

  // The object's CRC-32, combined from the parts' in order: each byte is hashed once.
  let objectCrc = 0;
  const start = (partNumber: number, { data: body, crc: partCrc }: Part) => {
    inFlightBytes += body.length;
    bytes += body.length;
    objectCrc = crc32Combine(objectCrc, partCrc, body.length);
    const p: Promise<void> = store.uploadPart(key, uploadId, partNumber, body, partCrc, signal).then(
      etag => {
        done.push({ partNumber, etag, crc32: partCrc });
      },
      err => {
        failure ??= err;
        cancel.abort(err);
      },
    );
    const tracked = p.finally(() => {
      inFlight.delete(tracked);
      inFlightBytes -= body.length;
      pool.give(body);
    });
    inFlight.add(tracked);
  };

  let partNumber = 1;
  start(partNumber, first);
  try {
    while (failure === undefined && !(await reader.atEnd())) {
      partNumber++;
      if (partNumber > MAX_PARTS) {
        throw new PluginError(`uploading ${s3Url(store.bucket, key)}: the stream is larger than S3's 5 TiB object limit`);
      }
      const size = sizeOf(partNumber);
      // A part grown past the budget still gets one more in flight while it is read.
      const limit = Math.max(budget, 2 * size);
      while (
        failure === undefined &&
        inFlight.size > 0 &&
        (inFlight.size >= opts.concurrency || inFlightBytes + size > limit)
      ) {
        await Promise.race(inFlight);
      }
      if (failure !== undefined) break;
      start(partNumber, await reader.read(pool.take(size)));
    }
  } catch (err) {
    failure ??= err;
    cancel.abort(err);
  }
  // Let every part request settle before the caller aborts the upload.
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;

  signal.throwIfAborted();
  done.sort((a, b) => a.partNumber - b.partNumber);
  await store.completeMultipartUpload(key, uploadId, done, objectCrc);
  return { bytes, parts: done.length };
}
