/**
 * The transfer lines of the log, worded as the Go plugin words them so that operators' greps
 * keep matching: `Uploaded <n> bytes for <name> in <d>` (backup_file),
 * `Uploaded <n> bytes for file <name> in <d>` (backup_data), and the same with `Downloaded`;
 * `<d>` as Go prints a time.Duration rounded to the millisecond. What this plugin adds
 * (where the bytes went, parts, rate) follows in parentheses.
 */
import { describeError, PluginError } from '../errors.js';
import { ReaderClosedError } from '../storage/sink.js';

/** Go's time.Duration String() of a duration rounded to the millisecond: 0s, 15ms, 1.5s, 2m3.04s, 1h0m5s. */
export function goDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const seconds = ((total % 60_000) / 1000).toFixed(3).replace(/\.?0+$/, '');
  return `${hours > 0 ? `${hours}h${minutes}m` : minutes > 0 ? `${minutes}m` : ''}${seconds}s`;
}

/** `Uploaded 1048576 bytes for file gpbackup_0_20240102030405_16384.gz in 1.234s`; `file` is the Go plugin's word for the data commands. */
export function transferLine(
  verb: 'Uploaded' | 'Downloaded',
  bytes: number,
  key: string,
  startedAt: number,
  opts: { file?: boolean; detail?: string } = {},
): string {
  const ms = Date.now() - startedAt;
  const name = key.slice(key.lastIndexOf('/') + 1);
  const rate = ms > 0 ? `${(bytes / 1048576 / (ms / 1000)).toFixed(1)} MiB/s` : undefined;
  const ours = [opts.detail, rate].filter(Boolean).join(', ');
  return `${verb} ${bytes} bytes for ${opts.file ? 'file ' : ''}${name} in ${goDuration(ms)}${ours ? ` (${ours})` : ''}`;
}

/**
 * Runs a transfer; a failure keeps its exit code and reads `Error while uploading <key>: ...`
 * (or downloading), the Go plugin's words. The store's own messages already start
 * `uploading s3://bucket/key: `, which then names the object.
 */
export async function transferring<T>(direction: 'uploading' | 'downloading', key: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof ReaderClosedError) throw err; // not the transfer's failure: cli.ts says what happened
    const exitCode = err instanceof PluginError ? err.exitCode : undefined;
    const message = describeError(err);
    throw new PluginError(message.startsWith(`${direction} `) ? `Error while ${message}` : `Error while ${direction} ${key}: ${message}`, exitCode);
  }
}
