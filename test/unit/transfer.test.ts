/** Upload and download logic against the in-memory store: order, bounds, failures. */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { mock, test } from 'node:test';
import { log } from '../../src/log/gplog.js';
import { downloadObject, downloadRanges, splitRanges } from '../../src/storage/download.js';
import type { Sink } from '../../src/storage/sink.js';
import { crc32 } from '../../src/storage/crc32.js';
import { MIN_PART_SIZE, type RangeResponse } from '../../src/storage/store.js';
import { FdSource, PipeSource, PrefixedSource } from '../../src/storage/source.js';
import { uploadStream } from '../../src/storage/upload.js';
import { MemoryStore } from '../support/memory-store.js';
import { StreamSource } from '../support/stream-source.js';
import { patternBytes } from '../support/plugin.js';

const P = MIN_PART_SIZE;

/** What the transfers log (kept here, not in a log file under HOME). */
const logged: string[] = [];
mock.method(log, 'info', (msg: string) => logged.push(`INFO ${msg}`));
mock.method(log, 'verbose', (msg: string) => logged.push(`VERBOSE ${msg}`));
/** The lines logged while `fn` ran. */
async function logOf(fn: () => Promise<unknown>): Promise<string[]> {
  const from = logged.length;
  await fn();
  return logged.slice(from);
}

/** A source delivering `data` in chunks of `chunk` bytes. */
function source(data: Buffer, chunk = 65536): StreamSource {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) parts.push(data.subarray(i, i + chunk));
  return new StreamSource(Readable.from(parts));
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

for (const size of [0, 1, P - 1, P, P + 1, 3 * P + 1]) {
  test(`upload then download round-trips ${size} bytes`, async () => {
    const store = new MemoryStore();
    const data = patternBytes(size, size + 7);
    const r = await uploadStream(store, 'k', source(data, 100_003), { partSize: P, concurrency: 3 });
    assert.equal(r.bytes, size);
    assert.ok(store.objects.get('k')!.equals(data));
    const expectedParts = Math.max(1, Math.ceil(size / P));
    assert.equal(r.parts, expectedParts);
    // Up to one part: a single PutObject, no multipart.
    assert.equal(store.count('put'), size <= P ? 1 : 0);
    assert.equal(store.count('part'), size <= P ? 0 : expectedParts);
    assert.equal(store.uploads.size, 0);

    const sink = new MemorySink();
    const { bytes: n } = await downloadObject(store, 'k', sink, { partSize: P, concurrency: 4 });
    assert.equal(n, size);
    assert.ok(sink.data.equals(data));
    // An object of up to one part is one GET; a multipart object's checksum takes one HEAD.
    assert.equal(store.count('get'), Math.max(1, Math.ceil(size / P)));
    assert.equal(store.count('head'), size <= P ? 0 : 1);
  });
}

test('upload keeps at most `concurrency` parts in flight', async () => {
  const store = new MemoryStore();
  store.latencyMs = 20;
  const data = patternBytes(10 * P + 5);
  await uploadStream(store, 'k', source(data), { partSize: P, concurrency: 3 });
  assert.ok(store.objects.get('k')!.equals(data));
  assert.equal(store.maxInFlight, 3);
});

test('a failed part aborts the multipart upload: no object, no upload left', async () => {
  const store = new MemoryStore();
  store.fault = (op, _key, detail) => {
    if (op === 'part' && detail?.startsWith('3:')) throw new Error('InternalError: boom');
  };
  await assert.rejects(
    uploadStream(store, 'k', source(patternBytes(6 * P)), { partSize: P, concurrency: 2 }),
    /boom/,
  );
  assert.equal(store.objects.has('k'), false);
  assert.equal(store.uploads.size, 0);
  assert.equal(store.count('abort'), 1);
  assert.equal(store.count('complete'), 0);
});

