/**
 * The client-side encryption format (src/storage/encryption): known-answer vectors committed in
 * encryption-vectors.json, every size around segment boundaries, streaming against one-shot
 * encryption, and tampering of every kind caught before any unverified byte is written.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { PluginConfig } from '../../src/config/types.js';
import { restoreObject, restoreSubset } from '../../src/protocol/encryption.js';
import {
  encryptBuffer,
  HEADER_SIZE,
  layoutOf,
  rawKeyId,
  TAG_SIZE,
  type RandomBytes,
  type UserKey,
} from '../../src/storage/encryption/format.js';
import { parseKey, readKeyFile } from '../../src/storage/encryption/keyfile.js';
import { DecryptingSink, DetectingSink } from '../../src/storage/encryption/sink.js';
import { EncryptingSource } from '../../src/storage/encryption/source.js';
import type { Sink } from '../../src/storage/sink.js';
import { MIN_PART_SIZE } from '../../src/storage/store.js';
import { uploadStream } from '../../src/storage/upload.js';
import { MemoryStore } from '../support/memory-store.js';
import { patternBytes } from '../support/plugin.js';
import { StreamSource } from '../support/stream-source.js';

const SEG = 4096;
const STRIDE = SEG + TAG_SIZE;
const KEY: UserKey = { kind: 'raw', key: Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'), source: 'test key' };
const OTHER_KEY: UserKey = { kind: 'raw', key: Buffer.alloc(32, 0x55), source: 'other key' };
const PASSPHRASE: UserKey = { kind: 'passphrase', passphrase: Buffer.from('correct horse battery staple'), source: 'test passphrase' };

/** The injected RNG of the vectors: bytes 0, 1, 2, ... so salt, nonce prefix, wrap nonce and data key are fixed. */
function countingRandom(): RandomBytes {
  let next = 0;
  return n => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = next++ & 0xff;
    return b;
  };
}

