/**
 * Reads a small input file (the plugin config, restore_data_subset's offsets file) that must be a
 * regular file after symlinks are followed. A device (/dev/zero), a FIFO, a socket or a directory
 * is refused before it is read: stat's size is 0 for a device, so only a bounded read stops one
 * that streams forever, and a FIFO without a writer would block open(2). The file is opened with
 * O_NONBLOCK (a FIFO swapped in after the check cannot hang the open), checked again through the
 * open descriptor, and read to at most `maxBytes` + 1 bytes.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { PluginError } from '../errors.js';

export interface RegularFile {
  bytes: Buffer;
  stat: Stats;
}

/** What a file that is not regular is, for messages. */
function kindOf(stat: Stats): string | undefined {
  if (stat.isFile()) return undefined;
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'a special file';
}

/** Why a file operation failed, in words (Node's text carries the code and the call: "ENOENT: no such file or directory, open '/x'"). */
export function fileErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'ENAMETOOLONG':
      return 'the name is too long';
    default:
      return (err instanceof Error ? err.message : String(err)).replace(/^[A-Z]+: /, '').replace(/, \w+( '.*')?$/, '');
  }
}

/**
 * The file's bytes and its stat. `what` starts every message ("reading plugin config /x"), one
 * line of our own words; `tooLarge` is the message for a file over `maxBytes`.
 */
export function readRegularFile(path: string, maxBytes: number, what: string, tooLarge: string): RegularFile {
  const refuse = (stat: Stats) => {
    const kind = kindOf(stat);
    if (kind) throw new PluginError(`${what}: it is ${kind}${stat.isDirectory() ? '' : ', not a regular file'}`);
  };
  let fd: number | undefined;
  try {
    refuse(statSync(path));
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const stat = fstatSync(fd);
    refuse(stat);
    // Sized from the fstat, grown if the file grew since, never past the bound + 1.
    let buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(stat.size + 1, 64 * 1024)));
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        if (length > maxBytes) throw new PluginError(tooLarge);
        const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, length);
        buf = bigger;
      }
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) return { bytes: buf.subarray(0, length), stat };
      length += n;
    }
  } catch (err) {
    if (err instanceof PluginError) throw err;
    throw new PluginError(`${what}: ${fileErrorReason(err)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
