/**
 * Which objects belong to which backup: keys `<folder>/backups/<YYYYMMDD>/<TS>/<file>` (the Go
 * plugin's and ours alike, src/storage/keys.ts), and the names gpbackup gives a backup's files
 * (gpbackup's filepath package).
 */
import type { ObjectInfo } from '../storage/store.js';
import { type BackupConfigFile, dataExtension } from './gpbackup-files.js';

export interface BackupObjects {
  timestamp: string;
  /** `<folder>/backups/<YYYYMMDD>/<TS>/` */
  prefix: string;
  /** Object sizes by file name (the key's last component). */
  files: Map<string, number>;
}

/** Groups a listing of `<folder>/` by backup; keys of any other shape are left out. */
export function groupByBackup(folderPrefix: string, objects: Iterable<ObjectInfo>): Map<string, BackupObjects> {
  const backups = new Map<string, BackupObjects>();
  for (const o of objects) {
    if (!o.key.startsWith(folderPrefix)) continue;
    const m = /^backups\/(\d{8})\/(\d{14})\/([^/]+)$/.exec(o.key.slice(folderPrefix.length));
    if (!m || m[2]!.slice(0, 8) !== m[1]) continue;
    const timestamp = m[2]!;
    let b = backups.get(timestamp);
    if (!b) {
      b = { timestamp, prefix: `${folderPrefix}backups/${m[1]}/${timestamp}/`, files: new Map() };
      backups.set(timestamp, b);
    }
    b.files.set(m[3]!, o.size);
  }
  return backups;
}

/** The coordinator's files: gpbackup_<TS>_<name>. */
export function coordinatorFile(timestamp: string, name: 'config.yaml' | 'toc.yaml' | 'report' | 'metadata.sql' | 'statistics.sql' | 'plugin_config.yaml'): string {
  return `gpbackup_${timestamp}_${name}`;
}

/** A table's data file on a segment (one file per table). */
export function tableDataFile(config: BackupConfigFile, timestamp: string, content: number, oid: number): string {
  return `gpbackup_${content}_${timestamp}_${oid}${dataExtension(config)}`;
}

/** A segment's one data file of a --single-data-file backup. */
export function segmentDataFile(config: BackupConfigFile, timestamp: string, content: number): string {
  return `gpbackup_${content}_${timestamp}${dataExtension(config)}`;
}

/** A segment's TOC of byte offsets (--single-data-file). */
export function segmentTocFile(timestamp: string, content: number): string {
  return `gpbackup_${content}_${timestamp}_toc.yaml`;
}

/** The segments' content IDs: 0 .. segmentcount-1. */
export function contentIds(config: BackupConfigFile): number[] {
  return Array.from({ length: config.segmentCount }, (_, i) => i);
}

/** The coordinator files a restore needs (the plugin config copy is not: gprestore is given its own). */
export function requiredCoordinatorFiles(config: BackupConfigFile, timestamp: string): string[] {
  const files = [coordinatorFile(timestamp, 'config.yaml'), coordinatorFile(timestamp, 'toc.yaml'), coordinatorFile(timestamp, 'report')];
  if (!config.dataOnly) files.push(coordinatorFile(timestamp, 'metadata.sql'));
  if (config.withStatistics) files.push(coordinatorFile(timestamp, 'statistics.sql'));
  return files;
}

/** YYYYMMDDHHMMSS as `YYYY-MM-DD HH:MM:SS` (gpbackup's timestamps are the coordinator's local time). */
export function timestampDate(ts: string): string {
  return `${ts.slice(0, 4)}-${ts.slice(4, 6)}-${ts.slice(6, 8)} ${ts.slice(8, 10)}:${ts.slice(10, 12)}:${ts.slice(12, 14)}`;
}
