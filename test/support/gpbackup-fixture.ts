/**
 * Backups as real gpbackup leaves them in the bucket, written through a plugin executable's own
 * backup_file and backup_data (as gpbackup and gpbackup_helper call them), where a Greenplum
 * cluster is not at hand. The objects and their contents follow gpbackup 1.30's source:
 * `gpbackup_<TS>_config.yaml` (history.BackupConfig as yaml.v2 marshals it), `_toc.yaml` (its
 * `dataentries`), `_report`, `_metadata.sql`, `_plugin_config.yaml` on the coordinator (content
 * -1), and per segment either `gpbackup_<c>_<TS>_<oid><ext>` for each table or, with
 * --single-data-file, `gpbackup_<c>_<TS><ext>` and its `gpbackup_<c>_<TS>_toc.yaml` of byte
 * offsets (toc.SegmentTOC: the offsets count the bytes gpbackup_helper feeds its compressor, so
 * they are offsets in the uncompressed stream); ext is `.gz` (gzip), `.zst` (zstd) or none.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { patternBytes, type PluginEnv } from './plugin.js';

export interface Table {
  oid: number;
  schema: string;
  name: string;
  /** The data file's size on each segment, when a test needs a large one (rows of text otherwise). */
  bytes?: number;
}

export interface FixtureBackup {
  timestamp: string;
  database?: string;
  segments?: number;
  tables?: Table[];
  singleDataFile?: boolean;
  compression?: 'gzip' | 'zstd' | 'none';
  /** The earlier backups (oldest first) an incremental backup's restore plan names; undefined for a full backup. */
  incrementalOf?: string[];
  status?: 'Success' | 'Failure';
}

export const DEFAULT_TABLES: Table[] = [
  { oid: 16384, schema: 'public', name: 'orders' },
  { oid: 16390, schema: 'public', name: 'customers' },
  { oid: 16402, schema: 'sales', name: 'regions' },
];

function extension(compression: FixtureBackup['compression']): string {
  return compression === 'gzip' ? '.gz' : compression === 'zstd' ? '.zst' : '';
}

/** A table's COPY output on a segment: CSV rows (or `bytes` of a pattern, its own for each table and segment). */
function tableRows(table: Table, content: number): Buffer {
  if (table.bytes !== undefined) return patternBytes(table.bytes + content, table.oid * 64 + content);
  return Buffer.from(Array.from({ length: 50 + content * 7 + (table.oid % 13) }, (_, i) => `${i},${table.name}-${content}-${i},${(i * 3.25).toFixed(2)}`).join('\n') + '\n');
}

/** Compressed as gpbackup_helper compresses (zstd frames stand in as marked bytes). */
function compress(b: FixtureBackup, plain: Buffer): Buffer {
  if ((b.compression ?? 'gzip') === 'gzip') return gzipSync(plain);
  if (b.compression === 'zstd') return Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), plain]);
  return plain;
}

export function configYaml(b: FixtureBackup, pluginPath: string): string {
  const compression = b.compression ?? 'gzip';
  const plan = [...(b.incrementalOf ?? []), b.timestamp]
    .map(ts => `- timestamp: "${ts}"\n  tablefqns:\n${(b.tables ?? DEFAULT_TABLES).map(t => `  - ${t.schema}.${t.name}`).join('\n')}`)
    .join('\n');
  return [
    'backupdir: ""',
    'backupversion: 1.30.6',
    `compressed: ${compression !== 'none'}`,
    `compressiontype: ${compression === 'none' ? 'gzip' : compression}`,
    `databasename: ${b.database ?? 'sales'}`,
    'databaseversion: 6.24.3 build commit:25d3498a400ca5230e81abb94861f23389315213',
    `segmentcount: ${b.segments ?? 2}`,
    'dataonly: false',
    'datedeleted: ""',
    'excluderelations: []',
    'excludeschemafiltered: false',
    'excludeschemas: []',
    'excludetablefiltered: false',
    'includerelations: []',
    'includeschemafiltered: false',
    'includeschemas: []',
    'includetablefiltered: false',
    `incremental: ${b.incrementalOf !== undefined}`,
    `leafpartitiondata: ${b.incrementalOf !== undefined}`,
    'metadataonly: false',
    `plugin: ${pluginPath}`,
    'pluginversion: 2.0.0',
    `restoreplan:\n${plan}`,
    `singledatafile: ${b.singleDataFile === true}`,
    `timestamp: "${b.timestamp}"`,
    `endtime: "${b.timestamp.slice(0, 12)}59"`,
    'withoutglobals: false',
    'withstatistics: false',
    `status: ${b.status ?? 'Success'}`,
    '',
  ].join('\n');
}

