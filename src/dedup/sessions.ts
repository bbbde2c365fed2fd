/**
 * Backups and prunes of one folder keep out of each other's way through marker objects under
 * `<folder>/chunks-sessions/`: `backup-*` while a backup writes chunks and its manifest,
 * `prune-*` while a prune deletes. Each side writes its own marker first and then looks for the
 * other's (S3 lists what was written before the listing began), so of a backup and a prune that
 * overlap, at least one sees the other:
 *  - a prune that sees a live backup deletes nothing (a chunk the backup found present may not
 *    yet be named by any manifest);
 *  - a backup that sees a live prune waits for it to end before it checks for any chunk.
 * A marker is live while younger than MARKER_LIVE_MS and is written again every REFRESH_MS by a
 * long run; a killed run's marker stops counting an hour later. Markers never carry object lock
 * retention (src/storage/object-lock.ts): each is deleted at the end of its run.
 */
import { randomBytes } from 'node:crypto';
import { log } from '../log/gplog.js';
import { cleanFolder } from '../storage/keys.js';
import { SESSION_MARKERS_FOLDER } from '../storage/object-lock.js';
import type { ObjectStore } from '../storage/store.js';
import { crc32 } from '../storage/crc32.js';

export const MARKER_LIVE_MS = 60 * 60 * 1000;
const REFRESH_MS = 10 * 60 * 1000;
const WAIT_POLL_MS = 5_000;

export type SessionKind = 'backup' | 'prune';

export function sessionsPrefix(folder: string): string {
  return `${cleanFolder(folder)}/${SESSION_MARKERS_FOLDER}/`;
}

export interface LiveMarker {
  key: string;
  lastModified: Date;
}

/** Markers of `kind` younger than MARKER_LIVE_MS by the server's clock (objects without a date count as live). */
export async function liveMarkers(store: ObjectStore, folder: string, kind: SessionKind, now = Date.now()): Promise<LiveMarker[]> {
  const live: LiveMarker[] = [];
  for await (const o of store.listObjects(`${sessionsPrefix(folder)}${kind}-`)) {
    const at = o.lastModified ?? new Date(now);
    if (now - at.getTime() < MARKER_LIVE_MS) live.push({ key: o.key, lastModified: at });
  }
  return live;
}

export class Session {
  readonly key: string;
  private timer: ReturnType<typeof setInterval> | undefined;

  private constructor(private readonly store: ObjectStore, folder: string, kind: SessionKind) {
    this.key = `${sessionsPrefix(folder)}${kind}-${new Date().toISOString().replace(/[:.]/g, '')}-${process.pid}-${randomBytes(4).toString('hex')}`;
  }

  /** Writes the marker and keeps it fresh until end(). */
  static async begin(store: ObjectStore, folder: string, kind: SessionKind): Promise<Session> {
    const s = new Session(store, folder, kind);
    await s.touch();
    s.timer = setInterval(() => s.touch().catch(err => log.warn(`could not refresh ${s.key}: ${(err as Error).message}`)), REFRESH_MS);
    s.timer.unref();
    return s;
  }

  private async touch(): Promise<void> {
    const body = Buffer.from(`pid ${process.pid}\n`);
    await this.store.putObject(this.key, body, crc32(body));
  }

  /** Removes the marker; a failure only delays the other side by MARKER_LIVE_MS, so it is logged. */
  async end(): Promise<void> {
    clearInterval(this.timer);
    try {
      const failed = await this.store.deleteObjects([this.key]);
      if (failed.length) log.warn(`could not delete ${this.key}: ${failed[0]!.message} (it stops counting within an hour)`);
    } catch (err) {
      log.warn(`could not delete ${this.key}: ${(err as Error).message} (it stops counting within an hour)`);
    }
  }
}

/** Waits while a prune of the folder is live; returns how long it waited. */
export async function waitForPrunes(store: ObjectStore, folder: string, signal?: AbortSignal, pollMs = WAIT_POLL_MS): Promise<number> {
  const started = Date.now();
  for (let said = false; ; said = true) {
    const prunes = await liveMarkers(store, folder, 'prune');
    if (prunes.length === 0) return Date.now() - started;
    if (!said) log.info(`a prune of this folder is running (${prunes[0]!.key}): waiting for it to end before checking for chunks`);
    signal?.throwIfAborted();
    await new Promise(r => setTimeout(r, pollMs));
  }
}
