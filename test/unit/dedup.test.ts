/**
 * Deduplication's core against the in-memory store: the chunker's boundaries, the manifest codec,
 * a backup's chunks stored once, restores (whole and ranges) verified chunk by chunk, keyed names
 * with encryption, and prune's rules (referenced, young, live backup).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { Chunker, chunkLengths, DEFAULT_CHUNK_SIZES, type ChunkSizes } from '../../src/dedup/chunker.js';
import { decodeChunkList, encodeChunkList, isManifest } from '../../src/dedup/manifest.js';
import { backupDeduplicated } from '../../src/dedup/backup.js';
import { ManifestCatcher, readManifest, restoreChunkRanges, restoreChunks } from '../../src/dedup/restore.js';
import { chunkPrefix, nameOfChunkKey } from '../../src/dedup/chunk-store.js';
import { prune } from '../../src/dedup/prune.js';
import { sessionsPrefix } from '../../src/dedup/sessions.js';
import type { UserKey } from '../../src/storage/encryption/format.js';
import type { Sink } from '../../src/storage/sink.js';
import { MemoryStore } from '../support/memory-store.js';
import { StreamSource } from '../support/stream-source.js';

const SMALL: ChunkSizes = { min: 2048, avg: 8192, max: 32768 };
const FOLDER = 'f';
const KEY = `${FOLDER}/backups/20240101/20240101000000/gpbackup_0_20240101000000_16384`;

/** Text rows like COPY's, from a fixed seed: compressible, and no two rows alike. */
function rows(count: number, seed = 1, from = 0): Buffer {
  const lines: string[] = [];
  for (let i = from; i < from + count; i++) {
    const h = createHash('sha256').update(`${seed}:${i}`).digest('hex');
    lines.push(`${i}\t${h.slice(0, 24)}\tcustomer ${h.slice(24, 40)}\t${parseInt(h.slice(40, 48), 16) % 100000}.${h.slice(48, 50)}\n`);
  }
  return Buffer.from(lines.join(''));
}

