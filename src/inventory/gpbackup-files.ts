/**
 * The files gpbackup keeps beside a backup's data, as it writes them (gpbackup's history, toc and
 * filepath packages): `gpbackup_<TS>_config.yaml` (history.BackupConfig, marshalled by yaml.v2 with
 * lower-cased field names), `gpbackup_<TS>_toc.yaml` (its `dataentries`: the tables whose data the
 * backup holds, by OID), `gpbackup_<content>_<TS>_toc.yaml` of a single-data-file backup
 * (toc.SegmentTOC: `dataentries` maps each OID to its byte range in the segment's one data
 * object) and `gpbackup_<TS>_report` (its `backup status:` line). Every scalar is read as text
 * (FAILSAFE schema): yaml.v2 leaves a 14-digit timestamp unquoted at times, which YAML 1.2 would
 * read as a number.
 */
import { FAILSAFE_SCHEMA, load } from 'js-yaml';
import { PluginError } from '../errors.js';

export interface RestorePlanEntry {
  timestamp: string;
  tableFqns: string[];
}

/** The parts of history.BackupConfig that say what a backup holds and needs. */
export interface BackupConfigFile {
  timestamp: string;
  endTime: string;
  databaseName: string;
  backupVersion: string;
  segmentCount: number;
  compressed: boolean;
  /** gzip or zstd; old gpbackups wrote none (gzip). */
  compressionType: string;
  singleDataFile: boolean;
  incremental: boolean;
  dataOnly: boolean;
  metadataOnly: boolean;
  withStatistics: boolean;
  restorePlan: RestorePlanEntry[];
  plugin: string;
  pluginVersion: string;
  /** `Success` or `Failure` (gpbackup 1.20 and later), else empty. */
  status: string;
}

/** A table whose data the backup holds (toc.MasterDataEntry). */
export interface TocDataEntry {
  schema: string;
  name: string;
  oid: number;
}

/** A table's bytes [startByte, endByte) in a segment's single data file. */
export interface SegmentTocEntry {
  startByte: number;
  endByte: number;
}

type Doc = Record<string, unknown>;

function parse(text: string, what: string): Doc {
  let doc: unknown;
  try {
    doc = load(text, { schema: FAILSAFE_SCHEMA, json: true });
  } catch (err) {
    throw new PluginError(`${what} is not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new PluginError(`${what} is not a YAML mapping`);
  return doc as Doc;
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function flag(v: unknown): boolean {
  return v === 'true';
}

function count(v: unknown, what: string, field: string): number {
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n)) {
    throw new PluginError(`${what}: ${field} is ${JSON.stringify(v ?? null)}, not a whole number`);
  }
  return n;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function parseBackupConfig(content: string, what: string): BackupConfigFile {
  const d = parse(content, what);
  return {
    timestamp: text(d.timestamp),
    endTime: text(d.endtime),
    databaseName: text(d.databasename),
    backupVersion: text(d.backupversion),
    segmentCount: count(d.segmentcount, what, 'segmentcount'),
    compressed: flag(d.compressed),
    compressionType: text(d.compressiontype),
    singleDataFile: flag(d.singledatafile),
    incremental: flag(d.incremental),
    dataOnly: flag(d.dataonly),
    metadataOnly: flag(d.metadataonly),
    withStatistics: flag(d.withstatistics),
    restorePlan: list(d.restoreplan).map(e => {
      const entry = (e ?? {}) as Doc;
      return { timestamp: text(entry.timestamp), tableFqns: list(entry.tablefqns).map(text) };
    }),
    plugin: text(d.plugin),
    pluginVersion: text(d.pluginversion),
    status: text(d.status),
  };
}

/** The file name extension gpbackup gives data files: `.gz` for gzip, `.zst` for zstd, none uncompressed. */
export function dataExtension(config: BackupConfigFile): string {
  if (!config.compressed) return '';
  return config.compressionType === 'zstd' ? '.zst' : '.gz';
}

/** The main TOC's `dataentries`. */
export function parseTocDataEntries(content: string, what: string): TocDataEntry[] {
  return list(parse(content, what).dataentries).map(e => {
    const entry = (e ?? {}) as Doc;
    return { schema: text(entry.schema), name: text(entry.name), oid: count(entry.oid, what, 'a data entry\'s oid') };
  });
}

/** A segment TOC's `dataentries`, by OID. */
export function parseSegmentToc(content: string, what: string): Map<number, SegmentTocEntry> {
  const entries = parse(content, what).dataentries;
  const out = new Map<number, SegmentTocEntry>();
  if (entries === undefined || entries === null) return out;
  if (typeof entries !== 'object' || Array.isArray(entries)) throw new PluginError(`${what}: dataentries is not a mapping of OIDs`);
  for (const [oid, range] of Object.entries(entries as Doc)) {
    const r = (range ?? {}) as Doc;
    const startByte = count(r.startbyte, what, `startbyte of ${oid}`);
    const endByte = count(r.endbyte, what, `endbyte of ${oid}`);
    out.set(count(oid, what, 'an OID'), { startByte, endByte });
  }
  return out;
}

/** The report's `backup status:` value (`Success`, `Failure`), or undefined if it has none. */
export function reportStatus(content: string): string | undefined {
  return /^backup status:[ \t]*(\S.*?)\s*$/im.exec(content)?.[1];
}
