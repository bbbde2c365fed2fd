/**
 * list_backups: every backup under the folder, from the bucket alone. The folder is listed once;
 * then each backup's config and report (a few KiB) are read, `concurrency` at a time, and, in a
 * bucket with S3 Object Lock, its config is asked for its retention.
 */
import { describeError } from '../errors.js';
import type { ObjectStore } from '../storage/store.js';
import { type BackupConfigFile, parseBackupConfig, reportStatus } from './gpbackup-files.js';
import {
  type BackupObjects,
  contentIds,
  coordinatorFile,
  groupByBackup,
  requiredCoordinatorFiles,
  segmentDataFile,
  segmentTocFile,
  timestampDate,
} from './layout.js';
import { mapBounded } from '../storage/bounded.js';

/** Reads a whole (small) object, decrypting it if it is client-side encrypted. */
export interface ObjectReader {
  read(key: string, size: number): Promise<{ data: Buffer; encrypted: boolean; deduplicated: boolean }>;
}

/** One line of list_backups; the JSON output is an array of these (docs/operations.md). */
export interface BackupSummary {
  timestamp: string;
  /** The timestamp as a date and time (the coordinator's local time when the backup began). */
  date: string;
  database: string | null;
  /** Bytes of every object of the backup. */
  sizeBytes: number;
  objects: number;
  segments: number | null;
  /** `single-data-file` or `per-table`. */
  dataFormat: string | null;
  /** `gzip`, `zstd` or `none`. */
  compression: string | null;
  /** `full` or `incremental`. */
  kind: string | null;
  /** The earlier backups an incremental one's restore plan names. */
  dependsOn: string[];
  /** Whether its objects were written with the plugin's client_side_encryption; null when unknown. */
  clientSideEncrypted: boolean | null;
  /** Whether it was written with `deduplication: on` (its config is a manifest); null when unknown. */
  deduplicated: boolean | null;
  /** The S3 Object Lock retention of its config object (ISO 8601), or null. */
  lockedUntil: string | null;
  /** The report's `backup status` (`Success`, `Failure`), or null when there is no report. */
  status: string | null;
  /** Every file a restore needs is there (verify_backup checks each table's data). */
  complete: boolean;
  /** Why it is not complete, or what could not be read. */
  problems: string[];
}

export interface ListOptions {
  concurrency: number;
  /** Ask each backup's config object for its retention (the bucket has S3 Object Lock). */
  lockInfo: boolean;
}

/** What the listing alone shows missing: coordinator files, and segments without their data. */
export function missingFromListing(b: BackupObjects, config: BackupConfigFile): string[] {
  const missing = requiredCoordinatorFiles(config, b.timestamp).filter(f => !b.files.has(f));
  if (config.metadataOnly) return missing;
  for (const c of contentIds(config)) {
    if (config.singleDataFile) {
      for (const f of [segmentDataFile(config, b.timestamp, c), segmentTocFile(b.timestamp, c)]) if (!b.files.has(f)) missing.push(f);
    } else if (![...b.files.keys()].some(f => f.startsWith(`gpbackup_${c}_${b.timestamp}_`))) {
      missing.push(`segment ${c}'s data files`);
    }
  }
  return missing;
}

async function summarize(store: ObjectStore, b: BackupObjects, reader: ObjectReader, opts: ListOptions): Promise<BackupSummary> {
  const summary: BackupSummary = {
    timestamp: b.timestamp,
    date: timestampDate(b.timestamp),
    database: null,
    sizeBytes: [...b.files.values()].reduce((a, s) => a + s, 0),
    objects: b.files.size,
    segments: null,
    dataFormat: null,
    compression: null,
    kind: null,
    dependsOn: [],
    clientSideEncrypted: null,
    deduplicated: null,
    lockedUntil: null,
    status: null,
    complete: false,
    problems: [],
  };
  const configName = coordinatorFile(b.timestamp, 'config.yaml');
  const reportName = coordinatorFile(b.timestamp, 'report');
  const [config, report, head] = await Promise.all([
    b.files.has(configName) ? reader.read(b.prefix + configName, b.files.get(configName)!).catch((err: unknown) => err as Error) : undefined,
    b.files.has(reportName) ? reader.read(b.prefix + reportName, b.files.get(reportName)!).catch((err: unknown) => err as Error) : undefined,
    opts.lockInfo && b.files.has(configName) ? store.headObject(b.prefix + configName).catch(() => undefined) : undefined,
  ]);
  summary.lockedUntil = head?.lockedUntil ?? null;
  if (report instanceof Error) summary.problems.push(`${reportName} could not be read: ${describeError(report)}`);
  else if (report) summary.status = reportStatus(report.data.toString('utf8')) ?? 'unknown';
  if (config === undefined) {
    summary.problems.push(`${configName} is missing`);
    return summary;
  }
  if (config instanceof Error) {
    summary.problems.push(`${configName} could not be read: ${describeError(config)}`);
    return summary;
  }
  summary.clientSideEncrypted = config.encrypted;
  summary.deduplicated = config.deduplicated;
  let parsed: BackupConfigFile;
  try {
    parsed = parseBackupConfig(config.data.toString('utf8'), configName);
  } catch (err) {
    summary.problems.push(describeError(err));
    return summary;
  }
  summary.database = parsed.databaseName || null;
  summary.segments = parsed.segmentCount;
  summary.dataFormat = parsed.metadataOnly ? 'metadata-only' : parsed.singleDataFile ? 'single-data-file' : 'per-table';
  summary.compression = parsed.compressed ? parsed.compressionType || 'gzip' : 'none';
  summary.kind = parsed.incremental ? 'incremental' : 'full';
  summary.dependsOn = [...new Set(parsed.restorePlan.map(e => e.timestamp).filter(t => t && t !== b.timestamp))].sort();
  const missing = missingFromListing(b, parsed);
  if (missing.length) summary.problems.push(`missing: ${missing.join(', ')}`);
  if (summary.status !== null && summary.status !== 'Success') summary.problems.push(`the report says backup status: ${summary.status}`);
  summary.complete = summary.problems.length === 0;
  return summary;
}

/** Every backup under `folderPrefix` (`<folder>/`), newest first. */
export async function listBackups(store: ObjectStore, folderPrefix: string, reader: ObjectReader, opts: ListOptions): Promise<BackupSummary[]> {
  const objects = [];
  for await (const o of store.listObjects(`${folderPrefix}backups/`)) objects.push(o);
  const backups = [...groupByBackup(folderPrefix, objects).values()].sort((a, b) => (a.timestamp < b.timestamp ? 1 : -1));
  const summaries = await mapBounded(backups, opts.concurrency, b => summarize(store, b, reader, opts));
  // An incremental backup whose base is not in the bucket cannot be restored.
  const present = new Set(summaries.map(s => s.timestamp));
  for (const s of summaries) {
    const absent = s.dependsOn.filter(t => !present.has(t));
    if (absent.length) {
      s.problems.push(`missing dependency: ${absent.join(', ')}`);
      s.complete = false;
    }
  }
  return summaries;
}
