import { formatDuration } from '../log/gplog.js';

/** `1048576 bytes in 1.234s (0.8 MiB/s)` */
export function transferSummary(bytes: number, startedAt: number): string {
  const ms = Date.now() - startedAt;
  const rate = ms > 0 ? ` (${(bytes / 1048576 / (ms / 1000)).toFixed(1)} MiB/s)` : '';
  return `${bytes} bytes in ${formatDuration(ms)}${rate}`;
}
