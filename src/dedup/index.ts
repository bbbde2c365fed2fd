/**
 * What other commands (verify_backup, list_backups in src/inventory) need of deduplicated objects:
 * tell a manifest, read its chunk list, and check a chunk's presence (one HEAD) or its content.
 */
import type { ObjectStore } from '../storage/store.js';
import { chunkKey } from './chunk-store.js';
import type { ChunkRef } from './manifest.js';

export { isManifest, MANIFEST_MAGIC, type ChunkRef } from './manifest.js';
export { chunkKey, chunkPrefix } from './chunk-store.js';
export { fetchChunk as verifyChunk, readManifest, type ChunkReadOptions, type Manifest } from './restore.js';

/** Whether the chunk's object exists (its size if so), by one HEAD. */
export async function chunkPresent(store: ObjectStore, folder: string, ref: ChunkRef): Promise<number | undefined> {
  return (await store.headObject(chunkKey(folder, ref.name)))?.size;
}