export function tocYaml(b: FixtureBackup): string {
  const entries = (b.tables ?? DEFAULT_TABLES)
    .map(t =>
      [
        `- schema: ${t.schema}`,
        `  name: ${t.name}`,
        `  oid: ${t.oid}`,
        '  attributestring: (id,name,amount)',
        '  rowsexpected: 0',
        '  partitionroot: ""',
        '  isreplicated: false',
        '  distbyenum: false',
      ].join('\n'),
    )
    .join('\n');
  return `globalentries: []\npredataentries: []\npostdataentries: []\nstatisticsentries: []\ndataentries:\n${entries}\nincrementalmetadata:\n  ao: {}\n`;
}

export function reportText(b: FixtureBackup): string {
  return [
    'Greenplum Database Backup Report',
    '',
    `timestamp key:         ${b.timestamp}`,
    'gpdb version:          6.24.3',
    'gpbackup version:      1.30.6',
    '',
    `database name:         ${b.database ?? 'sales'}`,
    `data file format:      ${b.singleDataFile ? 'Single Data File Per Segment' : 'Multiple Data Files Per Segment'}`,
    `incremental:           ${b.incrementalOf ? 'True' : 'False'}`,
    '',
    `backup status:         ${b.status ?? 'Success'}`,
    '',
    `segment count:         ${b.segments ?? 2}`,
    '',
  ].join('\n');
}

/** Writes the backup through `env`'s executable and `config`; returns the file names written. */
export async function writeBackup(env: PluginEnv, config: string, b: FixtureBackup): Promise<string[]> {
  const ts = b.timestamp;
  const written: string[] = [];
  const backupFile = async (file: string, content: string | Buffer) => {
    const path = env.writeFile(`data/gpseg-1/backups/${ts.slice(0, 8)}/${ts}/${file}`, content);
    const r = await env.run(['backup_file', config, path]);
    assert.equal(r.code, 0, `backup_file ${file}: ${r.stderr}`);
    written.push(file);
  };
  const backupData = async (content: number, file: string, data: Buffer) => {
    const r = await env.run(['backup_data', config, env.backupPath(ts, file, `data/gpseg${content}`)], { stdin: data });
    assert.equal(r.code, 0, `backup_data ${file}: ${r.stderr}`);
    written.push(file);
  };
  const tables = b.tables ?? DEFAULT_TABLES;
  const ext = extension(b.compression ?? 'gzip');
  const segmentWrites: Promise<void>[] = [];
  for (let c = 0; c < (b.segments ?? 2); c++) {
    if (!b.singleDataFile) {
      for (const t of tables) segmentWrites.push(backupData(c, `gpbackup_${c}_${ts}_${t.oid}${ext}`, compress(b, tableRows(t, c))));
      continue;
    }
    // One compressed stream of every table; the segment TOC counts the bytes fed to the compressor.
    let offset = 0;
    const toc: string[] = ['dataentries:'];
    const pieces = tables.map(t => {
      const data = tableRows(t, c);
      toc.push(`  ${t.oid}:\n    startbyte: ${offset}\n    endbyte: ${offset + data.length}`);
      offset += data.length;
      return data;
    });
    segmentWrites.push(backupData(c, `gpbackup_${c}_${ts}${ext}`, compress(b, Buffer.concat(pieces))));
    // The segment TOC is written by gpbackup_helper on the segment's host and sent with backup_file.
    const tocPath = env.writeFile(`data/gpseg${c}/backups/${ts.slice(0, 8)}/${ts}/gpbackup_${c}_${ts}_toc.yaml`, toc.join('\n') + '\n');
    segmentWrites.push(
      env.run(['backup_file', config, tocPath]).then(r => {
        assert.equal(r.code, 0, r.stderr);
        written.push(`gpbackup_${c}_${ts}_toc.yaml`);
      }),
    );
  }
  await Promise.all(segmentWrites);
  await backupFile(`gpbackup_${ts}_metadata.sql`, `SET client_encoding = 'UTF8';\nCREATE SCHEMA sales;\n${tables.map(t => `CREATE TABLE ${t.schema}.${t.name} (id int, name text, amount numeric);`).join('\n')}\n`);
  await backupFile(`gpbackup_${ts}_toc.yaml`, tocYaml(b));
  await backupFile(`gpbackup_${ts}_plugin_config.yaml`, `executablepath: ${env.bin}\noptions:\n  folder: redacted\n`);
  await backupFile(`gpbackup_${ts}_report`, reportText(b));
  await backupFile(`gpbackup_${ts}_config.yaml`, configYaml(b, env.bin));
  return written;
}
