/**
 * The data path. Nothing but data ever reaches stdout here.
 *   backup_data <config> <path>: stdin to the object for <path>, streamed.
 *   restore_data <config> <path>: the object's exact bytes to stdout.
 *   restore_data_subset <config> <path> <offsets_file>: given byte ranges of it, concatenated.
 */
import { fstatSync, readFileSync } from 'node:fs';
import { log } from '../log/gplog.js';
import { downloadObject, downloadRanges } from '../storage/download.js';
import { keyForPath, s3Url } from '../storage/keys.js';
import { StreamSink } from '../storage/sink.js';
import { FdSource, PipeSource, type PartSource } from '../storage/source.js';
import { uploadStream } from '../storage/upload.js';
import { openContext } from './context.js';
import { PluginError } from './errors.js';
import { checkRangesWithin, parseOffsets } from './offsets.js';
import { transferLine, transferring } from './timing.js';

/**
 * stdin, read straight into the part buffers: a pipe or socket (gpbackup_helper, COPY ...
 * PROGRAM) through the event loop, anything else (a file) in large reads. Its end is refused
 * when the process that fed it has died: the plugin then belongs to another parent, and a
 * stream cut short must not become an object.
 */
/**
 * True when `pid` is exiting: the kernel closes a dying process's files (the write end of our
 * stdin) before it hands its children to a new parent, so at EOF the parent may still be ours.
 */
function isExiting(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false; // no /proc: the ppid check alone
  }
  // The fields after the parenthesised command name: the state is the first, the flags the seventh.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const PF_EXITING = 0x4;
  return fields[0] === 'Z' || fields[0] === 'X' || (Number(fields[6]) & PF_EXITING) !== 0;
}

function stdinSource(signal: AbortSignal): PartSource {
  const parent = process.ppid;
  const refuseIfOrphaned = () => {
    if (process.ppid !== parent || isExiting(parent)) {
      throw new PluginError(`backup_data: the process writing to stdin (pid ${parent}) exited before the stream ended; upload abandoned`);
    }
  };
  const stat = fstatSync(0);
  return stat.isFIFO() || stat.isSocket() ? new PipeSource(0, signal, refuseIfOrphaned) : new FdSource(0, signal, refuseIfOrphaned);
}

export async function backupData([configPath, dataPath]: string[]): Promise<void> {
  const { config, store, signal } = await openContext(configPath, c => c.backupConcurrency);
  const key = keyForPath(config.folder, dataPath);
  const started = Date.now();
  const { bytes, parts } = await transferring('uploading', key, () =>
    uploadStream(store, key, stdinSource(signal), {
      partSize: config.backupPartSize,
      concurrency: config.backupConcurrency,
      signal,
    }),
  );
  log.info(transferLine('Uploaded', bytes, key, started, { file: true, detail: `to ${s3Url(store.bucket, key)} in ${parts} part(s)` }));
}

export async function restoreData([configPath, dataPath]: string[]): Promise<void> {
  const { config, store, signal } = await openContext(configPath, c => c.restoreConcurrency);
  const key = keyForPath(config.folder, dataPath);
  const started = Date.now();
  const stdoutSink = new StreamSink(process.stdout, 'stdout', signal);
  const bytes = await transferring('downloading', key, async () => {
    const n = await downloadObject(store, key, stdoutSink, {
      partSize: config.restorePartSize,
      concurrency: config.restoreConcurrency,
      signal,
      retries: config.maxRetries,
    });
    await stdoutSink.flush();
    return n;
  });
  log.info(transferLine('Downloaded', bytes, key, started, { file: true, detail: `from ${s3Url(store.bucket, key)} to stdout` }));
}

export async function restoreDataSubset([configPath, dataPath, offsetsPath]: string[]): Promise<void> {
  let text: string;
  try {
    text = readFileSync(offsetsPath, 'utf8');
  } catch (err) {
    throw new PluginError(`restore_data_subset: cannot read offsets file ${offsetsPath}: ${(err as Error).message}`);
  }
  const ranges = parseOffsets(text, offsetsPath);
  const { config, store, signal } = await openContext(configPath, c => c.restoreConcurrency);
  const key = keyForPath(config.folder, dataPath);
  const head = await store.headObject(key);
  if (head === undefined) throw new PluginError(`restore_data_subset: ${s3Url(store.bucket, key)}: no such object`);
  checkRangesWithin(ranges, head.size, s3Url(store.bucket, key));
  const started = Date.now();
  const stdoutSink = new StreamSink(process.stdout, 'stdout', signal);
  const bytes = await transferring('downloading', key, async () => {
    const n = await downloadRanges(store, key, ranges, stdoutSink, {
      partSize: config.restorePartSize,
      concurrency: config.restoreConcurrency,
      signal,
      retries: config.maxRetries,
    });
    await stdoutSink.flush();
    return n;
  });
  log.info(transferLine('Downloaded', bytes, key, started, { file: true, detail: `${ranges.length} range(s) of ${s3Url(store.bucket, key)} to stdout` }));
}
