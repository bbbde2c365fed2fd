/**
 * verify_backup --deep's progress on stderr: on a terminal one line rewritten in place (objects,
 * bytes, rate, time left), otherwise a plain line every PLAIN_INTERVAL_MS, for a log or a pipe.
 */
import type { Progress } from './verify.js';

const TTY_INTERVAL_MS = 250;
const PLAIN_INTERVAL_MS = 10_000;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export class StderrProgress implements Progress {
  private objects = 0;
  private bytes = 0;
  private doneObjects = 0;
  private doneBytes = 0;
  private started = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly now: () => number = Date.now,
  ) {}

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  start(objects: number, bytes: number): void {
    this.objects = objects;
    this.bytes = bytes;
    this.started = this.now();
    this.timer = setInterval(() => this.show(), this.tty ? TTY_INTERVAL_MS : PLAIN_INTERVAL_MS);
    this.timer.unref();
  }

  advance(bytes: number): void {
    this.doneObjects++;
    this.doneBytes += bytes;
  }

  line(): string {
    const elapsed = Math.max(0.001, (this.now() - this.started) / 1000);
    const rate = this.doneBytes / elapsed;
    const left = rate > 0 ? (this.bytes - this.doneBytes) / rate : Number.POSITIVE_INFINITY;
    return (
      `verify_backup: ${this.doneObjects}/${this.objects} objects, ${formatBytes(this.doneBytes)} of ${formatBytes(this.bytes)}, ` +
      `${formatBytes(rate)}/s, ${this.doneBytes >= this.bytes ? 'done' : `${formatSeconds(left)} left`}`
    );
  }

  private show(): void {
    this.stream.write(this.tty ? `\r${this.line()}\x1b[K` : `${this.line()}\n`);
  }

  finish(): void {
    clearInterval(this.timer);
    if (this.tty) this.stream.write(`\r${this.line()}\x1b[K\n`);
  }
}
