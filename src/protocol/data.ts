/**
 * The data path. Nothing but data ever reaches stdout here.
 *   backup_data <config> <path>: stdin to the object for <path>, streamed.
 *   restore_data <config> <path>: the object's exact bytes to stdout.
 *   restore_data_subset <config> <path> <offsets_file>: given byte ranges of it, concatenated.
 */
import { fstatSync, readFileSync, statSync } from 'node:fs';
import { log } from '../log/gplog.js';
import { keyForPath, s3Url } from '../storage/keys.js';
import { DescriptorSink } from '../storage/sink.js';
import { FdSource, PipeSource, type PartSource } from '../storage/source.js';
import { openContext } from './context.js';
import { ensureRetention } from './object-lock.js';
import { uploadNote } from './encryption.js';
import { restoreAnyObject, restoreAnySubset, uploadAsConfigured } from './dedup.js';
import { PluginError } from '../errors.js';
import { readOffsetsFile } from './offsets.js';
import { requireOpenStream } from './stdio.js';
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
  // Bun's net.Socket ignores `onread` on a descriptor (PipeSource would read nothing): there, a pipe
  // is read like a file, by reads in the thread pool straight into the part buffer.
  const eventLoopPipe = (stat.isFIFO() || stat.isSocket()) && process.versions.bun === undefined;
  return eventLoopPipe ? new PipeSource(0, signal, refuseIfOrphaned) : new FdSource(0, signal, refuseIfOrphaned);
}

/**
 * A config that is stdin (/dev/stdin, /proc/self/fd/0, or the very file redirected in) would
 * be read as the config and leave the data stream empty or consumed: refused before it is read.
 */
function refuseConfigOnStdin(configPath: string): void {
  let same = false;
  try {
    const config = statSync(configPath);
    const stdin = fstatSync(0);
    same = config.dev === stdin.dev && config.ino === stdin.ino;
  } catch {
    return; // the config reader says what is wrong with the file
  }
  if (same) throw new PluginError(`backup_data: the plugin config ${configPath} is stdin, which carries the data to back up: give the config file's own path`);
}

export async function backupData([configPath, dataPath]: string[]): Promise<void> {
  requireOpenStream('backup_data', 'stdin');
  refuseConfigOnStdin(configPath);
  const { config, store, signal } = await openContext(configPath, c => c.backupConcurrency);
  const key = keyForPath(config.folder, dataPath);
  const started = Date.now();
  const { bytes, parts } = await transferring('uploading', key, async () => {
    const result = await uploadAsConfigured(
      config,
      store,
      key,
      stdinSource(signal),
      { partSize: config.backupPartSize, concurrency: config.backupConcurrency, signal },
      true,
    );
    await ensureRetention(config, store, key, result.parts);
    return result;
  });
  const detail = [`to ${s3Url(store.bucket, key)} in ${parts} part(s)`, uploadNote(config)].filter(Boolean).join(', ');
  log.info(transferLine('Uploaded', bytes, key, started, { file: true, detail }));
}

export async function restoreData([configPath, dataPath]: string[]): Promise<void> {
  requireOpenStream('restore_data', 'stdout');
  const { config, store, signal } = await openContext(configPath, c => c.restoreConcurrency);
  const key = keyForPath(config.folder, dataPath);
  const started = Date.now();
  const stdoutSink = new DescriptorSink(1, 'stdout', () => process.stdout, signal);
  const { bytes, note } = await transferring('downloading', key, async () => {
    const restored = await restoreAnyObject(config, store, key, stdoutSink, {
      partSize: config.restorePartSize,
      concurrency: config.restoreConcurrency,
      signal,
      retries: config.maxRetries,
    });
    await stdoutSink.flush();
    return restored;
  });
  const detail = [`from ${s3Url(store.bucket, key)} to stdout`, note].filter(Boolean).join(', ');
  log.info(transferLine('Downloaded', bytes, key, started, { file: true, detail }));
}

export async function restoreDataSubset([configPath, dataPath, offsetsPath]: string[]): Promise<void> {
  requireOpenStream('restore_data_subset', 'stdout');
  const ranges = readOffsetsFile(offsetsPath);
  const { config, store, signal } = await openContext(configPath, c => c.restoreConcurrency);
  const key = keyForPath(config.folder, dataPath);
  const head = await store.headObject(key);
  if (head === undefined) throw new PluginError(`restore_data_subset: ${s3Url(store.bucket, key)}: no such object`);
  const started = Date.now();
  const stdoutSink = new DescriptorSink(1, 'stdout', () => process.stdout, signal);
  const { bytes, note } = await transferring('downloading', key, async () => {
    const restored = await restoreAnySubset(config, store, key, head.size, ranges, stdoutSink, {
      partSize: config.restorePartSize,
      concurrency: config.restoreConcurrency,
      signal,
      retries: config.maxRetries,
    });
    await stdoutSink.flush();
    return restored;
  });
  const detail = [`${ranges.length} range(s) of ${s3Url(store.bucket, key)} to stdout`, note].filter(Boolean).join(', ');
  log.info(transferLine('Downloaded', bytes, key, started, { file: true, detail }));
}
