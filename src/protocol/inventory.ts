/**
 * Commands a DBA runs by hand (gpbackup never calls them); neither writes to the bucket:
 *   list_backups <config> [--json]
 *   verify_backup <config> <timestamp> [--deep] [--json]
 * Each object is read as a restore reads it (restoreObject: decrypted and verified), into memory
 * for the small files the commands parse, into nothing for --deep.
 */
import type { PluginConfig } from '../config/types.js';
import { log } from '../log/gplog.js';
import { PluginError, describeError } from '../errors.js';
import { cleanFolder, s3Url } from '../storage/keys.js';
import { MemorySink, type Sink } from '../storage/sink.js';
import type { ObjectStore } from '../storage/store.js';
import { listBackups as listAll, type ObjectReader } from '../inventory/list.js';
import { StderrProgress } from '../inventory/progress.js';
import { backupTable, verifyText } from '../inventory/render.js';
import { type DeepChecker, verifyBackup as verifyAll } from '../inventory/verify.js';
import { openContext } from './context.js';
import { readOptions as chunkReadOptions, restoreAnyObject } from './dedup.js';
import { restoreObject } from './encryption.js';
import { UsageError } from './errors.js';

/** Small files read at once by list_backups (two per backup). */
const LIST_READS = 16;
/** The smallest piece a read asks for: a small file is one GET of its size. */
const MIN_READ = 64 * 1024;

/** Splits `args` into the positional arguments and the flags, refusing any flag not in `allowed`. */
function parseArgs(command: string, args: string[], allowed: string[], positional: number): { positional: string[]; flags: Set<string> } {
  const flags = new Set<string>();
  const rest: string[] = [];
  for (const a of args) {
    if (a.startsWith('--')) {
      if (!allowed.includes(a)) throw new UsageError(`${command}: unknown option ${a} (it takes ${allowed.join(', ')})`);
      flags.add(a);
    } else rest.push(a);
  }
  if (rest.length !== positional) throw new UsageError(`${command} takes ${positional} argument(s) besides its options, got ${rest.length}`);
  return { positional: rest, flags };
}

const discard: Sink = { write: async () => {} };

function readOptions(config: PluginConfig, size: number, concurrency: number, signal: AbortSignal) {
  return {
    partSize: Math.min(config.restorePartSize, Math.max(MIN_READ, size)),
    concurrency,
    signal,
    retries: config.maxRetries,
  };
}

function objectReader(config: PluginConfig, store: ObjectStore, signal: AbortSignal): ObjectReader {
  return {
    async read(key, size) {
      const sink = new MemorySink();
      const r = await restoreAnyObject(config, store, key, sink, readOptions(config, size, 1, signal));
      return { data: sink.bytes(), encrypted: r.decrypted, deduplicated: r.deduplicated };
    },
  };
}

function deepChecker(config: PluginConfig, store: ObjectStore, signal: AbortSignal): DeepChecker {
  return {
    async check(key, size, concurrency) {
      const r = await restoreObject(config, store, key, discard, readOptions(config, size, concurrency, signal), true);
      const v = r.verification;
      return { check: v.by, decrypted: r.decrypted, unverified: v.by === 'size' ? v.unverified : undefined };
    },
  };
}

/** Writes all of `text` to stdout before the process may exit. */
function printOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, err => (err ? reject(err) : resolve())));
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

export async function listBackups(args: string[]): Promise<void> {
  const { positional, flags } = parseArgs('list_backups', args, ['--json'], 1);
  const { config, store, signal } = await openContext(positional[0]!, () => LIST_READS, true);
  const folderPrefix = `${cleanFolder(config.folder)}/`;
  let lockInfo = false;
  try {
    lockInfo = (await store.objectLockEnabled?.()) === true;
  } catch (err) {
    log.warn(`list_backups: cannot read the object lock configuration of bucket ${config.bucket} (retention not shown): ${describeError(err)}`);
  }
  const started = Date.now();
  const backups = await listAll(store, folderPrefix, objectReader(config, store, signal), { concurrency: LIST_READS, lockInfo });
  log.info(`list_backups: ${backups.length} backup(s) under ${s3Url(store.bucket, folderPrefix)} in ${Date.now() - started} ms`);
  if (flags.has('--json')) return printOut(json(backups));
  if (backups.length === 0) {
    process.stderr.write(`list_backups: no backups under ${s3Url(store.bucket, `${folderPrefix}backups/`)}\n`);
    return;
  }
  await printOut(backupTable(backups));
}

export async function verifyBackup(args: string[]): Promise<void> {
  const { positional, flags } = parseArgs('verify_backup', args, ['--deep', '--json'], 2);
  const [configPath, timestamp] = positional as [string, string];
  if (!/^\d{14}$/.test(timestamp)) throw new PluginError(`verify_backup needs a timestamp of exactly 14 digits (YYYYMMDDHHMMSS), got "${timestamp}"`);
  const { config, store, signal } = await openContext(configPath, c => c.restoreConcurrency, true);
  const folderPrefix = `${cleanFolder(config.folder)}/`;
  const deep = flags.has('--deep');
  const started = Date.now();
  const report = await verifyAll(store, folderPrefix, timestamp, objectReader(config, store, signal), {
    deep: deep ? deepChecker(config, store, signal) : undefined,
    concurrency: config.restoreConcurrency,
    partSize: config.restorePartSize,
    progress: deep ? new StderrProgress() : undefined,
    chunks: chunkReadOptions(config, { concurrency: config.restoreConcurrency, retries: config.maxRetries, signal }),
  });
  for (const p of report.problems) log.error(`verify_backup ${timestamp}: ${p.kind}: ${s3Url(store.bucket, p.key)}: ${p.message}`);
  log.info(`verify_backup ${timestamp} (${report.mode}): ${report.ok ? 'OK' : `${report.problems.length} problem(s)`} in ${Date.now() - started} ms`);
  await printOut(flags.has('--json') ? json(report) : verifyText(report));
  if (!report.ok) {
    const first = report.problems[0]!;
    throw new PluginError(
      `backup ${timestamp} would not restore: ${report.problems.length} problem(s), the first: ${first.kind}: ${s3Url(store.bucket, first.key)}: ${first.message}`,
    );
  }
}
