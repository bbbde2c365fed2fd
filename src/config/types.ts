/** The plugin's settings once the config file is read, validated and resolved. */

export type LoggerVerbosity = 'error' | 'info' | 'verbose' | 'debug';

export interface PluginConfig {
  /** Path of the config file this came from (for messages). */
  configPath: string;
  executablePath: string;
  bucket: string;
  /** Key prefix, verbatim as the Go plugin uses it (a trailing slash gives `//` in keys). */
  folder: string;
  region?: string;
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** `encryption: on` (default): https for endpoints without a scheme and for AWS endpoints. */
  useTls: boolean;
  httpProxy?: string;
  backupPartSize: number;
  backupConcurrency: number;
  restorePartSize: number;
  restoreConcurrency: number;
  /** Drop the `/<bucket>` path segment for endpoints that already route to the bucket. */
  removeDuplicateBucket: boolean;
  loggerVerbosity: LoggerVerbosity;
  /** `restore_subset: on` lets gpbackup_helper call restore_data_subset. */
  restoreSubset: boolean;
  /** Injected by gpbackup; accepted and unused. */
  pgport?: string;
  backupPluginVersion?: string;
}