test('a failing source aborts the multipart upload', async () => {
  const store = new MemoryStore();
  async function* broken() {
    yield patternBytes(2 * P + 10);
    throw new Error('stdin: read error');
  }
  await assert.rejects(uploadStream(store, 'k', new StreamSource(broken()), { partSize: P, concurrency: 2 }), /read error/);
  assert.equal(store.objects.size, 0);
  assert.equal(store.uploads.size, 0);
  assert.equal(store.count('abort'), 1);
});

test('an abort signal stops a stalled upload and aborts it', async () => {
  const store = new MemoryStore();
  const ac = new AbortController();
  async function* stalls() {
    yield patternBytes(P + 1);
    await new Promise(() => {}); // stdin that never ends
  }
  setTimeout(() => ac.abort(new Error('interrupted by SIGTERM')), 50);
  await assert.rejects(uploadStream(store, 'k', new StreamSource(stalls(), ac.signal), { partSize: P, concurrency: 2, signal: ac.signal }), /SIGTERM/);
  assert.equal(store.uploads.size, 0);
  assert.equal(store.objects.size, 0);
});

test('a failed complete aborts the upload', async () => {
  const store = new MemoryStore();
  store.fault = op => {
    if (op === 'complete') throw new Error('EntityTooSmall');
  };
  await assert.rejects(uploadStream(store, 'k', source(patternBytes(2 * P)), { partSize: P, concurrency: 2 }), /EntityTooSmall/);
  assert.equal(store.uploads.size, 0);
  assert.equal(store.count('abort'), 1);
});

test('download fetches in parallel, writes in order, and holds at most concurrency + 1 pieces', async () => {
  const store = new MemoryStore();
  const data = patternBytes(9 * P + 3);
  // One PUT, so its checksum comes with the first GET and no HEAD joins the GETs counted here.
  await uploadStream(store, 'k', source(data), { partSize: 10 * P, concurrency: 1 });
  store.latencyMs = 10;
  let held = 0;
  const sink = new MemorySink();
  const slow: Sink = {
    write: async buf => {
      await new Promise(r => setTimeout(r, 15));
      await sink.write(buf);
      held = Math.max(held, store.calls.filter(c => c.op === "get").length - sink.chunks.length);
    },
  };
  await downloadObject(store, 'k', slow, { partSize: P, concurrency: 3 });
  assert.ok(sink.data.equals(data));
  assert.ok(held <= 4, `fetched ahead of the writer by ${held}`);
  assert.equal(store.maxInFlight, 3);
});

test('a failed piece stops output at the last good piece', async () => {
  const store = new MemoryStore();
  store.objects.set('k', patternBytes(6 * P));
  store.fault = (op, _k, detail) => {
    if (op === 'get' && detail === `${2 * P}-${3 * P}`) throw new Error('SlowDown');
  };
  const sink = new MemorySink();
  await assert.rejects(downloadObject(store, 'k', sink, { partSize: P, concurrency: 2 }), /SlowDown/);
  assert.equal(sink.data.length, 2 * P);
});

test('a missing object fails before any output', async () => {
  const store = new MemoryStore();
  const sink = new MemorySink();
  await assert.rejects(downloadObject(store, 'nope', sink, { partSize: P, concurrency: 2 }), /no such object/);
  assert.equal(sink.chunks.length, 0);
});

test('ranges are split into part-sized pieces and concatenated in order', async () => {
  assert.deepEqual(splitRanges([{ start: 3, end: 10 }], 4), [
    { start: 3, end: 7 },
    { start: 7, end: 10 },
  ]);
  const store = new MemoryStore();
  const data = patternBytes(3 * P);
  store.objects.set('k', data);
  const ranges = [
    { start: 3, end: 10 },
    { start: 100, end: P + 200 },
    { start: 2 * P, end: 3 * P },
  ];
  const sink = new MemorySink();
  const n = await downloadRanges(store, 'k', ranges, sink, { partSize: P, concurrency: 3 });
  const expected = Buffer.concat(ranges.map(r => data.subarray(r.start, r.end)));
  assert.equal(n, expected.length);
  assert.ok(sink.data.equals(expected));
});

