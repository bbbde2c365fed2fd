/**
 * gplog-format logging, as gp-common-go-libs writes it:
 *   YYYYMMDD:HH:MM:SS gpbackup_s3_plugin:<user>:<host>:<pid, 6 digits>-[LEVEL]:-<message>
 * to ~/gpAdminLogs/gpbackup_s3_plugin_YYYYMMDD.log (local date), a file that
 * every plugin process of the day appends to at once: each line is one
 * write(2) on an O_APPEND descriptor, so lines never interleave.
 *
 * Nothing is ever logged to stdout (it carries restore_data's bytes); errors
 * go to stderr. Every registered secret is masked in every line.
 */
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

export const PROGRAM = 'gpbackup_s3_plugin';

export type Level = 'ERROR' | 'WARNING' | 'INFO' | 'VERBOSE' | 'DEBUG';

const RANK: Record<Level, number> = { ERROR: 0, WARNING: 1, INFO: 2, VERBOSE: 3, DEBUG: 4 };
const VERBOSITY_RANK = { error: 1, info: 2, verbose: 3, debug: 4 } as const;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

const UTC_ZONE = /^:?(?:(?:.*\/)?zoneinfo\/)?(?:Etc\/)?(?:UTC|UCT|GMT|Universal|Zulu|GMT[+-]?0)?0?$/;

/**
 * Whether local time is UTC (the TZ variable, else /etc/localtime, names a UTC zone; no TZ and no
 * /etc/localtime is UTC too). Then the log's stamps come from the UTC getters: the local ones make
 * the runtime load its time-zone database, about 4-5 MiB of peak RSS per process under Bun
 * (docs/performance.md). Any other zone, or one not known by name, is left to the runtime.
 */
export function localTimeIsUtc(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.TZ !== undefined) return UTC_ZONE.test(env.TZ);
  try {
    return UTC_ZONE.test(readlinkSync('/etc/localtime'));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

let utc: boolean | undefined;

/** The fields of `d` in local time. */
function localFields(d: Date): [number, number, number, number, number, number] {
  utc ??= localTimeIsUtc();
  return utc
    ? [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
}

export function dateStamp(d: Date): string {
  const [year, month, day] = localFields(d);
  return `${year}${pad(month + 1)}${pad(day)}`;
}

function timeStamp(d: Date): string {
  const [, , , hours, minutes, seconds] = localFields(d);
  return `${dateStamp(d)}:${pad(hours)}:${pad(minutes)}:${pad(seconds)}`;
}

function currentUser(): string {
  try {
    const { username, uid } = userInfo();
    // Bun's userInfo() does not look the name up (it says "unknown"): find it in /etc/passwd, as Go's
    // os/user does without cgo.
    if (username && username !== 'unknown') return username;
    const entry = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .map(line => line.split(':'))
      .find(fields => fields[2] === String(uid));
    if (entry?.[0]) return entry[0];
  } catch {
    // no passwd entry readable: fall through
  }
  return process.env.USER ?? 'unknown';
}

/** Go-style duration rounded to ms: 65ms, 1.234s, 2m3.004s. */
export function formatDuration(ms: number): string {
  const total = Math.round(ms);
  if (total < 1000) return `${total}ms`;
  const minutes = Math.floor(total / 60000);
  const seconds = ((total % 60000) / 1000).toFixed(3).replace(/\.?0+$/, '');
  return minutes > 0 ? `${minutes}m${seconds}s` : `${seconds}s`;
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir loops for ever where mkdir(2) answers
 * ENOENT for a parent that exists (under /proc, for one). At most one mkdir per path component.
 */
function makeLogDir(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    try {
      mkdirSync(d, 0o755);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') break;
      if (code !== 'ENOENT' || dirname(d) === d || missing.length > 64) throw err;
      missing.push(d);
    }
  }
  // The parents are there now: create what was missing below them, innermost last.
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, 0o755);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

export class Logger {
  private fd: number | undefined;
  private fileFailed = false;
  private maxRank = RANK.DEBUG;
  private readonly secrets: string[] = [];
  private prefixCache: string | undefined;

  constructor(private readonly logDir: () => string = () => join(homedir(), 'gpAdminLogs')) {}

  /** Lines above this level are not written to the log file. */
  setVerbosity(v: keyof typeof VERBOSITY_RANK): void {
    this.maxRank = VERBOSITY_RANK[v];
  }

  /** Whether lines of `level` reach the log (to skip building lines nobody reads). */
  enabled(level: Level): boolean {
    return RANK[level] <= this.maxRank;
  }

  /** Never print this string: it is replaced by *** wherever it appears. */
  addSecret(secret: string | undefined): void {
    if (secret && secret.length >= 4 && !this.secrets.includes(secret)) this.secrets.push(secret);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }

  error(msg: string): void {
    this.write('ERROR', msg);
  }
  warn(msg: string): void {
    this.write('WARNING', msg);
  }
  info(msg: string): void {
    this.write('INFO', msg);
  }
  verbose(msg: string): void {
    this.write('VERBOSE', msg);
  }
  debug(msg: string): void {
    this.write('DEBUG', msg);
  }

  /** Something the caller should know that is not an error: one INFO line on stderr, and in the log. */
  notice(msg: string): void {
    const line = this.format('INFO', msg);
    process.stderr.write(line);
    this.append(line);
  }

  /** An error for the caller: one line on stderr, and in the log. */
  fatal(msg: string): void {
    const line = this.format('ERROR', msg);
    process.stderr.write(line);
    this.append(line);
  }

  format(level: Level, msg: string): string {
    // gplog prints Verbose and Debug both as DEBUG.
    const shown = level === 'VERBOSE' ? 'DEBUG' : level;
    const oneLine = this.redact(msg).replace(/\s*\n\s*/g, ' ');
    return `${timeStamp(new Date())} ${this.prefix()}-[${shown}]:-${oneLine}\n`;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private prefix(): string {
    this.prefixCache ??= `${PROGRAM}:${currentUser()}:${hostname()}:${pad(process.pid, 6)}`;
    return this.prefixCache;
  }

  private write(level: Level, msg: string): void {
    if (RANK[level] > this.maxRank) return;
    this.append(this.format(level, msg));
  }

  private append(line: string): void {
    if (this.fd === undefined && !this.fileFailed) {
      const dir = this.logDir();
      const file = join(dir, `${PROGRAM}_${dateStamp(new Date())}.log`);
      try {
        makeLogDir(dir);
        this.fd = openSync(file, 'a', 0o644);
      } catch (err) {
        // A missing log must not fail a backup; say so once, on stderr.
        this.fileFailed = true;
        // Node's text without its code and call ("ENOENT: no such file or directory, mkdir '/x'").
        const why = (err as Error).message.replace(/^[A-Z]+: /, '').replace(/, \w+( '.*')?$/, '');
        process.stderr.write(this.format('WARNING', `cannot write log file ${file}: ${why}`));
      }
    }
    if (this.fd !== undefined) writeSync(this.fd, line);
  }
}

export const log = new Logger();
