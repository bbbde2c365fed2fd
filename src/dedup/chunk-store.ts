/**
 * Chunks as objects: `<folder>/chunks/<first 2 hex digits>/<64 hex digits>`, named by the SHA-256
 * of their bytes, or with client-side encryption by an HMAC-SHA-256 under a key derived from the
 * encryption key (a name then says nothing about the content). A chunk object is one codec byte
 * (0 stored, 1 zstd) and the payload, sealed whole in the encryption format when a key is given.
 * Reading one checks its name against its bytes: a chunk that is damaged, or another's, fails.
 */
import { createHmac, webcrypto } from 'node:crypto';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { PluginError } from '../errors.js';
import { crc32 } from '../storage/crc32.js';
import { cleanFolder, s3Url } from '../storage/keys.js';
import type { ObjectStore } from '../storage/store.js';
import type { BufferPool } from '../storage/pool.js';
import { CHUNKS_FOLDER } from '../storage/object-lock.js';
import { encryptBuffer, rawKeyId, type UserKey } from '../storage/encryption/format.js';
import { decryptWhole } from '../storage/encryption/sink.js';

const CODEC_STORED = 0;
const CODEC_ZSTD = 1;
/** zstd level 1: level 3 saved 2% more of text-like data for a third more CPU (docs/deduplication.md). */
const ZSTD_LEVEL = 1;
const NAME_KEY_LABEL = 'gpbackup_s3_plugin dedup chunk names v1';

type Zstd = (buf: Buffer) => Promise<Buffer>;
type BunZstd = { zstdCompress(buf: Uint8Array, opts: { level: number }): Promise<Uint8Array>; zstdDecompress(buf: Uint8Array): Promise<Uint8Array> };
type ZlibWithZstd = typeof zlib & { zstdCompress?: Function; zstdDecompress?: Function; constants: { ZSTD_c_compressionLevel?: number } };

/**
 * zstd: Bun's own calls where the runtime is Bun. They run on its thread pool, several at once, and
 * cost 2.0 CPU-s/GiB to compress and 1.2 to decompress where node:zlib's (a stream per call) costs
 * 3.4 and 5.1 (docs/deduplication.md). Elsewhere node:zlib's (Node 22.15 and later); without either,
 * chunks are stored uncompressed.
 */
const bun = (globalThis as { Bun?: BunZstd }).Bun;
const z = zlib as ZlibWithZstd;
const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const zstdCompress: Zstd | undefined = bun
  ? async b => asBuffer(await bun.zstdCompress(b, { level: ZSTD_LEVEL }))
  : z.zstdCompress && (b => (promisify(z.zstdCompress!) as (b: Buffer, o: object) => Promise<Buffer>)(b, { params: { [z.constants.ZSTD_c_compressionLevel!]: ZSTD_LEVEL } }));
const zstdDecompress: Zstd | undefined = bun ? async b => asBuffer(await bun.zstdDecompress(b)) : z.zstdDecompress && (promisify(z.zstdDecompress) as Zstd);
export const zstdAvailable = zstdCompress !== undefined;

export function chunkPrefix(folder: string): string {
  return `${cleanFolder(folder)}/${CHUNKS_FOLDER}/`;
}

export function chunkKey(folder: string, name: Buffer): string {
  const hex = name.toString('hex');
  return `${chunkPrefix(folder)}${hex.slice(0, 2)}/${hex}`;
}

/** The chunk name in a chunk key, or undefined for a key that is not one. */
export function nameOfChunkKey(key: string): string | undefined {
  const m = /\/chunks\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(key);
  return m && m[2]!.startsWith(m[1]!) ? m[2] : undefined;
}

/** Refuses a key that cannot name chunks: a passphrase would cost an scrypt per chunk. */
export function checkChunkKey(key: UserKey | undefined): asserts key is Extract<UserKey, { kind: 'raw' }> | undefined {
  if (key && key.kind !== 'raw') {
    throw new PluginError(
      `deduplication with client_side_encryption needs a 256-bit key in ${key.source}, not a passphrase (a passphrase costs an scrypt per chunk): make one with \`openssl rand -hex 32\``,
    );
  }
}

/**
 * How chunks are named: SHA-256, or HMAC-SHA-256 under a key derived from a raw encryption key.
 * Through Web Crypto: the runtime hashes on its thread pool, so chunks are named, compressed and
 * checked on other cores while the stream is read and cut on this one.
 */
export class ChunkNamer {
  private readonly hmacKey: Promise<webcrypto.CryptoKey> | undefined;

