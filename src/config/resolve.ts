/**
 * Turns validated option texts into a PluginConfig: defaults (from the schema) for options left
 * out or empty, sizes and rates in bytes, durations in milliseconds, and the range checks a
 * pattern can't express.
 */
import type { ChecksumMode, LoggerVerbosity, PluginConfig } from './types.js';
import { cleanFolder, folderProblem } from '../storage/keys.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from '../storage/store.js';
import { formatMilliseconds, formatRate, formatSize, parseDuration, parseRate, parseSize } from './size.js';
import { got, meta, optionAt } from './validate.js';
import type { KeyLines, Problem } from './yaml.js';

/** Limits of connect_timeout and request_timeout, in milliseconds. */
const CONNECT_TIMEOUT_MS = [100, 10 * 60_000] as const;
const REQUEST_TIMEOUT_MS = [1000, 60 * 60_000] as const;
/** Limits of low_speed_time, in milliseconds. */
const LOW_SPEED_TIME_MS = [1000, 60 * 60_000] as const;
/** Smallest restore_multipart_chunksize. */
const MIN_RANGE_SIZE = 1024 * 1024;
/** Slowest bandwidth limit: anything lower is most likely a missing unit (`64` meaning 64KB/s). */
const MIN_BANDWIDTH = 64 * 1024;

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

  const problem = (name: string, text: string) => {
    problems.push({ text: `${optionAt(name, lines)}: ${text}`, line: lines.options.get(name), option: name });
  };
  /**
   * The option's amount in its syntax (a size, a rate, a duration), or its default; a value that
   * `parse` refuses or `check` finds wrong (check says what is wrong) is a problem and leaves
   * the default.
   */
  const amount = (name: string, parse: (text: string) => number, check: (n: number) => string | undefined): number => {
    const fallback = parse(meta.defaults[name] ?? '');
    const text = given(name);
    if (text === undefined) return fallback;
    let n: number;
    try {
      n = parse(text);
    } catch (err) {
      problem(name, (err as Error).message);
      return fallback;
    }
    const wrong = check(n);
    if (wrong === undefined) return n;
    problem(name, `${wrong}${got(name, text)}`);
    return fallback;
  };
  const within = (min: number, max: number, format: (n: number) => string, why = '') => (n: number) =>
    n >= min && n <= max ? undefined : `must be from ${format(min)} to ${format(max)}${why}`;
  const partSize = (name: string) => amount(name, parseSize, within(MIN_PART_SIZE, MAX_PART_SIZE, formatSize, " (S3's part size limits)"));
  // Ranged GETs have no minimum size; below 1 MiB a restore spends more time on requests than on data.
  const rangeSize = (name: string) =>
    amount(name, parseSize, within(MIN_RANGE_SIZE, MAX_PART_SIZE, formatSize, ' (smaller pieces cost more in requests than they save in memory)'));
  const bandwidth = (name: string) =>
    amount(name, parseRate, n => (n === 0 || n >= MIN_BANDWIDTH ? undefined : `must be 0 (unlimited) or at least ${formatRate(MIN_BANDWIDTH)}`));
  const timeout = (name: string, [min, max]: readonly [number, number]) => amount(name, parseDuration, within(min, max, formatMilliseconds));

  // The schemas' patterns allow only whole numbers in range, with optional spaces, `+` and leading zeros.
  const count = (name: string): number => Number.parseInt(value(name).trim(), 10);

  const warnings: string[] = [];
  /**
   * The Go plugin's rule: anything but `off` (in any case) is on. A value other than on/off
   * is accepted with a warning, since `encryption: "false"` meaning https surprises.
   */
  const tlsFromEncryption = (): boolean => {
    const text = value('encryption');
    const off = text.toLowerCase() === 'off';
    if (!['on', 'off'].includes(text.toLowerCase())) {
      warnings.push(
        `${optionAt('encryption', lines)}: "${text}" is read as on (https), as the Go plugin reads any value other than off; write on or off`,
      );
    }
    return !off;
  };
  /** The folder as the Go plugin's SDK sends it (see storage/keys.ts); one that cannot be used is a problem. */
  const folderKey = (folder: string): string => {
    if (folder === '' || skip.has('folder')) return folder;
    const wrong = folderProblem(folder);
    if (wrong === undefined) return cleanFolder(folder);
    problem('folder', `${wrong}${got('folder', folder)}`);
    return folder;
  };

  const config: PluginConfig = {
    configPath,
    executablePath: String(doc.executablepath ?? ''),
    bucket: String(options.bucket ?? ''),
    folder: folderKey(String(options.folder ?? '')),
    useTls: tlsFromEncryption(),
    backupPartSize: partSize('backup_multipart_chunksize'),
    backupConcurrency: count('backup_max_concurrent_requests'),
    restorePartSize: rangeSize('restore_multipart_chunksize'),
    restoreConcurrency: count('restore_max_concurrent_requests'),
    removeDuplicateBucket: value('remove_duplicate_bucket') === 'true',
    loggerVerbosity: value('logger_verbosity') as LoggerVerbosity,
    restoreSubset: value('restore_subset') === 'on',
    maxRetries: count('max_retries'),
    connectTimeoutMs: timeout('connect_timeout', CONNECT_TIMEOUT_MS),
    requestTimeoutMs: timeout('request_timeout', REQUEST_TIMEOUT_MS),
    lowSpeedLimit: amount('low_speed_limit', parseRate, () => undefined),
    lowSpeedTimeMs: timeout('low_speed_time', LOW_SPEED_TIME_MS),
    forcePathStyle: value('force_path_style') === 'on',
    checksums: value('checksums') as ChecksumMode,
    backupMaxBandwidth: bandwidth('backup_max_bandwidth'),
    restoreMaxBandwidth: bandwidth('restore_max_bandwidth'),
    clientSideEncryption: value('client_side_encryption') === 'on',
    deduplication: value('deduplication') === 'on',
    encryptionOldKeyFiles: (given('encryption_old_key_files') ?? '').split(',').map(f => f.trim()).filter(Boolean),
    // The key files are read by load.ts (checkKeyFiles), once the options are valid.
    decryptionKeys: [],
    warnings,
  };
  const optional = {
    region: given('region'),
    endpoint: given('endpoint'),
    accessKeyId: given('aws_access_key_id'),
    secretAccessKey: given('aws_secret_access_key'),
    sessionToken: given('aws_session_token'),
    httpProxy: given('http_proxy'),
    caBundle: given('ca_bundle'),
    // The schema's enum allows only these two.
    serverSideEncryption: given('server_side_encryption') as PluginConfig['serverSideEncryption'],
    sseKmsKeyId: given('sse_kms_key_id'),
    storageClass: given('storage_class'),
    awsProfile: given('aws_profile'),
    roleArn: given('role_arn'),
    encryptionKeyFile: given('encryption_key_file'),
    // The schema's enum allows only these two.
    objectLockMode: given('object_lock_mode') as PluginConfig['objectLockMode'],
    objectLockDays: given('object_lock_days') === undefined ? undefined : count('object_lock_days'),
    // Injected by gpbackup, kept as given even when empty.
    pgport: typeof options.pgport === 'string' ? options.pgport : undefined,
    backupPluginVersion: typeof options.backup_plugin_version === 'string' ? options.backup_plugin_version : undefined,
  };
  for (const [key, v] of Object.entries(optional)) if (v !== undefined) Object.assign(config, { [key]: v });
  return { config, problems };
}
