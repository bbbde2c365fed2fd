/**
 * verify_backup: whether a backup would restore, without a database. Quick: every object its
 * config and TOCs say it has is there, for every segment, a single data file has the size its
 * segment TOC implies, the report says Success, and every earlier backup its restore plan names
 * passes the same checks. Deep: every byte of every object is read and checked as a restore
 * checks it (the DeepChecker the caller gives). A deduplicated object's manifest is read and its
 * chunks checked (src/inventory/chunks.ts): present (quick) or intact (deep), each chunk once.
 */
import { describeError } from '../errors.js';
import { DEFAULT_SEGMENT_SIZE, layoutOf } from '../storage/encryption/format.js';
import type { ObjectStore } from '../storage/store.js';
import { type BackupConfigFile, parseBackupConfig, parseSegmentToc, parseTocDataEntries, reportStatus } from './gpbackup-files.js';
import {
  type BackupObjects,
  contentIds,
  coordinatorFile,
  groupByBackup,
  requiredCoordinatorFiles,
  segmentDataFile,
  segmentTocFile,
  tableDataFile,
} from './layout.js';
import type { ChunkReadOptions, Manifest } from '../dedup/index.js';
import { ChunkCheck } from './chunks.js';
import type { ObjectReader } from './list.js';
import { mapBounded } from '../storage/bounded.js';

export type ProblemKind = 'missing-object' | 'missing-chunk' | 'wrong-size' | 'checksum-mismatch' | 'missing-dependency' | 'backup-failed' | 'unreadable';

export interface VerifyProblem {
  kind: ProblemKind;
  /** The backup the object belongs to: the one verified, or an earlier one its restore plan needs. */
  backup: string;
  /** The object (full key) the problem is about: for a chunk, the chunk's key (the message names an object whose manifest names it). */
  key: string;
  message: string;
}

/** What --deep checked an object's bytes against (`manifest`: a deduplication manifest's own SHA-256, its chunks checked apart). */
export type DeepCheck = 'crc32' | 'multipart-etag' | 'md5-etag' | 'size' | 'manifest';

export interface DeepResult {
  check: DeepCheck;
  /** Client-side encrypted: every segment was authenticated when decrypted. */
  decrypted: boolean;
  /** Why only the size could be checked (check `size`). */
  unverified?: string;
}

/** Reads an object's every byte and checks them; throws if they are not what was stored. */
export interface DeepChecker {
  check(key: string, size: number, concurrency: number): Promise<DeepResult>;
}

export interface VerifiedBackup {
  timestamp: string;
  /** `target`, or `dependency` for a backup the target's restore plan names. */
  role: 'target' | 'dependency';
  objects: number;
  bytes: number;
  status: string | null;
}

/** The result of verify_backup; its JSON output (docs/operations.md). */
export interface VerifyReport {
  timestamp: string;
  mode: 'quick' | 'deep';
  ok: boolean;
  backups: VerifiedBackup[];
  problems: VerifyProblem[];
  /** --deep: objects read, bytes read, and how many were checked each way. */
  deep: {
    objects: number;
    bytes: number;
    checkedBy: Record<DeepCheck, number>;
    decrypted: number;
    /** Objects whose bytes could only be checked for their size, with the reason. */
    sizeOnly: { key: string; reason: string }[];
    /** Deduplicated chunks read and checked against their name (each once), and their bytes. */
    chunks: number;
    chunkBytes: number;
  } | null;
}

export interface VerifyOptions {
  deep?: DeepChecker;
  /** Reads in flight (objects at once; a large object's ranged GETs). */
  concurrency: number;
  /** Objects larger than this are read one at a time, each with `concurrency` ranged GETs. */
  partSize: number;
  progress?: Progress;
  /** How deduplicated objects' chunks are read (the restore's settings and keys). */
  chunks: ChunkReadOptions;
}

export interface Progress {
  start(objects: number, bytes: number): void;
  advance(bytes: number): void;
  finish(): void;
}

interface Loaded {
  objects: BackupObjects;
  config?: BackupConfigFile;
  encrypted: boolean;
  status: string | null;
}

class Verification {
  readonly problems: VerifyProblem[] = [];
  readonly backups: VerifiedBackup[] = [];
  readonly loaded: Loaded[] = [];
  readonly chunks: ChunkCheck;

  constructor(
    private readonly store: ObjectStore,
    private readonly folderPrefix: string,
    private readonly reader: ObjectReader,
    chunkOptions: ChunkReadOptions,
  ) {
    this.chunks = new ChunkCheck(store, chunkOptions, (kind, backup, key, message) => this.problems.push({ kind, backup, key, message }));
  }

  problem(kind: ProblemKind, key: string, message: string): void {
    const backup = /\/backups\/\d{8}\/(\d{14})\//.exec(key)?.[1] ?? '';
    this.problems.push({ kind, backup, key, message });
  }

  private manifestOf(b: BackupObjects, file: string): Manifest | undefined {
    return this.chunks.manifests.get(b.prefix + file);
  }