for (const size of [10, 3 * P + 1]) {
  test(`a corrupted object (${size} bytes) fails its restore with a checksum mismatch`, async () => {
    const store = new MemoryStore();
    const data = patternBytes(size, 3);
    await uploadStream(store, 'k', source(data), { partSize: P, concurrency: 2 });
    store.objects.get('k')![size - 1] ^= 0xff; // altered at rest, checksum kept
    await assert.rejects(
      downloadObject(store, 'k', new MemorySink(), { partSize: P, concurrency: 2 }),
      /checksum mismatch: the object's stored CRC-32 is [0-9a-f]{8} but its \d+ bytes give [0-9a-f]{8}/,
    );
  });
}

test('an object without a stored checksum (written by the Go plugin) restores unverified, and says so in the log', async () => {
  const store = new MemoryStore();
  for (const size of [2 * P + 9, 1000]) {
    const data = patternBytes(size);
    store.objects.set('k', data);
    const sink = new MemorySink();
    const lines = await logOf(async () => assert.equal((await downloadObject(store, 'k', sink, { partSize: P, concurrency: 2 })).bytes, data.length));
    assert.ok(sink.data.equals(data));
    assert.deepEqual(lines, [
      'INFO restored unverified: the object carries no checksum (written by the Go plugin or by a server that keeps none) (s3://test-bucket/k)',
    ]);
  }
});

test('a checksummed restore logs no "unverified" line; a subset says it cannot check ranges', async () => {
  const store = new MemoryStore();
  const data = patternBytes(3 * P + 1, 8);
  await uploadStream(store, 'k', source(data), { partSize: P, concurrency: 2 });
  const whole = await logOf(() => downloadObject(store, 'k', new MemorySink(), { partSize: P, concurrency: 2 }));
  assert.deepEqual(whole, ['VERBOSE s3://test-bucket/k: verified against its CRC-32']);
  const subset = await logOf(() => downloadRanges(store, 'k', [{ start: 3, end: 9 }], new MemorySink(), { partSize: P, concurrency: 2 }));
  assert.deepEqual(subset, ["INFO restored unverified: byte ranges cannot be checked against the whole object's checksum (s3://test-bucket/k)"]);
});

test('a server that keeps no full-object CRC-32: a multipart object is verified against its ETag, from the part layout recorded with it', async () => {
  const store = new MemoryStore();
  store.keepsChecksums = false;
  for (const size of [2 * P, 3 * P + 1]) {
    const data = patternBytes(size, size);
    await uploadStream(store, `k${size}`, source(data), { partSize: P, concurrency: 2 });
    // Restored in pieces of other sizes than the upload's parts.
    for (const partSize of [P, 2 * P + 3]) {
      const sink = new MemorySink();
      const lines = await logOf(() => downloadObject(store, `k${size}`, sink, { partSize, concurrency: 3 }));
      assert.ok(sink.data.equals(data));
      assert.deepEqual(lines, [`VERBOSE s3://test-bucket/k${size}: verified against its ETag (the MD5s of its parts)`]);
    }
    store.objects.get(`k${size}`)![size - 2] ^= 0x10; // altered at rest, ETag kept
    await assert.rejects(
      downloadObject(store, `k${size}`, new MemorySink(), { partSize: P, concurrency: 2 }),
      /checksum mismatch: the object's ETag is [0-9a-f]{32}-\d but its \d+ bytes, in the parts it was uploaded in, give [0-9a-f]{32}-\d: the object is corrupt or was altered/,
    );
  }
});

