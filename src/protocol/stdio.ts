/**
 * Whether stdin or stdout was closed when the process started. Node (and Bun alike) replace a
 * closed fd 0-2 with /dev/null before any of our code runs, so a closed stdout would swallow a
 * restore and a closed stdin would back up an empty stream, both with exit 0. The replacement is
 * opened read-write, where a shell's `< /dev/null` is read-only and `> /dev/null` write-only:
 * /dev/null open O_RDWR on fd 0 or 1 is taken as "closed". Linux only (/proc/self/fdinfo);
 * elsewhere nothing is refused.
 */
import { fstatSync, readFileSync } from 'node:fs';
import { PluginError } from '../errors.js';

/** /dev/null's device number: major 1, minor 3. */
const DEV_NULL_RDEV = (1 << 8) | 3;
const O_ACCMODE = 0o3;
const O_RDWR = 0o2;

export function wasClosedAtStart(fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    if (!stat.isCharacterDevice() || stat.rdev !== DEV_NULL_RDEV) return false;
    const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
    return flags !== undefined && (parseInt(flags, 8) & O_ACCMODE) === O_RDWR;
  } catch {
    return false;
  }
}

/** Refuses to run `command` when its data stream (stdin or stdout) was closed by the caller. */
export function requireOpenStream(command: string, stream: 'stdin' | 'stdout'): void {
  if (!wasClosedAtStart(stream === 'stdin' ? 0 : 1)) return;
  throw new PluginError(
    stream === 'stdin'
      ? `${command}: stdin was closed when the plugin started: there is no stream to back up (give < /dev/null for an empty one)`
      : `${command}: stdout was closed when the plugin started: the restored data would go nowhere`,
  );
}
