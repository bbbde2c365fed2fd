/**
 * S3 Object Lock on upload: the retention headers of PutObject and CreateMultipartUpload, and
 * the Content-MD5 that S3 requires of every request writing a locked object's bytes; and which
 * objects are under retention (for delete_backup and prune).
 */
import { createHash } from 'node:crypto';
import { mapBounded } from './bounded.js';
import type { ObjectStore } from './store.js';

export type ObjectLockMode = 'GOVERNANCE' | 'COMPLIANCE';

/** Setup's probe objects (src/protocol/hooks.ts) start so. */
export const PROBE_NAME_PREFIX = '.gpbackup_s3_plugin_probe_';

/** Deduplication's session markers (src/dedup/sessions.ts) are kept in `<folder>/chunks-sessions/`. */
export const SESSION_MARKERS_FOLDER = 'chunks-sessions';

/** Deduplication's chunks (src/dedup/chunk-store.ts) are kept in `<folder>/chunks/<2 hex digits>/`. */
export const CHUNKS_FOLDER = 'chunks';

/** How much longer than a backup's own a chunk's retention is set: a quarter of object_lock_days, at least a day. */
export function chunkRetentionMargin(days: number): number {
  return Math.max(1, days / 4);
}

/**
 * How long an object written now is locked, in days; undefined for none. Setup's probes and
 * deduplication's session markers get no retention: the run that writes one deletes it, and in the
 * (versioned) bucket a locked version of each would pile up. A chunk gets chunkRetentionMargin
 * more than the backup: its manifest, written when the stream ends, is locked from later, and a
 * chunk must not be deletable before a backup naming it.
 */
function lockDays(key: string, days: number): number | undefined {
  const parts = key.split('/');
  if (parts.at(-1)!.startsWith(PROBE_NAME_PREFIX) || parts.at(-2) === SESSION_MARKERS_FOLDER) return undefined;
  return parts.at(-3) === CHUNKS_FOLDER ? days + chunkRetentionMargin(days) : days;
}

/** x-amz-object-lock-retain-until-date: `days` from now, in ISO 8601 to the second (UTC). */
export function retainUntil(days: number, now = Date.now()): string {
  return new Date(now + days * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function objectLockHeaders(key: string, mode: ObjectLockMode | undefined, days: number | undefined): Record<string, string> {
  const lock = mode && days ? lockDays(key, days) : undefined;
  if (!lock) return {};
  return { 'x-amz-object-lock-mode': mode!, 'x-amz-object-lock-retain-until-date': retainUntil(lock) };
}

export function contentMd5(body: Buffer): string {
  return createHash('md5').update(body).digest('base64');
}

export interface LockedObjects {
  /** Per key, in order: whether it is under retention. */
  locked: boolean[];
  count: number;
  /** The locked object whose retention ends last. */
  latest?: { key: string; until: Date; mode?: string };
}

/** Which of `keys` are under S3 Object Lock retention at `now`: a HEAD each, `concurrency` at once. */
export async function findLocked(store: ObjectStore, keys: readonly string[], concurrency: number, now = Date.now()): Promise<LockedObjects> {
  const heads = await mapBounded(keys, concurrency, key => store.headObject(key));
  const found: LockedObjects = { locked: [], count: 0 };
  heads.forEach((head, i) => {
    const until = head?.lockedUntil === undefined ? NaN : Date.parse(head.lockedUntil);
    const locked = until > now;
    found.locked.push(locked);
    if (!locked) return;
    found.count++;
    if (!found.latest || until > found.latest.until.getTime()) found.latest = { key: keys[i]!, until: new Date(until), mode: head!.lockMode };
  });
  return found;
}
