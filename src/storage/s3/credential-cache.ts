/**
 * Temporary credentials shared by every plugin process of one user on a host.
 *
 * gpbackup starts the plugin once per table per segment: without this, each
 * process would ask the instance metadata service, the container endpoint or
 * STS itself, and AWS throttles them. Credentials that expire (the only kind
 * those sources return) are kept in a file until shortly before they expire;
 * static keys are never written anywhere.
 *
 * - Directory: $XDG_RUNTIME_DIR/gpbackup_s3_plugin, else ~/.cache/gpbackup_s3_plugin,
 *   created with mode 0700; used only when it is a real directory (no symlink)
 *   owned by this user that nobody else can write or read.
 * - One file per source, named by a SHA-256 of what determines the credentials
 *   (role_arn, region, base key ID, profile, the provider's endpoints and files).
 * - A file is read only if it is a regular file (opened with O_NOFOLLOW) owned by
 *   this user with mode 0600 or stricter; anything else is ignored and replaced.
 * - Written atomically: a temporary file of mode 0600, then rename.
 * - The first processes of a burst take a lock file (O_EXCL): one fetches, the
 *   others wait for its answer (a lock whose holder died or that is older than
 *   STALE_LOCK_MS is removed, and the next one takes over), so a burst costs one
 *   request; a failed fetch is not cached, and the next waiter tries its own.
 * Any problem with the cache (unwritable HOME, a tampered file) falls back to
 * fetching: the cache can save requests, never fail a command.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Credentials } from './sigv4.js';

export interface ExpiringCredentials extends Credentials {
  expiration?: Date;
}

/** A cached answer is used only while it has at least this long to live (credentials.ts renews at the same margin). */
export const CACHE_MARGIN_MS = 5 * 60_000;
/** A lock this old is abandoned, whoever holds it (the holder's fetch has its own, shorter, time limits). */
const STALE_LOCK_MS = 30_000;
const POLL_MS = 50;

/** Environment variables that decide what the AWS SDK's providers return (besides the explicit parts of a key). */
const PROVIDER_ENV = [
  'HOME',
  'AWS_PROFILE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_EC2_METADATA_SERVICE_ENDPOINT',
  'AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_STS',
  'AWS_STS_REGIONAL_ENDPOINTS',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
];

const uid = process.getuid?.() ?? -1;

function sleep(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms));
}

/** The cache directory, created if need be, or undefined when there is none this user alone controls. */
function cacheDir(): string | undefined {
  const runtime = process.env.XDG_RUNTIME_DIR;
  const candidates = [runtime && join(runtime, 'gpbackup_s3_plugin'), join(process.env.HOME || homedir(), '.cache', 'gpbackup_s3_plugin')];
  for (const dir of candidates) {
    if (!dir) continue;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const st = lstatSync(dir);
      if (st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) return dir;
    } catch {
      // not creatable here: try the next place
    }
  }
  return undefined;
}

function cacheFile(dir: string, parts: Record<string, string | undefined>): { file: string; id: string } {
  const env = Object.fromEntries(PROVIDER_ENV.map(k => [k, process.env[k]]));
  const id = createHash('sha256').update(JSON.stringify({ v: 1, parts, env })).digest('hex');
  return { file: join(dir, `${id}.json`), id };
}

/** How long a note that a source returns keys without expiration (a profile's static keys) is believed. */
const STATIC_NOTE_MS = 10 * 60_000;

type Entry = { creds: ExpiringCredentials } | { static: true };

/**
 * The entry in `file` if it is trustworthy and still good: credentials that live past the
 * margin, or a note that this source gives static keys (which are fetched, never cached).
 */
function read(file: string, id: string): Entry | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== uid || (st.mode & 0o077) !== 0) return undefined;
    const j = JSON.parse(readFileSync(fd, 'utf8'));
    if (j.id !== id) return undefined;
    if (j.static === true) return Date.now() < Date.parse(j.until) ? { static: true } : undefined;
    if (typeof j.accessKeyId !== 'string' || typeof j.secretAccessKey !== 'string') return undefined;
    const expiration = new Date(j.expiration);
    if (!(expiration.getTime() - Date.now() > CACHE_MARGIN_MS)) return undefined;
    return { creds: { accessKeyId: j.accessKeyId, secretAccessKey: j.secretAccessKey, sessionToken: j.sessionToken || undefined, expiration } };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function write(file: string, id: string, creds: ExpiringCredentials): void {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const body = JSON.stringify(
      creds.expiration
        ? {
            id,
            accessKeyId: creds.accessKeyId,
            secretAccessKey: creds.secretAccessKey,
            sessionToken: creds.sessionToken,
            expiration: creds.expiration.toISOString(),
          }
        : { id, static: true, until: new Date(Date.now() + STATIC_NOTE_MS).toISOString() }, // no secret
    );
    writeFileSync(tmp, body, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
  }
}

function tryLock(lock: string): boolean {
  try {
    writeFileSync(lock, String(process.pid), { mode: 0o600, flag: 'wx' });
    return true;
  } catch {
    return false;
  }
}

/** Removes a lock whose holder is gone or that is too old; true when there is no lock any more. */
function clearStaleLock(lock: string): boolean {
  try {
    const st = statSync(lock);
    const text = readFileSync(lock, 'utf8');
    const holder = Number(text);
    // An empty lock is one being written this instant: alive until it is too old.
    let alive = text === '' || (Number.isInteger(holder) && holder > 0);
    if (alive && text !== '') {
      try {
        process.kill(holder, 0);
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    if (alive && Date.now() - st.mtimeMs < STALE_LOCK_MS) return false;
    unlinkSync(lock);
    return true;
  } catch {
    return true; // gone already (or unreadable: the next tryLock says)
  }
}

/**
 * `fetch`, answered from the host's cache when another process of this user already
 * fetched the same credentials (those `parts` and the provider environment name them)
 * and they still live past CACHE_MARGIN_MS. Answers without an expiration (static keys
 * of a profile) are never cached: only a note that this source needs no lock is kept.
 */
export function sharedAcrossProcesses(
  parts: Record<string, string | undefined>,
  fetch: () => Promise<ExpiringCredentials>,
): () => Promise<ExpiringCredentials> {
  return async () => {
    const dir = cacheDir();
    if (!dir) return fetch();
    const { file, id } = cacheFile(dir, parts);
    const lock = `${file}.lock`;
    for (;;) {
      const hit = read(file, id);
      if (hit) return 'creds' in hit ? hit.creds : fetch();
      if (tryLock(lock)) {
        try {
          const again = read(file, id); // written between our read and our lock
          if (again) return 'creds' in again ? again.creds : fetch();
          const creds = await fetch();
          write(file, id, creds);
          return creds;
        } finally {
          try {
            unlinkSync(lock);
          } catch {
            // removed as stale by another process
          }
        }
      }
      if (!clearStaleLock(lock)) await sleep(POLL_MS);
    }
  };
}
