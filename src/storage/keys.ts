/**
 * Where objects live: `<folder>/backups/<YYYYMMDD>/<timestamp>/<file>`, with the keys the Go
 * plugin's objects really have. The Go plugin joins the folder and the last four components
 * of the local path as text, but its SDK (aws-sdk-go v1, rest protocol `cleanPath`) then runs
 * Go's `path.Clean` over the whole request path `/<bucket>/<key>` before sending it: doubled
 * slashes collapse, a leading or trailing slash of the folder disappears, `.` and `..`
 * segments are resolved. So the key of `folder: prod/cluster1/` is `prod/cluster1/backups/...`,
 * and the same cleaning is applied here to everything written, read, listed or deleted.
 */
import { PluginError } from '../errors.js';

const TIMESTAMP = /^\d{14}$/;

/**
 * Refuses control characters (U+0000-U+001F, U+007F) in a path: a newline prints as a space in
 * a message, so it would name another key, and a tab makes list_directory's output ambiguous.
 */
export function refuseControlCharacters(path: string, what: string): void {
  const at = path.search(/[\u0000-\u001f\u007f]/);
  if (at < 0) return;
  const code = path.charCodeAt(at).toString(16).padStart(2, '0');
  throw new PluginError(`${what} ${JSON.stringify(path)} holds a control character (0x${code}) at position ${at + 1}: such names are refused`);
}

/**
 * Go's `path.Clean`, exactly: the shortest path naming the same thing, by purely lexical
 * processing: repeated slashes become one, `.` elements go, an inner `..` removes the element
 * before it, a `..` at the start of a rooted path goes, and an empty result is ".".
 */
export function goPathClean(path: string): string {
  if (path === '') return '.';
  const rooted = path.startsWith('/');
  const out: string[] = [];
  for (const element of path.split('/')) {
    if (element === '' || element === '.') continue;
    if (element !== '..') out.push(element);
    else if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else if (!rooted) out.push('..'); // a leading .. of a relative path stays; of a rooted one, goes
  }
  const cleaned = (rooted ? '/' : '') + out.join('/');
  return cleaned === '' ? '.' : cleaned;
}

/**
 * Why a folder cannot be used, or undefined. The Go plugin's request path is
 * `/<bucket>/<folder>/backups/...`: a folder that cleans to nothing would put backups at the
 * bucket's root, and one whose `..` climbs above its start would eat the bucket segment and
 * send the request to another bucket (or, with remove_duplicate_bucket, be silently dropped).
 */
export function folderProblem(folder: string): string | undefined {
  let depth = 0;
  for (const element of folder.split('/')) {
    if (element === '' || element === '.') continue;
    depth += element === '..' ? -1 : 1;
    if (depth < 0) return 'its ".." segments climb out of the bucket; name the folder without them, such as backups/prod';
  }
  if (depth === 0) return 'cleans to nothing (only slashes, "." or ".." that cancel out); name a folder such as backups/prod';
  return undefined;
}

/**
 * The folder as the Go plugin's requests carry it: `prod/cluster1/` and `/prod//cluster1`
 * both give `prod/cluster1`. A folder with a folderProblem is refused.
 */
export function cleanFolder(folder: string): string {
  const problem = folderProblem(folder);
  if (problem) throw new PluginError(`folder "${folder}" ${problem}`);
  return goPathClean(`/${folder}`).slice(1);
}

/**
 * The object key for a local path <anything>/backups/<D>/<TS>/<file>: the cleaned folder and
 * the path's last four components, which is what path.Clean makes of the Go plugin's
 * `<folder>/<last four>` (those components hold no `.`, `..` or empty element: such a path is
 * refused here, where the Go plugin would have cleaned `backups` or the date away).
 */
export function keyForPath(folder: string, localPath: string): string {
  refuseControlCharacters(localPath, 'path');
  // Empty components (from `//`) are dropped, as path normalisation would.
  const parts = localPath.split('/').filter(p => p !== '');
  const tail = parts.slice(-4);
  if (tail.length < 4 || tail.some(p => p === '.' || p === '..')) {
    throw new PluginError(
      `cannot map "${localPath}" to an object key: expected a path ending in backups/<YYYYMMDD>/<timestamp>/<file>`,
    );
  }
  return `${cleanFolder(folder)}/${tail.join('/')}`;
}

/** A delete_backup timestamp: exactly 14 digits (not checked as a calendar date, as gpbackup's tests use e.g. 99989012345678). */
export function checkTimestamp(timestamp: string): void {
  if (!TIMESTAMP.test(timestamp)) {
    throw new PluginError(`delete_backup needs a timestamp of exactly 14 digits (YYYYMMDDHHMMSS), got "${timestamp}"`);
  }
}

/**
 * Every object of one backup, and nothing of another: the trailing slash keeps
 * 20240101000000 from matching 202401010000001... or a sibling directory.
 */
export function backupPrefix(folder: string, timestamp: string): string {
  checkTimestamp(timestamp);
  return `${cleanFolder(folder)}/backups/${timestamp.slice(0, 8)}/${timestamp}/`;
}

/** Where a list_directory or delete_directory path points, and how it was read (for messages). */
export interface DirectoryPrefix {
  prefix: string;
  /** `bucket`: the path began with the folder, so it was taken from the bucket's root, as the Go plugin takes it. */
  relativeTo: 'bucket' | 'folder';
}

/**
 * The prefix for a list/delete_directory path. A path that begins with the (cleaned) folder
 * is taken relative to the bucket, as the Go plugin takes every path
 * (`cluster1/backups/20240102` with `folder: cluster1`); any other path is taken relative to
 * the folder. Either way it stays inside the folder: absolute paths and `.`, `..` or empty
 * components are refused. The prefix ends with `/`: a path names a directory, never the
 * start of a name.
 */
export function directoryPrefix(folder: string, path: string | undefined, what: string): DirectoryPrefix {
  const base = cleanFolder(folder);
  if (path === undefined) return { prefix: `${base}/`, relativeTo: 'folder' };
  refuseControlCharacters(path, `${what}: path`);
  const trimmed = path.replace(/\/+$/, '');
  const parts = trimmed.split('/');
  if (trimmed === '' || path.startsWith('/') || parts.some(p => p === '' || p === '.' || p === '..')) {
    throw new PluginError(
      `${what}: path "${path}" must be relative to the bucket or to the folder "${base}" and stay inside the folder, ` +
        'without ".", ".." or empty components',
    );
  }
  if (trimmed === base || trimmed.startsWith(`${base}/`)) return { prefix: `${trimmed}/`, relativeTo: 'bucket' };
  return { prefix: `${base}/${trimmed}/`, relativeTo: 'folder' };
}

/** s3://bucket/key, for messages. */
export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}
