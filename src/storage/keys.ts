/**
 * Where objects live: `<folder>/backups/<YYYYMMDD>/<timestamp>/<file>`, built
 * exactly as the Go plugin builds it (folder verbatim + "/" + the last four
 * components of the local path), so either plugin restores the other's backups.
 */
import { PluginError } from '../protocol/errors.js';

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

/** The object key for a local path <anything>/backups/<D>/<TS>/<file>. */
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
  return `${folder}/${tail.join('/')}`;
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
  return `${folder}/backups/${timestamp.slice(0, 8)}/${timestamp}/`;
}

/**
 * The prefix for a path relative to the folder, for list/delete_directory.
 * Refuses anything that could reach outside the folder.
 */
export function folderSubPrefix(folder: string, relPath: string | undefined, what: string): string {
  if (relPath === undefined) return `${folder}/`;
  refuseControlCharacters(relPath, `${what}: path`);
  const trimmed = relPath.replace(/\/+$/, '');
  const parts = trimmed.split('/');
  if (trimmed === '' || relPath.startsWith('/') || parts.some(p => p === '' || p === '.' || p === '..')) {
    throw new PluginError(
      `${what}: path "${relPath}" must be relative to the folder "${folder}", without ".", ".." or empty components`,
    );
  }
  return `${folder}/${trimmed}/`;
}

/** s3://bucket/key, for messages. */
export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}