  constructor(key?: UserKey) {
    checkChunkKey(key);
    if (key) {
      const nameKey = createHmac('sha256', key.key).update(NAME_KEY_LABEL).digest();
      this.hmacKey = webcrypto.subtle.importKey('raw', nameKey, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    }
  }

  get keyed(): boolean {
    return this.hmacKey !== undefined;
  }

  async name(chunk: Uint8Array): Promise<Buffer> {
    const digest = this.hmacKey ? await webcrypto.subtle.sign('HMAC', await this.hmacKey, chunk) : await webcrypto.subtle.digest('SHA-256', chunk);
    return Buffer.from(digest);
  }
}

/** The namer of a manifest written with the key whose key ID is `keyId`. */
export function namerForKeyId(keys: UserKey[], keyId: string | undefined, what: string): ChunkNamer {
  const key = keys.find(k => k.kind === 'raw' && rawKeyId(k.key) === keyId);
  if (!key) throw new PluginError(`${what}: no configured key names its chunks (key ID ${keyId ?? 'unknown'}): set encryption_key_file or encryption_old_key_files to the key that wrote it`);
  return new ChunkNamer(key);
}

/** True when the stream's first bytes are gzip's or zstd's: its chunks would not compress. */
export function looksCompressed(head: Uint8Array): boolean {
  return (head[0] === 0x1f && head[1] === 0x8b) || (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd);
}

/**
 * The object a chunk is stored as: compressed when asked and smaller, then sealed when a key is
 * given. `framed` is the chunk after one byte of room for the codec: a chunk stored as it is (a
 * gzip stream's) is then sent from that buffer, not copied into a new one.
 */
export async function encodeChunk(framed: Buffer, compress: boolean, key?: UserKey): Promise<Buffer> {
  let object = framed;
  object[0] = CODEC_STORED;
  if (compress && zstdCompress) {
    const packed = await zstdCompress(framed.subarray(1));
    if (packed.length < framed.length - 1) object = Buffer.concat([Buffer.of(CODEC_ZSTD), packed]);
  }
  return key ? encryptBuffer(object, key) : object;
}

/** A chunk object's plaintext bytes, checked against `name`. */
export async function decodeChunk(stored: Buffer, name: Buffer, namer: ChunkNamer, keys: UserKey[], what: string): Promise<Buffer> {
  let object = stored;
  if (namer.keyed) {
    const opened = await decryptWhole(stored, keys, what);
    if (!opened) throw new PluginError(`${what}: the chunk is not encrypted, but its manifest names it by a keyed hash`);
    object = opened.plain;
  }
  if (object.length < 1) throw new PluginError(`${what}: the chunk object is empty`);
  let plain: Buffer;
  if (object[0] === CODEC_STORED) plain = object.subarray(1);
  else if (object[0] === CODEC_ZSTD) {
    if (!zstdDecompress) throw new PluginError(`${what}: the chunk is zstd-compressed and this runtime has no zstd: restore with the plugin's executable`);
    plain = await zstdDecompress(object.subarray(1));
  } else throw new PluginError(`${what}: the chunk has an unknown codec (${object[0]})`);
  if (!(await namer.name(plain)).equals(name)) throw new PluginError(`${what}: the chunk's content does not match its name (damaged or replaced): the restore is abandoned`);
  return plain;
}

/** Largest stored chunk object asked for in one GET: the chunk, its codec byte and encryption's overhead, with room to spare. */
const MAX_STORED_CHUNK = 16 * 1024 * 1024;

/**
 * A small object's bytes (a chunk, a manifest), by one GET; a body cut off is read again up to
 * `retries` times. Into a buffer of `buffers` when given and large enough (the caller gives it back).
 */
export async function fetchObjectBytes(
  store: ObjectStore,
  key: string,
  retries: number,
  signal?: AbortSignal,
  atMost = MAX_STORED_CHUNK,
  buffers?: BufferPool,
): Promise<Buffer> {
  for (let attempt = 0; ; attempt++) {
    const res = await store.getRange(key, 0, atMost, signal);
    const pooled = buffers !== undefined && res.length <= buffers.bufferSize;
    const body = pooled ? buffers.take(buffers.bufferSize).subarray(0, res.length) : Buffer.allocUnsafe(res.length);
    try {
      // Straight into the buffer where the store can (no chunk per socket read), else from the stream.
      let got = 0;
      let crc = 0;
      if (res.fill) {
        const r = await res.fill(body, 0, 0);
        if (r.error) throw r.error;
        ({ filled: got, crc } = r);
      } else {
        for await (const b of res.body as AsyncIterable<Buffer>) {
          if (got + b.length > body.length) throw new Error('more bytes than the server announced');
          body.set(b, got);
          got += b.length;
          crc = crc32(b, crc);
        }
      }
      if (got !== res.length) throw new Error(`${got} of ${res.length} bytes`);
      if (res.crc32 !== undefined && !res.multipart && crc !== res.crc32) throw new Error('its CRC-32 does not match');
      return body;
    } catch (err) {
      if (pooled) buffers.give(body);
      signal?.throwIfAborted();
      if (attempt >= retries) throw new PluginError(`downloading ${s3Url(store.bucket, key)}: ${(err as Error).message}`);
    }
  }
}

/** Stores a chunk object (one PUT: chunks are smaller than a part). */
export async function putChunkObject(store: ObjectStore, key: string, body: Buffer, signal?: AbortSignal): Promise<void> {
  await store.putObject(key, body, crc32(body), signal);
}