  private async list(timestamp: string): Promise<BackupObjects> {
    const prefix = `${this.folderPrefix}backups/${timestamp.slice(0, 8)}/${timestamp}/`;
    const objects = [];
    for await (const o of this.store.listObjects(prefix)) objects.push(o);
    return groupByBackup(this.folderPrefix, objects).get(timestamp) ?? { timestamp, prefix, files: new Map() };
  }

  /** The file's text, or undefined (with a problem recorded) if it is missing or unreadable. */
  private async read(b: BackupObjects, file: string): Promise<{ text: string; encrypted: boolean; deduplicated: boolean } | undefined> {
    const key = b.prefix + file;
    const size = b.files.get(file);
    if (size === undefined) {
      this.problem('missing-object', key, 'not in the bucket');
      return undefined;
    }
    try {
      const { data, encrypted, deduplicated } = await this.reader.read(key, size);
      return { text: data.toString('utf8'), encrypted, deduplicated };
    } catch (err) {
      this.problem(/checksum mismatch/.test(describeError(err)) ? 'checksum-mismatch' : 'unreadable', key, describeError(err));
      return undefined;
    }
  }

  private expect(b: BackupObjects, file: string): number | undefined {
    const size = b.files.get(file);
    if (size === undefined) this.problem('missing-object', b.prefix + file, 'not in the bucket');
    return size;
  }

  /** The quick checks of one backup; returns its restore plan's other timestamps. */
  async quick(timestamp: string, role: VerifiedBackup['role']): Promise<string[]> {
    const b = await this.list(timestamp);
    const entry: VerifiedBackup = { timestamp, role, objects: b.files.size, bytes: [...b.files.values()].reduce((a, s) => a + s, 0), status: null };
    this.backups.push(entry);
    const loaded: Loaded = { objects: b, encrypted: false, status: null };
    this.loaded.push(loaded);
    const configName = coordinatorFile(timestamp, 'config.yaml');
    if (b.files.size === 0) {
      this.problem(role === 'target' ? 'missing-object' : 'missing-dependency', b.prefix + configName, `no backup ${timestamp} in the bucket (no object under ${b.prefix})`);
      return [];
    }
    const [configFile, report] = await Promise.all([this.read(b, configName), this.read(b, coordinatorFile(timestamp, 'report'))]);
    if (report) {
      entry.status = loaded.status = reportStatus(report.text) ?? null;
      if (entry.status !== 'Success') {
        this.problem('backup-failed', b.prefix + coordinatorFile(timestamp, 'report'), `the report says backup status: ${entry.status ?? '(none)'}`);
      }
    }
    if (!configFile) return [];
    let config: BackupConfigFile;
    try {
      config = parseBackupConfig(configFile.text, configName);
    } catch (err) {
      this.problem('unreadable', b.prefix + configName, describeError(err));
      return [];
    }
    loaded.config = config;
    loaded.encrypted = configFile.encrypted;
    // One config serves a whole gpbackup run: a backup whose config is plain has no manifest to look for (a GET per object spared).
    if (configFile.deduplicated) await this.chunks.findManifests(timestamp, [...b.files].map(([file, size]) => ({ key: b.prefix + file, size })));
    for (const f of requiredCoordinatorFiles(config, timestamp)) this.expect(b, f);
    if (!config.metadataOnly) await this.checkData(b, config, configFile.encrypted);
    if (configFile.encrypted) {
      for (const [file, size] of b.files) {
        // A manifest's header is in the clear: its chunk list's seal was checked when it was read.
        if (!this.manifestOf(b, file) && !layoutOf(size, DEFAULT_SEGMENT_SIZE)) this.problem('wrong-size', b.prefix + file, `wrong size: ${size} bytes is not the size of a client-side encrypted object (truncated or extended)`);
      }
    }
    return [...new Set(config.restorePlan.map(e => e.timestamp).filter(t => t && t !== timestamp))];
  }

