/**
 * Key files of client-side encryption: a 256-bit key written as 64 hex digits or as base64 (44
 * characters), or else a passphrase (at least 16 bytes), surrounding whitespace ignored. The
 * file must be a regular file that only its owner can read (mode 0600 or stricter).
 */
import { readFileSync, statSync } from 'node:fs';
import type { UserKey } from './format.js';

const MIN_PASSPHRASE_BYTES = 16;
const MAX_KEY_FILE_BYTES = 64 * 1024;

/** The key the file holds; throws an Error saying what is wrong with the file. */
export function readKeyFile(path: string): UserKey {
  let text: Buffer;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new Error(`${path} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) {
      throw new Error(`${path} is readable or writable by group or others (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}): run chmod 600 on it`);
    }
    if (stat.size > MAX_KEY_FILE_BYTES) throw new Error(`${path} is larger than 64 KiB: is it a key file?`);
    text = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`cannot read ${path}: no such file`);
    if (code === 'EACCES' || code === 'EPERM') throw new Error(`cannot read ${path}: permission denied`);
    if (code) throw new Error(`cannot read ${path}: ${(err as Error).message.replace(/^[A-Z]+: /, '')}`);
    throw err;
  }
  return parseKey(text, path);
}

export function parseKey(content: Buffer, source: string): UserKey {
  const trimmed = content.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return { kind: 'raw', key: Buffer.from(trimmed, 'hex'), source };
  if (/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) return { kind: 'raw', key: Buffer.from(trimmed, 'base64'), source };
  const passphrase = Buffer.from(content.toString('utf8').trim(), 'utf8');
  if (passphrase.length < MIN_PASSPHRASE_BYTES) {
    throw new Error(
      `${source} holds neither a 256-bit key (64 hex digits or 44 base64 characters) nor a passphrase of at least ${MIN_PASSPHRASE_BYTES} bytes`,
    );
  }
  return { kind: 'passphrase', passphrase, source };
}