class MemorySink implements Sink {
  chunks: Buffer[] = [];
  async write(buf: Buffer): Promise<void> {
    this.chunks.push(Buffer.from(buf));
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function chunked(data: Buffer, chunk: number): StreamSource {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) parts.push(data.subarray(i, i + chunk));
  return new StreamSource(Readable.from(parts));
}

/** Everything an EncryptingSource gives, read in parts of `partSize`. */
async function encryptStreamed(plain: Buffer, key: UserKey, random: RandomBytes, partSize: number, segmentSize = SEG): Promise<Buffer> {
  const src = new EncryptingSource(chunked(plain, 1000), key, random, segmentSize);
  const out: Buffer[] = [];
  while (!(await src.atEnd())) out.push(Buffer.from((await src.read(Buffer.alloc(partSize))).data));
  return Buffer.concat(out);
}

async function decrypt(sealed: Buffer, keys: UserKey[], chunk: number): Promise<MemorySink> {
  const out = new MemorySink();
  const sink = new DecryptingSink(out, keys, 's3://b/k');
  for (let i = 0; i < sealed.length; i += chunk) await sink.write(sealed.subarray(i, i + chunk));
  await sink.finish();
  return out;
}

/** Decryption must fail with `pattern`, and what was written is a verified prefix of `plain` ending at a segment boundary. */
async function assertRejected(sealed: Buffer, plain: Buffer, pattern: RegExp, keys: UserKey[] = [KEY]): Promise<void> {
  const out = new MemorySink();
  const sink = new DecryptingSink(out, keys, 's3://b/k');
  await assert.rejects(async () => {
    for (let i = 0; i < sealed.length; i += 5000) await sink.write(sealed.subarray(i, i + 5000));
    await sink.finish();
  }, pattern);
  const written = out.data;
  assert.ok(written.length % SEG === 0 && written.length < Math.max(1, plain.length), `wrote ${written.length} bytes after a failure`);
  assert.ok(written.equals(plain.subarray(0, written.length)));
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const vectorsPath = new URL('./encryption-vectors.json', import.meta.url);
const VECTOR_SIZES = [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 2 * SEG + 1];

test('known-answer vectors (fixed key, data key, salt and nonces), one-shot and streamed alike', async () => {
  const vectors = JSON.parse(readFileSync(vectorsPath, 'utf8')) as {
    key: string;
    segmentSize: number;
    keyId: string;
    cases: Array<{ plaintextSize: number; plaintextSeed: number; sha256: string; hex?: string }>;
    passphrase: { passphrase: string; plaintextSize: number; sha256: string };
  };
  assert.equal(vectors.key, KEY.kind === 'raw' ? KEY.key.toString('hex') : '');
  assert.equal(rawKeyId(KEY.kind === 'raw' ? KEY.key : Buffer.alloc(0)), vectors.keyId);
  assert.deepEqual(vectors.cases.map(c => c.plaintextSize), VECTOR_SIZES);
  for (const c of vectors.cases) {
    const plain = patternBytes(c.plaintextSize, c.plaintextSeed);
    const sealed = encryptBuffer(plain, KEY, countingRandom(), vectors.segmentSize);
    assert.equal(sha256(sealed), c.sha256, `size ${c.plaintextSize}`);
    if (c.hex) assert.equal(sealed.toString('hex'), c.hex);
    assert.ok((await encryptStreamed(plain, KEY, countingRandom(), MIN_PART_SIZE, vectors.segmentSize)).equals(sealed));
    assert.ok((await decrypt(sealed, [KEY], 999)).data.equals(plain));
  }
  const p = vectors.passphrase;
  assert.equal(p.passphrase, PASSPHRASE.kind === 'passphrase' ? PASSPHRASE.passphrase.toString() : '');
  const plain = patternBytes(p.plaintextSize, 3);
  const sealed = encryptBuffer(plain, PASSPHRASE, countingRandom(), SEG);
  assert.equal(sha256(sealed), p.sha256);
  assert.ok((await decrypt(sealed, [OTHER_KEY, PASSPHRASE], 4096)).data.equals(plain));
});

test('every size around the segment boundaries round-trips, in any part and write sizes', async () => {
  for (const size of [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG - 1, 2 * SEG, 2 * SEG + 1, 16 * SEG, 16 * SEG + 1, 17 * SEG, 40 * SEG + 3]) {
    const plain = patternBytes(size, size + 1);
    const sealed = encryptBuffer(plain, KEY, countingRandom(), SEG);
    const n = Math.max(1, Math.ceil(size / SEG));
    assert.equal(sealed.length, HEADER_SIZE + size + n * TAG_SIZE, `size ${size}`);
    assert.deepEqual(layoutOf(sealed.length, SEG), { segments: n, plainSize: size });
    for (const partSize of [HEADER_SIZE, STRIDE, 3 * STRIDE + 7, MIN_PART_SIZE]) {
      assert.ok((await encryptStreamed(plain, KEY, countingRandom(), partSize)).equals(sealed), `size ${size} part ${partSize}`);
    }
    for (const chunk of [1, 17, STRIDE - 1, STRIDE, STRIDE + 1, 3 * STRIDE, 1 << 20]) {
      if (chunk === 1 && size > 2 * SEG + 1) continue;
      assert.ok((await decrypt(sealed, [KEY], chunk)).data.equals(plain), `size ${size} chunk ${chunk}`);
    }
  }
});

test('a fresh data key and nonce prefix per object; the ciphertext does not show the plaintext', () => {
  const plain = Buffer.alloc(3 * SEG, 'a');
  const a = encryptBuffer(plain, KEY);
  const b = encryptBuffer(plain, KEY);
  assert.notDeepEqual(a.subarray(HEADER_SIZE), b.subarray(HEADER_SIZE));
  assert.equal(a.indexOf(Buffer.alloc(64, 'a')), -1);
});

test('every header byte altered is refused: the wrap tag authenticates the whole header', async () => {
  const plain = patternBytes(SEG + 10, 5);
  const sealed = encryptBuffer(plain, KEY, countingRandom(), SEG);
  for (let i = 0; i < HEADER_SIZE; i++) {
    const bad = Buffer.from(sealed);
    bad[i]! ^= 0x01;
    // The magic's first bytes: then it reads as a plain object (DetectingSink), not as this format.
    await assertRejected(bad, plain, /decrypting s3:\/\/b\/k: (it does not start|its encryption|it was encrypted with)/);
  }
});

test('segments altered, reordered, dropped, duplicated, truncated at every boundary or extended are refused', async () => {
  const plain = patternBytes(4 * SEG + 100, 9);
  const sealed = encryptBuffer(plain, KEY, countingRandom(), SEG);
  const segs = [0, 1, 2, 3, 4].map(i => sealed.subarray(HEADER_SIZE + i * STRIDE, HEADER_SIZE + (i + 1) * STRIDE));
  const header = sealed.subarray(0, HEADER_SIZE);
  const auth = /failed authentication/;
  for (let i = 0; i < 5; i++) {
    for (const at of [0, 100, segs[i]!.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[HEADER_SIZE + i * STRIDE + at]! ^= 0x80;
      await assertRejected(bad, plain, new RegExp(`segment ${i} .*failed authentication`));
    }
  }
  await assertRejected(Buffer.concat([header, segs[1]!, segs[0]!, ...segs.slice(2)]), plain, auth); // swapped
  await assertRejected(Buffer.concat([header, segs[0]!, ...segs.slice(2)]), plain, auth); // dropped
  await assertRejected(Buffer.concat([header, segs[0]!, segs[0]!, ...segs.slice(1)]), plain, auth); // duplicated
  await assertRejected(Buffer.concat([header, ...segs.slice(0, 4)]), plain, /segment 3 .*as the last segment/); // last dropped
  await assertRejected(Buffer.concat([sealed, Buffer.from([0])]), plain, auth); // one byte appended
  await assertRejected(Buffer.concat([sealed, segs[4]!]), plain, auth); // last segment appended again
  // Truncated at every segment and tag boundary, and a byte either side.
  for (let cut = 0; cut < sealed.length; cut++) {
    const rel = cut - HEADER_SIZE;
    const nearBoundary = cut <= HEADER_SIZE + 1 || [0, 1, SEG - 1, SEG, SEG + 1, STRIDE - 1].includes(((rel % STRIDE) + STRIDE) % STRIDE);
    if (!nearBoundary) continue;
    await assertRejected(sealed.subarray(0, cut), plain, /truncated|failed authentication/);
  }
});

test('a wrong key, or none, is a clear error; an old key (rotation) opens what it encrypted', async () => {
  const plain = patternBytes(1000, 2);
  const sealed = encryptBuffer(plain, KEY);
  await assertRejected(sealed, plain, /encrypted with a 256-bit key with key ID [0-9a-f]{16} that none of the configured key files holds \(other key\)/, [OTHER_KEY]);
  assert.ok((await decrypt(sealed, [OTHER_KEY, KEY], 100)).data.equals(plain));
  const out = new MemorySink();
  const detecting = new DetectingSink(out, [], 's3://b/k');
  await assert.rejects(detecting.write(sealed), /the object is encrypted .* no key is configured: set client_side_encryption: on and encryption_key_file/);
  assert.equal(out.data.length, 0);
  const withPassphrase = encryptBuffer(plain, PASSPHRASE);
  await assertRejected(withPassphrase, plain, /encrypted with a passphrase that none of the configured key files holds/, [KEY]);
});

test('plain objects (Go-written, older backups) pass through a restore unchanged, whatever their size', async () => {
  for (const size of [0, 1, 7, 8, 9, 5000]) {
    const plain = patternBytes(size, 11);
    const out = new MemorySink();
    const sink: DetectingSink = new DetectingSink(out, [KEY], "s3://b/k");
    for (let i = 0; i < size; i += 3) await sink.write(plain.subarray(i, i + 3));
    await sink.finish();
    assert.equal(sink.kind, 'plain');
    assert.ok(out.data.equals(plain));
  }
});

function configWith(keys: UserKey[]): PluginConfig {
  return { clientSideEncryption: true, encryptionKey: keys[0], decryptionKeys: keys } as PluginConfig;
}

test('through upload and download: single PUT and multipart objects, and subsets that fetch only their segments', async () => {
  const P = MIN_PART_SIZE;
  for (const size of [0, 100, P - HEADER_SIZE - 200, 2 * P + 12345]) {
    const store = new MemoryStore();
    const plain = patternBytes(size, 21);
    await uploadStream(store, 'k', new EncryptingSource(chunked(plain, 65536), KEY), { partSize: P, concurrency: 2 });
    const stored = store.objects.get('k')!;
    assert.equal(store.count('put'), stored.length <= P ? 1 : 0);
    assert.equal(stored.length, HEADER_SIZE + size + Math.max(1, Math.ceil(size / 65536)) * TAG_SIZE);
    const out = new MemorySink();
    const r = await restoreObject(configWith([KEY]), store, 'k', out, { partSize: P, concurrency: 3 });
    assert.equal(r.note, 'decrypted');
    assert.ok(out.data.equals(plain));
  }

  const store = new MemoryStore();
  const plain = patternBytes(3 * P, 22);
  await uploadStream(store, 'k', new EncryptingSource(chunked(plain, 65536), KEY), { partSize: P, concurrency: 2 });
  const size = store.objects.get('k')!.length;
  const ranges = [
    { start: 10, end: 20 },
    { start: 65530, end: 65540 }, // across a segment boundary
    { start: 65541, end: 70000 }, // the same segment again
    { start: P + 3, end: 2 * P },
    { start: 3 * P - 5, end: 3 * P }, // the last segment
  ];
  const before = store.calls.length;
  const out = new MemorySink();
  await restoreSubset(configWith([KEY]), store, 'k', size, ranges, out, { partSize: P, concurrency: 3 });
  assert.ok(out.data.equals(Buffer.concat(ranges.map(r => plain.subarray(r.start, r.end)))));
  const fetched = store.calls.slice(before).filter(c => c.op === 'get');
  assert.ok(fetched.length <= 6, `${fetched.length} GETs`);
  // Ranges past the plaintext's end are refused before any output.
  await assert.rejects(
    restoreSubset(configWith([KEY]), store, 'k', size, [{ start: 0, end: 3 * P + 1 }], new MemorySink(), { partSize: P, concurrency: 3 }),
    /beyond the end of s3:\/\/test-bucket\/k \(decrypted\)/,
  );
  // A segment altered at rest is caught in a subset too.
  store.objects.get('k')![HEADER_SIZE + 5]! ^= 1;
  await assert.rejects(
    restoreSubset(configWith([KEY]), store, 'k', size, ranges.slice(0, 1), new MemorySink(), { partSize: P, concurrency: 3 }),
    /segment 0 .*failed authentication/,
  );
});

test('key files: hex, base64 or a passphrase; mode 0600 or stricter; a regular file', () => {
  const hex = '00'.repeat(31) + 'ff';
  assert.deepEqual(parseKey(Buffer.from(hex + '\n'), 'f'), { kind: 'raw', key: Buffer.from(hex, 'hex'), source: 'f' });
  const b64 = Buffer.alloc(32, 7).toString('base64');
  assert.deepEqual(parseKey(Buffer.from(b64), 'f'), { kind: 'raw', key: Buffer.alloc(32, 7), source: 'f' });
  assert.equal(parseKey(Buffer.from('a long enough passphrase\n'), 'f').kind, 'passphrase');
  assert.throws(() => parseKey(Buffer.from('short'), 'f'), /neither a 256-bit key .* nor a passphrase of at least 16 bytes/);
  const dir = mkdtempSync(join(tmpdir(), 'keyfile-'));
  try {
    const file = join(dir, 'k');
    writeFileSync(file, hex, { mode: 0o600 });
    assert.equal(readKeyFile(file).kind, 'raw');
    chmodSync(file, 0o640);
    assert.throws(() => readKeyFile(file), /readable or writable by group or others \(mode 0640\): run chmod 600/);
    assert.throws(() => readKeyFile(join(dir, 'missing')), /cannot read .*missing: no such file/);
    assert.throws(() => readKeyFile(dir), /is not a regular file/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