class MemorySink implements Sink {
  readonly parts: Buffer[] = [];
  async write(buf: Buffer): Promise<void> {
    this.parts.push(Buffer.from(buf));
  }
  get bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

async function* pieces(buf: Buffer, size = 100_000): AsyncIterable<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

function backup(store: MemoryStore, data: Buffer, key = KEY, encryption?: UserKey) {
  return backupDeduplicated(store, key, new StreamSource(pieces(data)), { folder: FOLDER, partSize: 256 * 1024, concurrency: 4, sizes: SMALL, key: encryption });
}

const readOpts = (keys: UserKey[] = []) => ({ folder: FOLDER, concurrency: 3, retries: 1, keys });

async function restore(store: MemoryStore, key = KEY, keys: UserKey[] = []): Promise<Buffer> {
  const manifest = await readManifest(store, key, store.objects.get(key)!.length, readOpts(keys));
  assert.ok(manifest, 'the object is a manifest');
  const out = new MemorySink();
  await restoreChunks(store, manifest, out, readOpts(keys));
  return out.bytes;
}

const chunkKeys = (store: MemoryStore) => [...store.objects.keys()].filter(k => k.startsWith(chunkPrefix(FOLDER)));

test('chunker: the same bytes cut the same, within min and max', () => {
  const data = rows(40_000);
  const a = chunkLengths(data, new Chunker(SMALL));
  assert.deepEqual(chunkLengths(data, new Chunker(SMALL)), a);
  assert.equal(a.reduce((x, y) => x + y, 0), data.length);
  assert.ok(a.slice(0, -1).every(n => n >= SMALL.min && n <= SMALL.max), 'every chunk but the last within [min, max]');
  const avg = data.length / a.length;
  assert.ok(avg > SMALL.avg * 0.6 && avg < SMALL.avg * 1.6, `average ${avg} near ${SMALL.avg}`);
  // Bytes whose hash never matches (a run of one byte) are cut at max.
  const run = chunkLengths(Buffer.alloc(100_000, 0x55), new Chunker(SMALL));
  assert.ok(run.length >= 4 && run.every(n => n <= SMALL.max), `${run}`);
});

test('chunker: bytes inserted change only the chunks around them', () => {
  const data = rows(40_000);
  const edited = Buffer.concat([data.subarray(0, 1_000_000), Buffer.from('an inserted row\n'), data.subarray(1_000_000)]);
  const names = (b: Buffer) => {
    const out: string[] = [];
    let pos = 0;
    for (const n of chunkLengths(b, new Chunker(SMALL))) {
      out.push(createHash('sha256').update(b.subarray(pos, pos + n)).digest('hex'));
      pos += n;
    }
    return out;
  };
  const before = new Set(names(data));
  const after = names(edited);
  const fresh = after.filter(n => !before.has(n));
  assert.ok(fresh.length >= 1 && fresh.length <= 3, `${fresh.length} new chunk(s) of ${after.length}`);
});

test('chunker: the default sizes are 256 KiB / 1 MiB / 4 MiB and refuse nonsense', () => {
  assert.deepEqual(DEFAULT_CHUNK_SIZES, { min: 256 * 1024, avg: 1024 * 1024, max: 4 * 1024 * 1024 });
  assert.throws(() => new Chunker({ min: 10, avg: 5, max: 20 }), /min <= avg <= max/);
});

test('manifest: round trip, and damage is caught', () => {
  const chunks = [1, 2, 3].map(i => ({ name: createHash('sha256').update(String(i)).digest(), length: i * 1000 }));
  const body = encodeChunkList(chunks);
  const back = decodeChunkList(body, 'x');
  assert.equal(back.size, 6000);
  assert.deepEqual(back.chunks.map(c => [c.name.toString('hex'), c.length]), chunks.map(c => [c.name.toString('hex'), c.length]));
  const bad = Buffer.from(body);
  bad[20] ^= 1;
  assert.throws(() => decodeChunkList(bad, 'x'), /damaged \(its digest/);
  assert.throws(() => decodeChunkList(body.subarray(0, 40), 'x'), /damaged/);
});

test('backup: a manifest at the key, each chunk stored once, the second backup uploads nothing', async () => {
  const store = new MemoryStore();
  const data = rows(30_000);
  const first = await backup(store, data);
  assert.ok(isManifest(store.objects.get(KEY)!));
  assert.equal(first.bytes, data.length);
  assert.equal(chunkKeys(store).length, first.uploaded);
  assert.ok(chunkKeys(store).every(k => nameOfChunkKey(k) !== undefined));
  assert.deepEqual(await restore(store), data);
  const key2 = KEY.replace(/20240101000000/g, '20240102000000');
  const second = await backup(store, data, key2);
  assert.equal(second.uploaded, 0);
  assert.equal(second.chunks, first.chunks);
  assert.deepEqual(await restore(store, key2), data);
  // Session markers are gone once the backups end.
  assert.deepEqual([...store.objects.keys()].filter(k => k.startsWith(sessionsPrefix(FOLDER))), []);
});

test('backup: rows changed in a few places upload a few chunks', async () => {
  const store = new MemoryStore();
  const data = rows(30_000);
  await backup(store, data);
  const changed = Buffer.concat([data.subarray(0, 300_000), rows(20, 2, 5000), data.subarray(301_000, 1_200_000), rows(20, 3, 9000), data.subarray(1_200_500)]);
  const r = await backup(store, changed, KEY.replace(/20240101000000/g, '20240102000000'));
  assert.ok(r.uploadedBytes < changed.length * 0.05, `${r.uploadedBytes} of ${changed.length} new`);
  assert.deepEqual(await restore(store, KEY.replace(/20240101000000/g, '20240102000000')), changed);
});

test('restore: a damaged or missing chunk fails the restore', async () => {
  const store = new MemoryStore();
  await backup(store, rows(10_000));
  const [victim] = chunkKeys(store);
  const stored = store.objects.get(victim!)!;
  stored[stored.length - 1] ^= 1;
  await assert.rejects(restore(store), /does not match its name|CRC-32|codec|zstd/);
  store.objects.delete(victim!);
  await assert.rejects(restore(store), /chunk of this backup is missing/);
});

test('restore ranges: only the covering chunks are fetched', async () => {
  const store = new MemoryStore();
  const data = rows(30_000);
  const r = await backup(store, data);
  const manifest = (await readManifest(store, KEY, store.objects.get(KEY)!.length, readOpts()))!;
  const ranges = [
    { start: 10, end: 20 },
    { start: 25, end: 40_000 },
    { start: 1_000_000, end: 1_000_001 },
    { start: data.length - 5, end: data.length },
  ];
  const out = new MemorySink();
  const before = store.count('get');
  const fetched = await restoreChunkRanges(store, manifest, ranges, out, readOpts());
  assert.deepEqual(out.bytes, Buffer.concat(ranges.map(x => data.subarray(x.start, x.end))));
  assert.equal(store.count('get') - before, fetched);
  assert.ok(fetched < r.chunks / 4, `${fetched} of ${r.chunks} chunks fetched`);
});

test('ManifestCatcher passes plain objects through and keeps manifests', async () => {
  for (const plain of [Buffer.alloc(0), Buffer.from('\0GP'), Buffer.from('1\tabc\n'), rows(100)]) {
    const out = new MemorySink();
    const c = new ManifestCatcher(out);
    for (let i = 0; i < plain.length; i += 3) await c.write(plain.subarray(i, i + 3));
    assert.equal(await c.finish(), undefined);
    assert.deepEqual(out.bytes, plain);
  }
  const store = new MemoryStore();
  await backup(store, rows(100));
  const out = new MemorySink();
  const c = new ManifestCatcher(out);
  const m = store.objects.get(KEY)!;
  await c.write(m.subarray(0, 3));
  await c.write(m.subarray(3));
  assert.deepEqual(await c.finish(), m);
  assert.equal(out.parts.length, 0);
  // What it keeps is its own: the caller's buffers are reused (zeroed here) once write() returns.
  for (const cut of [3, m.length]) {
    const kept = new ManifestCatcher(new MemorySink());
    for (const piece of [m.subarray(0, cut), m.subarray(cut)]) {
      const reused = Buffer.from(piece);
      await kept.write(reused);
      reused.fill(0);
    }
    assert.deepEqual(await kept.finish(), m);
  }
});

test('encryption: keyed chunk names, sealed chunks and list, restore needs the key', async () => {
  const key: UserKey = { kind: 'raw', key: Buffer.alloc(32, 7), source: 'test' };
  const store = new MemoryStore();
  const data = rows(10_000);
  await backup(store, data, KEY, key);
  const plainStore = new MemoryStore();
  await backup(plainStore, data);
  // The same content under a key gets other names: a name says nothing without the key.
  const names = new Set(chunkKeys(plainStore).map(nameOfChunkKey));
  assert.ok(chunkKeys(store).every(k => !names.has(nameOfChunkKey(k))));
  assert.ok(chunkKeys(store).every(k => store.objects.get(k)!.subarray(0, 8).equals(Buffer.from('\0GPBKENC', 'latin1'))));
  assert.deepEqual(await restore(store, KEY, [key]), data);
  await assert.rejects(restore(store, KEY, []), /no key is configured/);
  const passphrase: UserKey = { kind: 'passphrase', passphrase: Buffer.from('a long enough passphrase'), source: '/k' };
  await assert.rejects(backup(new MemoryStore(), data, KEY, passphrase), /needs a 256-bit key in \/k/);
});

const pruneOpts = (graceMs: number) => ({ folder: FOLDER, graceMs, keys: [], concurrency: 2, retries: 1 });

test('prune: deletes only unreferenced chunks older than the grace period', async () => {
  const store = new MemoryStore();
  const a = rows(20_000, 1);
  const b = rows(20_000, 2);
  const keyB = KEY.replace(/20240101000000/g, '20240102000000');
  await backup(store, a);
  await backup(store, b, keyB);
  store.objects.set(`${FOLDER}/backups/20240101/20240101000000/gpbackup_20240101000000_report`, Buffer.from('plain object'));
  const all = chunkKeys(store);
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const k of all) store.modified.set(k, old);

  let r = await prune(store, pruneOpts(3600_000));
  assert.equal(r.deleted, 0);
  assert.equal(r.referenced, all.length);
  assert.equal(r.manifests, 2);
  assert.equal(r.plainObjects, 1);

  store.objects.delete(KEY); // delete_backup of the first
  // Inside the grace period nothing goes.
  r = await prune(store, pruneOpts(3 * 3600_000));
  assert.equal(r.deleted, 0);
  assert.ok(r.young > 0);
  r = await prune(store, pruneOpts(3600_000));
  assert.equal(r.young, 0);
  assert.equal(r.deleted, all.length - r.referenced);
  assert.ok(r.deleted > 0 && r.deletedBytes > 0);
  assert.deepEqual(await restore(store, keyB), b);
  assert.equal(chunkKeys(store).length, r.referenced);
  assert.deepEqual([...store.objects.keys()].filter(k => k.startsWith(sessionsPrefix(FOLDER))), []);
});

test('prune: a live backup marker stops it; an unreadable object stops it before deleting', async () => {
  const store = new MemoryStore();
  await backup(store, rows(5000));
  store.objects.delete(KEY);
  for (const k of chunkKeys(store)) store.modified.set(k, new Date(0));
  const marker = `${sessionsPrefix(FOLDER)}backup-x`;
  await store.putObject(marker, Buffer.from('x'), 0x8cdc1683);
  await assert.rejects(prune(store, pruneOpts(0)), /a deduplicated backup is writing/);
  store.modified.set(marker, new Date(Date.now() - 2 * 3600_000)); // a killed backup's, an hour stale
  const chunks = chunkKeys(store).length;
  store.fault = (op, key) => {
    if (op === 'get' && key.includes('/backups/')) throw new Error('boom');
  };
  store.objects.set(`${FOLDER}/backups/20240101/20240101000000/other`, Buffer.alloc(100, 1));
  await assert.rejects(prune(store, pruneOpts(0)), /could not read .* nothing was deleted/);
  assert.equal(chunkKeys(store).length, chunks);
  store.fault = () => {};
  const r = await prune(store, pruneOpts(0));
  assert.equal(r.deleted, chunks);
});

test('the API for verify_backup: manifest, chunk presence, deep check', async () => {
  const { chunkPresent, readManifest: read, verifyChunk } = await import('../../src/dedup/index.js');
  const store = new MemoryStore();
  await backup(store, rows(5000));
  const manifest = (await read(store, KEY, store.objects.get(KEY)!.length, readOpts()))!;
  assert.ok((await chunkPresent(store, FOLDER, manifest.chunks[0]!))! > 0);
  assert.equal((await verifyChunk(store, manifest, 0, readOpts())).length, manifest.chunks[0]!.length);
  const [first] = chunkKeys(store).filter(k => k.endsWith(manifest.chunks[0]!.name.toString('hex')));
  store.objects.delete(first!);
  assert.equal(await chunkPresent(store, FOLDER, manifest.chunks[0]!), undefined);
  assert.equal(await read(store, `${FOLDER}/plain`, 0, readOpts()), undefined);
});

test('a backup writes its marker before it looks for prunes, and waits for a live one', async () => {
  const { waitForPrunes } = await import('../../src/dedup/sessions.js');
  const store = new MemoryStore();
  await backup(store, rows(2000));
  const marker = store.calls.findIndex(c => c.op === 'put' && c.key.includes('/chunks-sessions/backup-'));
  const look = store.calls.findIndex(c => c.op === 'list' && c.key.endsWith('/chunks-sessions/prune-'));
  const firstHead = store.calls.findIndex(c => c.op === 'head');
  assert.ok(marker >= 0 && marker < look && look < firstHead, `marker ${marker}, listing ${look}, first HEAD ${firstHead}`);

  const prune = `${sessionsPrefix(FOLDER)}prune-x`;
  await store.putObject(prune, Buffer.from('x'), 0x8cdc1683);
  setTimeout(() => store.objects.delete(prune), 60);
  assert.ok((await waitForPrunes(store, FOLDER, undefined, 10)) >= 50);
  await store.putObject(prune, Buffer.from('x'), 0x8cdc1683);
  store.modified.set(prune, new Date(Date.now() - 2 * 3600_000)); // a killed prune's, stale
  assert.ok((await waitForPrunes(store, FOLDER, undefined, 10)) < 50);
});

test('two backups of the same stream at once store each chunk once; both restore', async () => {
  const store = new MemoryStore();
  store.latencyMs = 2;
  const data = rows(20_000);
  const key2 = KEY.replace(/20240101000000/g, '20240102000000');
  const [a] = await Promise.all([backup(store, data), backup(store, data, key2)]);
  assert.equal(chunkKeys(store).length, new Set(chunkKeys(store)).size);
  assert.ok(chunkKeys(store).length <= a.chunks);
  assert.deepEqual(await restore(store), data);
  assert.deepEqual(await restore(store, key2), data);
});

test('a backup that fails midway leaves no manifest, and its chunks go with the next prune after the grace period', async () => {
  const store = new MemoryStore();
  let puts = 0;
  store.fault = (op, key) => {
    if (op === 'put' && key.includes('/chunks/') && ++puts === 5) throw new Error('connection reset');
  };
  await assert.rejects(backup(store, rows(20_000)), /connection reset/);
  store.fault = () => {};
  assert.equal(store.objects.has(KEY), false);
  const orphans = chunkKeys(store).length;
  assert.ok(orphans >= 4);
  let r = await prune(store, pruneOpts(3600_000));
  assert.equal(r.young, orphans);
  assert.equal(r.deleted, 0);
  for (const k of chunkKeys(store)) store.modified.set(k, new Date(Date.now() - 2 * 3600_000));
  r = await prune(store, pruneOpts(3600_000));
  assert.equal(r.deleted, orphans);
});

test('an empty stream and a one-byte stream round-trip', async () => {
  for (const data of [Buffer.alloc(0), Buffer.from('x')]) {
    const store = new MemoryStore();
    const r = await backup(store, data);
    assert.equal(r.chunks, data.length);
    assert.deepEqual(await restore(store), data);
  }
});