test('the ETag check follows parts that grow (a layout doubling every 2 parts)', async () => {
  const store = new MemoryStore();
  store.keepsChecksums = false;
  const sizes = [P, P, 2 * P, 2 * P, 4 * P, 7];
  const data = patternBytes(sizes.reduce((a, b) => a + b), 4);
  const id = await store.createMultipartUpload('grown', { partSize: P, partsPerDoubling: 2 });
  const parts = [];
  for (let n = 1, at = 0; n <= sizes.length; at += sizes[n - 1]!, n++) {
    const body = data.subarray(at, at + sizes[n - 1]!);
    parts.push({ partNumber: n, etag: await store.uploadPart('grown', id, n, body, crc32(body)), crc32: crc32(body) });
  }
  await store.completeMultipartUpload('grown', id, parts, crc32(data));
  const sink = new MemorySink();
  const lines = await logOf(() => downloadObject(store, 'grown', sink, { partSize: 3 * P, concurrency: 2 }));
  assert.ok(sink.data.equals(data));
  assert.match(lines.join('\n'), /verified against its ETag/);
  // The same bytes under a layout that is not theirs do not give the ETag.
  store.checksums.get('grown')!.layout = { partSize: P, partsPerDoubling: 3 };
  await assert.rejects(downloadObject(store, 'grown', new MemorySink(), { partSize: P, concurrency: 2 }), /checksum mismatch: the object's ETag/);
});

test('a multipart object with neither a CRC-32 nor a recorded layout restores unverified, saying why', async () => {
  const store = new MemoryStore();
  store.keepsChecksums = false;
  const data = patternBytes(2 * P + 5, 6);
  const id = await store.createMultipartUpload('nolayout');
  const halves = [data.subarray(0, P), data.subarray(P)];
  const parts = [];
  for (const [i, body] of halves.entries()) parts.push({ partNumber: i + 1, etag: await store.uploadPart('nolayout', id, i + 1, body, crc32(body)), crc32: crc32(body) });
  await store.completeMultipartUpload('nolayout', id, parts, crc32(data));
  const lines = await logOf(() => downloadObject(store, 'nolayout', new MemorySink(), { partSize: P, concurrency: 2 }));
  assert.deepEqual(lines, ['INFO restored unverified: the object carries no checksum (written by the Go plugin or by a server that keeps none) (s3://test-bucket/nolayout)']);
  // Encrypted by the server: its ETag is not taken for an MD5.
  class EncryptingStore extends MemoryStore {
    override async getRange(key: string, start: number, end: number, signal?: AbortSignal): Promise<RangeResponse> {
      return { ...(await super.getRange(key, start, end, signal)), encrypted: true };
    }
  }
  const encrypting = new EncryptingStore();
  encrypting.keepsChecksums = false;
  await uploadStream(encrypting, 'enc', source(data), { partSize: P, concurrency: 2 });
  const encLines = await logOf(() => downloadObject(encrypting, 'enc', new MemorySink(), { partSize: P, concurrency: 2 }));
  assert.match(encLines.join('\n'), /restored unverified: the object carries no CRC-32, and the server encrypts it/);
});

/** A store whose GET bodies are cut after `cutAfter` bytes, `cuts` times in all. */
class CuttingStore extends MemoryStore {
  constructor(
    private cuts: number,
    private readonly cutAfter: number,
  ) {
    super();
  }

  override async getRange(key: string, start: number, end: number, signal?: AbortSignal): Promise<RangeResponse> {
    const res = await super.getRange(key, start, end, signal);
    if (this.cuts <= 0 || res.length <= this.cutAfter) return res;
    this.cuts--;
    const body = res.body;
    const limit = this.cutAfter;
    async function* cut() {
      let sent = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const take = chunk.subarray(0, Math.max(0, limit - sent));
        if (take.length) yield take;
        sent += take.length;
        if (sent >= limit) throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
      }
    }
    return { ...res, body: Readable.from(cut()) };
  }
}

