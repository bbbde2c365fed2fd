/**
 * Object lock with deduplication: which reused chunks get their retention extended (and in what
 * mode), a backup failing when it cannot extend one, prune keeping chunks under retention, and
 * session markers written without retention.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { backupDeduplicated } from '../../src/dedup/backup.js';
import { chunkPrefix } from '../../src/dedup/chunk-store.js';
import type { ChunkSizes } from '../../src/dedup/chunker.js';
import { prune } from '../../src/dedup/prune.js';
import { retentionToExtend, type ChunkLock } from '../../src/dedup/retention.js';
import { sessionsPrefix } from '../../src/dedup/sessions.js';
import { objectLockHeaders, retainUntil } from '../../src/storage/object-lock.js';
import { StoreRequestError, type ObjectHead } from '../../src/storage/store.js';
import { MemoryStore } from '../support/memory-store.js';
import { StreamSource } from '../support/stream-source.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-06-01T00:00:00Z');
const GOV10: ChunkLock = { mode: 'GOVERNANCE', days: 10 };

test('retentionToExtend: extend whenever shorter than days and half a day from now, to a quarter of days beyond; never weaken COMPLIANCE', () => {
  const needed = retainUntil(10.5, NOW);
  const extended = retainUntil(12.5, NOW);
  const at = (days: number) => new Date(NOW + days * DAY).toISOString();
  // No retention, or an expired one: this backup's, and the margin.
  assert.deepEqual(retentionToExtend({ size: 1 }, GOV10, NOW), { mode: 'GOVERNANCE', until: extended });
  assert.deepEqual(retentionToExtend({ size: 1, lockedUntil: at(-1), lockMode: 'COMPLIANCE' }, GOV10, NOW), { mode: 'GOVERNANCE', until: extended });
  // Shorter, even by a second: extended (this backup's own retention, and half a day for the rest of its stream).
  assert.deepEqual(retentionToExtend({ size: 1, lockedUntil: at(3), lockMode: 'GOVERNANCE' }, GOV10, NOW), { mode: 'GOVERNANCE', until: extended });
  assert.deepEqual(retentionToExtend({ size: 1, lockedUntil: new Date(NOW + 10.5 * DAY - 1000).toISOString(), lockMode: 'GOVERNANCE' }, GOV10, NOW)?.until, extended);
  // As long or longer: left alone, whatever the mode; so the backups of the next 2 days ask nothing.
  assert.equal(retentionToExtend({ size: 1, lockedUntil: needed, lockMode: 'GOVERNANCE' }, GOV10, NOW), undefined);
  assert.equal(retentionToExtend({ size: 1, lockedUntil: extended, lockMode: 'GOVERNANCE' }, GOV10, NOW + 2 * DAY), undefined);
  assert.ok(retentionToExtend({ size: 1, lockedUntil: extended, lockMode: 'GOVERNANCE' }, GOV10, NOW + 2 * DAY + 1000));
  assert.equal(retentionToExtend({ size: 1, lockedUntil: at(30), lockMode: 'GOVERNANCE' }, { mode: 'COMPLIANCE', days: 10 }, NOW), undefined);
  // A chunk under COMPLIANCE stays COMPLIANCE when a GOVERNANCE backup extends it; GOVERNANCE becomes what the config asks.
  assert.deepEqual(retentionToExtend({ size: 1, lockedUntil: at(2), lockMode: 'COMPLIANCE' }, GOV10, NOW), { mode: 'COMPLIANCE', until: extended });
  assert.deepEqual(retentionToExtend({ size: 1, lockedUntil: at(2), lockMode: 'GOVERNANCE' }, { mode: 'COMPLIANCE', days: 10 }, NOW), {
    mode: 'COMPLIANCE',
    until: extended,
  });
  // The margin is at least a day.
  assert.equal(retentionToExtend({ size: 1 }, { mode: 'GOVERNANCE', days: 2 }, NOW)?.until, retainUntil(3, NOW));
});

test('session markers and probes are written without retention; backups, manifests and chunks with it', () => {
  const locked = (key: string) => objectLockHeaders(key, 'GOVERNANCE', 3)['x-amz-object-lock-mode'] === 'GOVERNANCE';
  assert.equal(locked(`${sessionsPrefix('prod/c1')}backup-20260601T000000000Z-1-ab`), false);
  assert.equal(locked(`${sessionsPrefix('prod/c1')}prune-20260601T000000000Z-1-ab`), false);
  assert.equal(locked('prod/c1/backups/20260601/20260601000000/.gpbackup_s3_plugin_probe_1_2'), false);
  assert.equal(locked('prod/c1/backups/20260601/20260601000000/gpbackup_0_20260601000000'), true);
  assert.equal(locked(`${chunkPrefix('prod/c1')}ab/ab${'0'.repeat(62)}`), true);
  // A chunk is locked a quarter of the days longer (at least a day): its manifest is written when the stream ends.
  const until = (key: string, days: number) => objectLockHeaders(key, 'GOVERNANCE', days)['x-amz-object-lock-retain-until-date']!;
  const chunk = `${chunkPrefix('prod/c1')}ab/ab${'0'.repeat(62)}`;
  const manifest = 'prod/c1/backups/20260601/20260601000000/gpbackup_0_20260601000000';
  const near = (iso: string, days: number) => Math.abs(Date.parse(iso) - (Date.now() + days * DAY)) < 5000;
  assert.ok(near(until(chunk, 3), 4) && near(until(manifest, 3), 3), `${until(chunk, 3)} ${until(manifest, 3)}`);
  assert.ok(near(until(chunk, 40), 50), until(chunk, 40));
  // A folder that happens to be called so keeps its backups locked.
  assert.equal(locked('chunks-sessions/backups/20260601/20260601000000/gpbackup_0_20260601000000'), true);
});

/** A MemoryStore with S3 Object Lock: retention per key, reported by HEAD, set by putObjectRetention. */
class LockingStore extends MemoryStore {
  readonly retention = new Map<string, { mode: string; until: string }>();
  readonly retentionCalls: string[] = [];
  refuseRetention = false;

