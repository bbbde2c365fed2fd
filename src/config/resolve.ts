/**
 * Turns validated option texts into a PluginConfig: defaults (from the schema) for options left
 * out or empty, sizes in bytes, and the range checks a pattern can't express.
 */
import type { LoggerVerbosity, PluginConfig } from './types.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from '../storage/store.js';
import { formatSize, parseSize } from './size.js';
import { got, meta, optionAt } from './validate.js';
import type { KeyLines, Problem } from './yaml.js';

/**
 * `doc` passed the schema except for the options named in `skip`, which already have a
 * problem and are left at their defaults here.
 */
export function resolveConfig(
  doc: Record<string, unknown>,
  lines: KeyLines,
  configPath: string,
  skip: Set<string>,
): { config: PluginConfig; problems: Problem[] } {
  const options = (doc.options ?? {}) as Record<string, unknown>;
  const problems: Problem[] = [];
  /** The option's text, if set and not empty. */
  const given = (name: string): string | undefined => {
    const v = options[name];
    return typeof v === 'string' && v !== '' && !skip.has(name) ? v : undefined;
  };
  const value = (name: string): string => given(name) ?? meta.defaults[name] ?? '';

  const partSize = (name: string): number => {
    const fallback = parseSize(meta.defaults[name] ?? '');
    const text = given(name);
    if (text === undefined) return fallback;
    let bytes: number;
    try {
      bytes = parseSize(text);
    } catch (err) {
      problems.push({ text: `${optionAt(name, lines)}: ${(err as Error).message}`, line: lines.options.get(name), option: name });
      return fallback;
    }
    if (bytes < MIN_PART_SIZE || bytes > MAX_PART_SIZE) {
      problems.push({
        text: `${optionAt(name, lines)}: must be from ${formatSize(MIN_PART_SIZE)} to ${formatSize(MAX_PART_SIZE)} (S3's part size limits)${got(name, text)}`,
        line: lines.options.get(name),
        option: name,
      });
      return fallback;
    }
    return bytes;
  };
  // The schema's pattern allows only 1..64, with optional spaces, `+` and leading zeros.
  const count = (name: string): number => Number.parseInt(value(name).trim(), 10);

  const config: PluginConfig = {
    configPath,
    executablePath: String(doc.executablepath ?? ''),
    bucket: String(options.bucket ?? ''),
    folder: String(options.folder ?? ''),
    useTls: value('encryption') === 'on',
    backupPartSize: partSize('backup_multipart_chunksize'),
    backupConcurrency: count('backup_max_concurrent_requests'),
    restorePartSize: partSize('restore_multipart_chunksize'),
    restoreConcurrency: count('restore_max_concurrent_requests'),
    removeDuplicateBucket: value('remove_duplicate_bucket') === 'true',
    loggerVerbosity: value('logger_verbosity') as LoggerVerbosity,
    restoreSubset: value('restore_subset') === 'on',
    maxRetries: 5,
    connectTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    forcePathStyle: true,
    backupMaxBandwidth: 0,
    restoreMaxBandwidth: 0,
  };
  const optional = {
    region: given('region'),
    endpoint: given('endpoint'),
    accessKeyId: given('aws_access_key_id'),
    secretAccessKey: given('aws_secret_access_key'),
    sessionToken: given('aws_session_token'),
    httpProxy: given('http_proxy'),
    // Injected by gpbackup, kept as given even when empty.
    pgport: typeof options.pgport === 'string' ? options.pgport : undefined,
    backupPluginVersion: typeof options.backup_plugin_version === 'string' ? options.backup_plugin_version : undefined,
  };
  for (const [key, v] of Object.entries(optional)) if (v !== undefined) Object.assign(config, { [key]: v });
  return { config, problems };
}