test('a body cut mid-way resumes from the byte it reached: no byte twice, none skipped', async () => {
  const store = new CuttingStore(4, 100_000);
  const data = patternBytes(3 * P + 7, 11);
  await uploadStream(store, 'k', source(data), { partSize: P, concurrency: 2 });
  const sink = new MemorySink();
  assert.equal((await downloadObject(store, 'k', sink, { partSize: P, concurrency: 2, retries: 5 })).bytes, data.length);
  assert.ok(sink.data.equals(data));
  const gets = store.calls.filter(c => c.op === 'get').map(c => c.detail);
  assert.ok(gets.includes(`${100_000}-${P}`), `resumed at byte 100000: ${gets.join(' ')}`);
});

test('a body cut more often than the retries allow fails, naming how far it got', async () => {
  const store = new CuttingStore(10, 1000);
  store.objects.set('k', patternBytes(2 * P));
  const sink = new MemorySink();
  await assert.rejects(
    downloadObject(store, 'k', sink, { partSize: P, concurrency: 1, retries: 2 }),
    /the connection ended after \d+ of bytes 0-5242879 \(aborted\)/,
  );
  assert.equal(sink.data.length, 0);
});

test('a file descriptor is read straight into the part buffers, with each part\'s CRC-32', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fdsource-'));
  try {
    for (const size of [0, 1, P - 1, P, P + 1, 2 * P + 70_000]) {
      const data = patternBytes(size, size + 1);
      writeFileSync(join(dir, 'f'), data);
      const fd = openSync(join(dir, 'f'), 'r');
      let ended = 0;
      const src = new FdSource(fd, undefined, () => ended++);
      const parts: Buffer[] = [];
      while (!(await src.atEnd())) {
        const { data: part, crc } = await src.read(Buffer.alloc(P));
        assert.equal(crc, crc32(part));
        parts.push(Buffer.from(part));
      }
      closeSync(fd);
      assert.ok(Buffer.concat(parts).equals(data), `${size} bytes`);
      assert.deepEqual(parts.map(p => p.length).slice(0, -1), parts.slice(0, -1).map(() => P));
      assert.equal(ended, 1);
      const store = new MemoryStore();
      const fd2 = openSync(join(dir, 'f'), 'r');
      await uploadStream(store, 'k', new FdSource(fd2), { partSize: P, concurrency: 2 });
      closeSync(fd2);
      assert.ok(store.objects.get('k')!.equals(data));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('FdSource: onEnd may refuse the end (an orphaned stdin)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fdsource-'));
  try {
    writeFileSync(join(dir, 'f'), patternBytes(P + 5));
    const fd = openSync(join(dir, 'f'), 'r');
    const refusing = new FdSource(fd, undefined, () => {
      throw new Error('writer died');
    });
    await assert.rejects(uploadStream(new MemoryStore(), 'k', refusing, { partSize: P, concurrency: 2 }), /writer died/);
    closeSync(fd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A FIFO fed by a child writing `size` pattern bytes in writes of `chunk` bytes, `pauseMs` apart;
 * returns the read end's descriptor, as stdin would be.
 */
function pipeFrom(size: number, chunk: number, pauseMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'pipesource-'));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const script =
    `const b=Buffer.alloc(${size});for(let i=0;i<b.length;i++)b[i]=(i*7+3)&255;let o=0;` +
    `const out=require('fs').createWriteStream(process.argv[1]);` +
    `const w=()=>{if(o>=b.length)return out.end();const n=Math.min(${chunk},b.length-o);out.write(b.subarray(o,o+n),()=>{o+=n;setTimeout(w,${pauseMs})})};w();`;
  const child = spawn(process.execPath, ['-e', script, fifo], { stdio: 'inherit' });
  const fd = openSync(fifo, 'r'); // returns once the child opens its end
  rmSync(dir, { recursive: true, force: true });
  const expected = Buffer.alloc(size);
  for (let i = 0; i < size; i++) expected[i] = (i * 7 + 3) & 255;
  return { fd, expected, child };
}

for (const [size, chunk, pause] of [
  [0, 1, 0],
  [1, 1, 0],
  [P, 65536, 0],
  [2 * P + 3, 1_000_000, 0],
  [P + 100_000, 7_777, 1],
] as const) {
  test(`PipeSource reads a pipe (${size} bytes in writes of ${chunk}) straight into the parts, CRC-32 per part`, async () => {
    const { fd, expected, child } = pipeFrom(size, chunk, pause);
    let ended = 0;
    const src = new PipeSource(fd, undefined, () => ended++);
    const store = new MemoryStore();
    const r = await uploadStream(store, 'k', src, { partSize: P, concurrency: 2 });
    assert.equal(r.bytes, size);
    assert.ok(store.objects.get('k')!.equals(expected));
    assert.equal(ended, 1);
    child.kill();
  });
}

test('PipeSource: a refused end and an abort both fail the upload, leaving nothing', async () => {
  const { fd, child } = pipeFrom(P + 10, 65536, 0);
  const store = new MemoryStore();
  const refusing = new PipeSource(fd, undefined, () => {
    throw new Error('writer died');
  });
  await assert.rejects(uploadStream(store, 'k', refusing, { partSize: P, concurrency: 2 }), /writer died/);
  assert.equal(store.objects.size + store.uploads.size, 0);
  child.kill();

  const stalled = pipeFrom(P + 10, 1000, 60_000); // one write, then a minute of silence
  const ac = new AbortController();
  const src = new PipeSource(stalled.fd, ac.signal);
  setTimeout(() => ac.abort(new Error('interrupted by SIGTERM')), 50);
  await assert.rejects(uploadStream(store, 'k2', src, { partSize: P, concurrency: 2, signal: ac.signal }), /SIGTERM/);
  assert.equal(store.objects.size + store.uploads.size, 0);
  stalled.child.kill();
});

test('a large object whose answer does not mark it multipart still has its checksum asked for', async () => {
  /** A server whose multipart ETags look like single-PUT ones. */
  class PlainEtagStore extends MemoryStore {
    override async getRange(key: string, start: number, end: number, signal?: AbortSignal): Promise<RangeResponse> {
      return { ...(await super.getRange(key, start, end, signal)), multipart: false };
    }
  }
  const store = new PlainEtagStore();
  const data = patternBytes(2 * P + 1, 5);
  await uploadStream(store, 'k', source(data), { partSize: P, concurrency: 2 });
  store.objects.get('k')![7] ^= 1;
  await assert.rejects(downloadObject(store, 'k', new MemorySink(), { partSize: 4 * P, concurrency: 2 }), /checksum mismatch/);
  assert.equal(store.count('head'), 1);
  // A small object without a checksum (the Go plugin's single PUT) is still one GET.
  store.objects.set('small', patternBytes(1000));
  const before = store.count('head');
  await downloadObject(store, 'small', new MemorySink(), { partSize: P, concurrency: 2 });
  assert.equal(store.count('head'), before);
});

test('PrefixedSource: the bytes read ahead, then the rest, across part boundaries, with the CRC of each part', async () => {
  const data = patternBytes(100_000, 7);
  for (const headLength of [0, 1, 4096, 40_000, 100_000]) {
    const pieces = (async function* () {
      for (let at = headLength; at < data.length; at += 7000) yield data.subarray(at, Math.min(at + 7000, data.length));
    })();
    const source = new PrefixedSource(Buffer.from(data.subarray(0, headLength)), new StreamSource(pieces));
    const got: Buffer[] = [];
    while (!(await source.atEnd())) {
      const part = await source.read(Buffer.alloc(30_000));
      assert.equal(part.crc, crc32(part.data));
      got.push(Buffer.from(part.data));
    }
    assert.ok(Buffer.concat(got).equals(data), `head of ${headLength} bytes`);
  }
});
