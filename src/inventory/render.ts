/** The human forms of list_backups and verify_backup (their --json forms are the objects themselves). */
import type { BackupSummary } from './list.js';
import { formatBytes } from './progress.js';
import type { VerifyReport } from './verify.js';

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)));
  return [header, ...rows].map(r => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

const FORMAT_NAMES: Record<string, string> = { 'single-data-file': 'single-file', 'per-table': 'per-table', 'metadata-only': 'metadata' };

export function backupTable(backups: BackupSummary[]): string {
  const rows = backups.map(b => [
    b.timestamp,
    b.date,
    b.database ?? '?',
    formatBytes(b.sizeBytes),
    String(b.objects),
    b.segments === null ? '?' : String(b.segments),
    b.dataFormat === null ? '?' : `${FORMAT_NAMES[b.dataFormat] ?? b.dataFormat} ${b.compression}${b.deduplicated ? ' dedup' : ''}`,
    b.kind === null ? '?' : b.kind === 'incremental' ? `incremental of ${b.dependsOn.join(',') || '?'}` : 'full',
    b.clientSideEncrypted === null ? '?' : b.clientSideEncrypted ? 'yes' : 'no',
    b.lockedUntil ?? '-',
    b.status ?? 'no report',
    b.complete ? 'yes' : `NO: ${b.problems.join('; ')}`,
  ]);
  return table(['TIMESTAMP', 'DATE', 'DATABASE', 'SIZE', 'OBJECTS', 'SEGS', 'FORMAT', 'TYPE', 'ENCRYPTED', 'LOCKED UNTIL', 'STATUS', 'COMPLETE'], rows);
}

export function verifyText(r: VerifyReport): string {
  const lines: string[] = [];
  for (const b of r.backups) {
    lines.push(`${b.role === 'target' ? 'backup' : 'needs  '} ${b.timestamp}: ${b.objects} objects, ${formatBytes(b.bytes)}, status ${b.status ?? '(no report)'}`);
  }
  if (r.deep) {
    const by = r.deep.checkedBy;
    lines.push(
      `read ${r.deep.objects} objects, ${formatBytes(r.deep.bytes)}: ${by.crc32} checked against their CRC-32, ${by['multipart-etag']} against their multipart ETag, ` +
        `${by['md5-etag']} against their MD5 ETag, ${r.deep.decrypted} client-side encrypted and authenticated, ${r.deep.sizeOnly.length} for their size only` +
        (by.manifest ? `; ${by.manifest} deduplication manifests checked against their SHA-256, ${r.deep.chunks} chunks (${formatBytes(r.deep.chunkBytes)}) checked against their hash` : ''),
    );
    for (const s of r.deep.sizeOnly) lines.push(`size only: ${s.key}: ${s.reason}`);
  }
  for (const p of r.problems) {
    const needed = p.backup && p.backup !== r.timestamp ? ` (of backup ${p.backup}, which the restore plan of ${r.timestamp} needs)` : '';
    lines.push(`PROBLEM ${p.kind}: ${p.key}: ${p.message}${needed}`);
  }
  const what = r.mode === 'deep' ? 'every byte read and checked' : 'every object present (quick check; --deep reads every byte)';
  lines.push(r.ok ? `OK: backup ${r.timestamp} would restore: ${what}` : `FAILED: backup ${r.timestamp}: ${r.problems.length} problem(s)`);
  return lines.join('\n') + '\n';
}