  async objectLockEnabled(): Promise<boolean> {
    return true;
  }

  override async headObject(key: string): Promise<ObjectHead | undefined> {
    const head = await super.headObject(key);
    const r = this.retention.get(key);
    return head && r ? { ...head, lockedUntil: r.until, lockMode: r.mode } : head;
  }

  async putObjectRetention(key: string, mode: string, until: string): Promise<void> {
    this.retentionCalls.push(key);
    if (this.refuseRetention) throw new StoreRequestError(`setting the object lock retention of s3://${this.bucket}/${key}: AccessDenied: Access Denied (HTTP 403)`, 403, 'AccessDenied');
    this.retention.set(key, { mode, until });
  }
}

const SMALL: ChunkSizes = { min: 2048, avg: 8192, max: 32768 };
const FOLDER = 'f';
const keyOf = (ts: string) => `${FOLDER}/backups/${ts.slice(0, 8)}/${ts}/gpbackup_0_${ts}_16384`;

function data(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 32) createHash('sha256').update(String(i)).digest().copy(out, i);
  return out;
}

function backup(store: MemoryStore, bytes: Buffer, key: string, lock?: ChunkLock) {
  return backupDeduplicated(store, key, new StreamSource(once(bytes)), { folder: FOLDER, partSize: 256 * 1024, concurrency: 4, sizes: SMALL, lock });
}

async function* once(bytes: Buffer): AsyncIterable<Uint8Array> {
  yield bytes;
}

const chunkKeys = (store: MemoryStore) => [...store.objects.keys()].filter(k => k.startsWith(chunkPrefix(FOLDER)));

