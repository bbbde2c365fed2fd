/** The plugin's settings once the config file is read, validated and resolved. */

import type { UserKey } from '../storage/encryption/format.js';

export type LoggerVerbosity = 'error' | 'info' | 'verbose' | 'debug';

export type ChecksumMode = 'auto' | 'crc32' | 'md5' | 'off';

export interface PluginConfig {
  /** Path of the config file this came from (for messages). */
  configPath: string;
  executablePath: string;
  bucket: string;
  /**
   * Key prefix, cleaned as the Go plugin's SDK cleans its request paths (Go's path.Clean):
   * `prod/cluster1/`, `/prod/cluster1` and `prod//cluster1` are all `prod/cluster1`.
   */
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
  /** Attempts after the first for a request that failed in a retryable way (5xx, throttling, reset, timeout). */
  maxRetries: number;
  /** Milliseconds to establish a TCP (and TLS) connection. */
  connectTimeoutMs: number;
  /** Milliseconds a request may go without any byte moving either way before it is abandoned and retried. */
  requestTimeoutMs: number;
  /**
   * The low-speed limit: a transfer moving fewer than lowSpeedLimit bytes a second on average
   * over lowSpeedTimeMs is abandoned and retried; 0 turns it off.
   */
  lowSpeedLimit: number;
  lowSpeedTimeMs: number;
  /** PEM file of certificate authorities trusted for https endpoints (in addition to Node's own). */
  caBundle?: string;
  /** `server_side_encryption`: SSE-S3 (AES256) or SSE-KMS (aws:kms). */
  serverSideEncryption?: 'AES256' | 'aws:kms';
  /** KMS key for aws:kms (key ID, ARN or alias); the bucket's default key when left out. */
  sseKmsKeyId?: string;
  /** x-amz-storage-class of every object written (STANDARD_IA, GLACIER_IR, ...). */
  storageClass?: string;
  /**
   * How uploads are checked by the server: `auto` adapts to what it answers (S3 flexible CRC-32
   * where validated, Content-MD5 elsewhere), `crc32` and `md5` use one kind only, `off` neither.
   */
  checksums: ChecksumMode;
  /** Path-style addressing (host/bucket/key), the Go plugin's only mode; off for virtual-hosted (bucket.host/key). */
  forcePathStyle: boolean;
  /** Bytes a second per process for uploads and for downloads; 0 = unlimited. */
  backupMaxBandwidth: number;
  restoreMaxBandwidth: number;
  /** Named profile of ~/.aws/config and ~/.aws/credentials for the default credential chain. */
  awsProfile?: string;
  /** IAM role assumed (STS AssumeRole) with the credentials found otherwise. */
  roleArn?: string;
  /** `client_side_encryption: on`: every object written is encrypted with `encryptionKey`. */
  clientSideEncryption: boolean;
  /** `deduplication: on`: objects are written as manifests of content-defined chunks stored once (src/dedup). */
  deduplication: boolean;
  /** `encryption_key_file`, read when the config is read. */
  encryptionKeyFile?: string;
  encryptionKey?: UserKey;
  /** `encryption_old_key_files`: keys that only decrypt. */
  encryptionOldKeyFiles: string[];
  /** Every key a restore may try: the current one first, then the old ones. */
  decryptionKeys: UserKey[];
  /** `object_lock_mode` and `object_lock_days`: the retention of every object written. */
  objectLockMode?: 'GOVERNANCE' | 'COMPLIANCE';
  objectLockDays?: number;
  /** Accepted but doubtful settings (e.g. `encryption: yes`), for the log. */
  warnings: string[];
  /** Injected by gpbackup; accepted and unused. */
  pgport?: string;
  backupPluginVersion?: string;
}
