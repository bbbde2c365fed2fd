/**
 * The manifest a deduplicated object is stored as, at the object's usual key:
 *
 *   magic "\0GPBKDUP" (8) | version 1 (1) | flags (1) | zero (6) | body
 *
 * The body is the chunk list; with flag ENCRYPTED it is sealed in the client-side encryption
 * format (src/storage/encryption), so only the magic and flags are readable without the key.
 * The chunk list:
 *
 *   stream size (u64 BE) | chunk count (u64 BE) | count x (name (32) | length (u32 BE)) | SHA-256 of all before (32)
 *
 * A chunk's name is the SHA-256 of its bytes, or with flag KEYED_NAMES an HMAC-SHA-256 of them
 * under a key derived from the encryption key. 36 bytes a chunk: a 1 TiB stream of 1 MiB chunks
 * has a manifest of 36 MiB.
 *
 * The magic begins with NUL, as the encryption format's does: gzip and zstd reject it as a
 * header, and COPY rejects a NUL byte, so a manifest handed to gprestore as data by a plugin that
 * does not know it (the Go plugin streams objects as they are) fails the restore loudly.
 */
import { createHash } from 'node:crypto';
import { PluginError } from '../errors.js';

export const MANIFEST_MAGIC = Buffer.from('\0GPBKDUP', 'latin1');
export const MANIFEST_VERSION = 1;
export const MANIFEST_HEADER_SIZE = 16;
export const FLAG_KEYED_NAMES = 1;
export const FLAG_ENCRYPTED = 2;
export const NAME_SIZE = 32;
const ENTRY_SIZE = NAME_SIZE + 4;
const DIGEST_SIZE = 32;

export interface ChunkRef {
  /** 32 bytes: SHA-256 or keyed hash of the chunk's bytes. */
  name: Buffer;
  length: number;
}

export interface ChunkList {
  size: number;
  chunks: ChunkRef[];
}

export function isManifest(prefix: Buffer): boolean {
  return prefix.length >= MANIFEST_MAGIC.length && prefix.subarray(0, MANIFEST_MAGIC.length).equals(MANIFEST_MAGIC);
}

export function manifestHeader(flags: number): Buffer {
  const h = Buffer.alloc(MANIFEST_HEADER_SIZE);
  MANIFEST_MAGIC.copy(h);
  h[8] = MANIFEST_VERSION;
  h[9] = flags;
  return h;
}

/** The header's flags; throws for a version or flags this build does not know. */
export function manifestFlags(object: Buffer, what: string): number {
  if (object.length < MANIFEST_HEADER_SIZE || !isManifest(object)) throw new PluginError(`${what}: not a deduplication manifest`);
  if (object[8] !== MANIFEST_VERSION) throw new PluginError(`${what}: deduplication manifest version ${object[8]} is not known to this plugin: use a newer one`);
  const flags = object[9]!;
  if ((flags & ~(FLAG_KEYED_NAMES | FLAG_ENCRYPTED)) !== 0) throw new PluginError(`${what}: deduplication manifest has unknown flags ${flags}: use a newer plugin`);
  return flags;
}

/**
 * The chunk list, appended to as chunks are cut: 36 bytes a chunk in one growing buffer. A chunk's
 * place is taken when it is cut and its name filled in when hashed (hashes finish out of order).
 */
export class ChunkListWriter {
  private buf = Buffer.allocUnsafe(16 + 1024 * ENTRY_SIZE);
  private used = 16;
  private count = 0;
  private size = 0;

  /** The next chunk's place in the list; its name is given to setName. */
  reserve(length: number): number {
    if (this.used + ENTRY_SIZE + DIGEST_SIZE > this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.used);
      this.buf = bigger;
    }
    const slot = this.count;
    this.buf.writeUInt32BE(length, this.used + NAME_SIZE);
    this.used += ENTRY_SIZE;
    this.count++;
    this.size += length;
    return slot;
  }

  setName(slot: number, name: Buffer): void {
    name.copy(this.buf, 16 + slot * ENTRY_SIZE);
  }

  add(name: Buffer, length: number): void {
    this.setName(this.reserve(length), name);
  }

  get chunkCount(): number {
    return this.count;
  }

  /** The encoded list, its digest appended. */
  finish(): Buffer {
    this.buf.writeBigUInt64BE(BigInt(this.size), 0);
    this.buf.writeBigUInt64BE(BigInt(this.count), 8);
    createHash('sha256').update(this.buf.subarray(0, this.used)).digest().copy(this.buf, this.used);
    return this.buf.subarray(0, this.used + DIGEST_SIZE);
  }
}

export function encodeChunkList(chunks: ChunkRef[]): Buffer {
  const w = new ChunkListWriter();
  for (const c of chunks) w.add(c.name, c.length);
  return w.finish();
}

/** Parses and checks a chunk list (its digest, its count, its lengths adding up to its size). */
export function decodeChunkList(body: Buffer, what: string): ChunkList {
  const bad = (why: string) => new PluginError(`${what}: deduplication manifest is damaged (${why})`);
  if (body.length < 16 + DIGEST_SIZE) throw bad('too short');
  const digest = createHash('sha256').update(body.subarray(0, body.length - DIGEST_SIZE)).digest();
  if (!digest.equals(body.subarray(body.length - DIGEST_SIZE))) throw bad('its digest does not match');
  const size = Number(body.readBigUInt64BE(0));
  const count = Number(body.readBigUInt64BE(8));
  if (16 + count * ENTRY_SIZE + DIGEST_SIZE !== body.length) throw bad('its chunk count does not match its length');
  const chunks: ChunkRef[] = new Array(count);
  let total = 0;
  for (let i = 0, off = 16; i < count; i++, off += ENTRY_SIZE) {
    const length = body.readUInt32BE(off + NAME_SIZE);
    chunks[i] = { name: body.subarray(off, off + NAME_SIZE), length };
    total += length;
  }
  if (total !== size) throw bad('its chunk lengths do not add up to its size');
  return { size, chunks };
}