test('a backup reusing chunks extends the shorter retentions before writing its manifest', async () => {
  const store = new LockingStore();
  const d = data(400_000);
  await backup(store, d, keyOf('20260601000000'));
  const chunks = chunkKeys(store);
  assert.ok(chunks.length > 5);
  // As a 2-day backup would have left them, one under COMPLIANCE, one locked for longer than asked.
  const soon = retainUntil(2);
  for (const k of chunks) store.retention.set(k, { mode: 'GOVERNANCE', until: soon });
  store.retention.set(chunks[0]!, { mode: 'COMPLIANCE', until: soon });
  const later = retainUntil(40);
  store.retention.set(chunks[1]!, { mode: 'GOVERNANCE', until: later });

  const before = Date.now();
  const r = await backup(store, d, keyOf('20260602000000'), GOV10);
  assert.equal(r.uploaded, 0);
  assert.equal(r.extended, chunks.length - 1);
  assert.deepEqual(store.retentionCalls.sort(), chunks.filter(k => k !== chunks[1]).sort());
  for (const k of chunks) {
    const until = Date.parse(store.retention.get(k)!.until);
    if (k === chunks[1]) assert.equal(store.retention.get(k)!.until, later);
    else assert.ok(until >= before + 12.5 * DAY - 1000 && until <= Date.now() + 12.5 * DAY, `${k}: ${store.retention.get(k)!.until}`);
  }
  assert.equal(store.retention.get(chunks[0]!)!.mode, 'COMPLIANCE');
  assert.equal(store.retention.get(chunks[2]!)!.mode, 'GOVERNANCE');
  // The retentions were set before the manifest was written.
  const manifestPut = store.calls.findIndex(c => c.op === 'put' && c.key === keyOf('20260602000000'));
  const chunkHeads = store.calls.flatMap((c, i) => (c.op === 'head' && c.key.startsWith(chunkPrefix(FOLDER)) ? [i] : []));
  assert.ok(manifestPut > Math.max(...chunkHeads));

  // Locked long enough now: a third backup asks nothing.
  store.retentionCalls.length = 0;
  assert.equal((await backup(store, d, keyOf('20260603000000'), GOV10)).extended, 0);
  assert.deepEqual(store.retentionCalls, []);
});

test('a backup that cannot extend a reused chunk fails, naming the chunk and the permission, and writes no manifest', async () => {
  const store = new LockingStore();
  const d = data(100_000);
  await backup(store, d, keyOf('20260601000000'));
  store.refuseRetention = true;
  await assert.rejects(
    backup(store, d, keyOf('20260602000000'), GOV10),
    new RegExp(
      `^PluginError: extending the object lock retention of chunk s3://test-bucket/${chunkPrefix(FOLDER)}[0-9a-f]{2}/[0-9a-f]{64}, which this backup reuses, to \\S+ \\(GOVERNANCE\\) failed .*AccessDenied.*allow s3:PutObjectRetention, and s3:GetObjectRetention \\(without which a HEAD shows no retention\\)$`,
    ),
  );
  assert.equal(store.objects.has(keyOf('20260602000000')), false);
  assert.deepEqual([...store.objects.keys()].filter(k => k.startsWith(sessionsPrefix(FOLDER))), []);
});

test('prune keeps unnamed chunks still under retention and says until when; expired ones go', async () => {
  const store = new LockingStore();
  const a = data(300_000);
  await backup(store, a, keyOf('20260601000000'));
  const chunks = chunkKeys(store);
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const k of chunks) store.modified.set(k, old);
  store.objects.delete(keyOf('20260601000000')); // the backup deleted: every chunk is unnamed
  const latest = new Date(Date.now() + 5 * DAY);
  store.retention.set(chunks[0]!, { mode: 'GOVERNANCE', until: new Date(Date.now() + DAY).toISOString() });
  store.retention.set(chunks[1]!, { mode: 'COMPLIANCE', until: latest.toISOString() });
  store.retention.set(chunks[2]!, { mode: 'GOVERNANCE', until: new Date(Date.now() - DAY).toISOString() });

  const r = await prune(store, { folder: FOLDER, graceMs: 0, keys: [], concurrency: 3, retries: 1 });
  assert.equal(r.locked, 2);
  assert.equal(r.lockedUntil, latest.toISOString());
  assert.equal(r.deleted, chunks.length - 2);
  assert.deepEqual(chunkKeys(store).sort(), [chunks[0]!, chunks[1]!].sort());
  assert.ok(store.maxInFlight <= 3);
});