  private async checkData(b: BackupObjects, config: BackupConfigFile, encrypted: boolean): Promise<void> {
    const tocFile = await this.read(b, coordinatorFile(b.timestamp, 'toc.yaml'));
    if (!tocFile) return;
    let oids: number[];
    try {
      oids = parseTocDataEntries(tocFile.text, coordinatorFile(b.timestamp, 'toc.yaml')).map(e => e.oid);
    } catch (err) {
      this.problem('unreadable', b.prefix + coordinatorFile(b.timestamp, 'toc.yaml'), describeError(err));
      return;
    }
    if (!config.singleDataFile) {
      for (const c of contentIds(config)) for (const oid of oids) this.expect(b, tableDataFile(config, b.timestamp, c, oid));
      return;
    }
    await mapBounded(contentIds(config), 8, async c => {
      const dataName = segmentDataFile(config, b.timestamp, c);
      const size = this.expect(b, dataName);
      const segmentToc = await this.read(b, segmentTocFile(b.timestamp, c));
      if (!segmentToc) return;
      let entries;
      try {
        entries = parseSegmentToc(segmentToc.text, segmentTocFile(b.timestamp, c));
      } catch (err) {
        this.problem('unreadable', b.prefix + segmentTocFile(b.timestamp, c), describeError(err));
        return;
      }
      const absent = oids.filter(oid => !entries.has(oid));
      if (absent.length) {
        this.problem('missing-object', b.prefix + segmentTocFile(b.timestamp, c), `the segment TOC has no byte range for table OID(s) ${absent.slice(0, 5).join(', ')}${absent.length > 5 ? ', ...' : ''} of the backup's TOC`);
      }
      if (size === undefined) return;
      const manifest = this.manifestOf(b, dataName);
      const plainSize = manifest ? manifest.size : encrypted ? layoutOf(size, DEFAULT_SEGMENT_SIZE)?.plainSize : size;
      if (plainSize === undefined) return; // named by the check of encrypted sizes
      // gpbackup_helper counts the bytes it feeds the compressor: only an uncompressed file's size is known.
      if (config.compressed) {
        if (plainSize === 0) this.problem('wrong-size', b.prefix + dataName, 'wrong size: the compressed data file is empty');
        return;
      }
      const expected = Math.max(0, ...[...entries.values()].map(e => e.endByte));
      if (plainSize !== expected) {
        const holds = manifest ? 'its deduplication manifest restores' : 'the object holds';
        this.problem('wrong-size', b.prefix + dataName, `wrong size: the segment TOC implies ${expected} bytes${encrypted && !manifest ? ' of plaintext' : ''}, ${holds} ${plainSize}`);
      }
    });
  }

  /** Reads every object of every backup verified, checking each byte; a manifest's chunks each once. */
  async deep(checker: DeepChecker, opts: VerifyOptions): Promise<NonNullable<VerifyReport['deep']>> {
    const all = this.loaded.flatMap(l => [...l.objects.files].map(([file, size]) => ({ key: l.objects.prefix + file, size })));
    const objects = all.filter(o => !this.chunks.manifests.has(o.key));
    const manifests = all.filter(o => this.chunks.manifests.has(o.key));
    const result: NonNullable<VerifyReport['deep']> = {
      objects: manifests.length,
      bytes: manifests.reduce((a, o) => a + o.size, 0),
      checkedBy: { crc32: 0, 'multipart-etag': 0, 'md5-etag': 0, size: 0, manifest: manifests.length },
      decrypted: manifests.filter(o => this.chunks.manifests.get(o.key)!.namer.keyed).length,
      sizeOnly: [],
      chunks: 0,
      chunkBytes: 0,
    };
    opts.progress?.start(objects.length + this.chunks.chunkCount, objects.reduce((a, o) => a + o.size, 0) + this.chunks.chunkBytes);
    const checkOne = async (o: { key: string; size: number }, concurrency: number) => {
      try {
        const r = await checker.check(o.key, o.size, concurrency);
        result.checkedBy[r.check]++;
        if (r.decrypted) result.decrypted++;
        if (r.check === 'size' && !r.decrypted) result.sizeOnly.push({ key: o.key, reason: r.unverified ?? 'no checksum' });
      } catch (err) {
        const message = describeError(err);
        this.problem(/checksum mismatch|authentication|decrypt/i.test(message) ? 'checksum-mismatch' : 'unreadable', o.key, message);
      }
      result.objects++;
      result.bytes += o.size;
      opts.progress?.advance(o.size);
    };
    // Small objects side by side, one GET each; large ones in turn, each with parallel ranged GETs.
    await mapBounded(
      objects.filter(o => o.size <= opts.partSize),
      opts.concurrency,
      o => checkOne(o, 1),
    );
    for (const o of objects.filter(o => o.size > opts.partSize)) await checkOne(o, opts.concurrency);
    result.chunks = await this.chunks.deep(bytes => {
      result.chunkBytes += bytes;
      opts.progress?.advance(bytes);
    });
    opts.progress?.finish();
    return result;
  }
}

export async function verifyBackup(
  store: ObjectStore,
  folderPrefix: string,
  timestamp: string,
  reader: ObjectReader,
  opts: VerifyOptions,
): Promise<VerifyReport> {
  const v = new Verification(store, folderPrefix, reader, opts.chunks);
  const seen = new Set([timestamp]);
  let next = await v.quick(timestamp, 'target');
  // The restore plan of the latest incremental names its whole chain; each named backup is checked once.
  while (next.length) {
    const fresh = next.filter(t => !seen.has(t));
    for (const t of fresh) seen.add(t);
    next = (await mapBounded(fresh, 4, t => v.quick(t, 'dependency'))).flat();
  }
  // --deep reads every chunk, which finds a missing one too: the HEADs are for the quick check.
  if (!opts.deep) await v.chunks.quick();
  const deep = opts.deep ? await v.deep(opts.deep, opts) : null;
  // A small file read by the quick checks and again by --deep is named once.
  const problems = [...new Map(v.problems.map(p => [`${p.kind} ${p.key}`, p])).values()];
  return {
    timestamp,
    mode: opts.deep ? 'deep' : 'quick',
    ok: problems.length === 0,
    backups: v.backups.sort((a, b) => (a.role === b.role ? (a.timestamp < b.timestamp ? 1 : -1) : a.role === 'target' ? -1 : 1)),
    problems,
    deep,
  };
}
