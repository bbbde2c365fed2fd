/**
 * S3 Object Lock on upload: the retention headers of PutObject and CreateMultipartUpload, and
 * the Content-MD5 that S3 requires of every request writing a locked object's bytes.
 */
import { createHash } from 'node:crypto';

export type ObjectLockMode = 'GOVERNANCE' | 'COMPLIANCE';

/**
 * Setup's probe objects (src/protocol/hooks.ts) start so: they are written without retention,
 * else each setup would leave a locked version behind in the (versioned) bucket.
 */
export const PROBE_NAME_PREFIX = '.gpbackup_s3_plugin_probe_';

/** x-amz-object-lock-retain-until-date: `days` from now, in ISO 8601 to the second (UTC). */
export function retainUntil(days: number, now = Date.now()): string {
  return new Date(now + days * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function objectLockHeaders(key: string, mode: ObjectLockMode | undefined, days: number | undefined): Record<string, string> {
  if (!mode || !days || key.slice(key.lastIndexOf('/') + 1).startsWith(PROBE_NAME_PREFIX)) return {};
  return { 'x-amz-object-lock-mode': mode, 'x-amz-object-lock-retain-until-date': retainUntil(days) };
}

export function contentMd5(body: Buffer): string {
  return createHash('md5').update(body).digest('base64');
}
