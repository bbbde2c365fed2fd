/**
 * setup_plugin_for_backup|restore and cleanup_plugin_for_backup|restore:
 *   <config> <local_backup_dir> <scope> [<content_id>]
 * gpbackup calls each in three rounds (coordinator, segment_host, segment),
 * in parallel across the cluster; every hook here is idempotent, safe to run
 * many at once, and never needs the local directory to exist
 * (--metadata-only creates none on the segments).
 */
import { basename } from 'node:path';
import { log } from '../log/gplog.js';
import { crc32 } from '../storage/crc32.js';
import { keyForPath, s3Url } from '../storage/keys.js';
import { PROBE_NAME_PREFIX } from '../storage/object-lock.js';
import type { ObjectStore } from '../storage/store.js';
import { openContext, readConfig } from './context.js';
import { describeError, PluginError } from '../errors.js';
import { UsageError } from './errors.js';
import { abortUploadsUnder } from './orphans.js';
import { checkObjectLockForBackup } from './object-lock.js';

const SCOPES = new Set(['master', 'coordinator', 'segment_host', 'segment']);

interface HookArgs {
  configPath: string;
  localDir: string;
  scope: string;
}

/** The content ID arrives as `"-1"` (quotes included, after bash re-parsing) or `-1`: both quotes or none. */
export function parseContentId(raw: string): number {
  const m = /^(?:(-?\d+)|"(-?\d+)")$/.exec(raw.trim());
  if (!m) throw new UsageError(`content ID must be a number such as -1 or "3", got ${raw}`);
  return Number(m[1] ?? m[2]);
}

function parseHookArgs(name: string, args: string[]): HookArgs | undefined {
  const [configPath, localDir, scope, contentId] = args;
  if (contentId !== undefined) parseContentId(contentId);
  if (!SCOPES.has(scope)) {
    // Forward compatible, as the Go plugin: an unknown scope is a no-op.
    log.warn(`${name}: unknown scope "${scope}", nothing to do`);
    return undefined;
  }
  return { configPath, localDir, scope };
}

/**
 * The backup's own report object, `<folder>/backups/<D>/<TS>/gpbackup_<TS>_report`, which the
 * Go plugin's setup writes empty and gpbackup replaces with the real report at the end: the
 * one object setup may leave, so it needs no s3:DeleteObject. Named as the Go plugin names it,
 * from the local directory's last component, whatever the directory.
 */
export function reportKey(folder: string, localDir: string, hook: string): string {
  const dir = localDir.replace(/\/+$/, '');
  try {
    return keyForPath(folder, `${dir}/gpbackup_${basename(dir)}_report`);
  } catch (err) {
    throw new PluginError(`${hook}: local backup directory "${localDir}": ${describeError(err)}`);
  }
}

/** A multipart probe beside the report object, unique per process; it is aborted, so it leaves nothing. */
function multipartProbeKey(report: string): string {
  return `${report.slice(0, report.lastIndexOf('/') + 1)}${PROBE_NAME_PREFIX}${process.pid}_${Date.now()}_multipart`;
}

/** What each request of the checks does, and the IAM action it needs. */
const STEPS = {
  put: { doing: 'write objects', action: 's3:PutObject' },
  get: { doing: 'read objects', action: 's3:GetObject' },
  head: { doing: 'read objects', action: 's3:GetObject' },
  list: { doing: 'list objects', action: 's3:ListBucket' },
  create: { doing: 'start multipart uploads', action: 's3:PutObject (multipart upload)' },
  part: { doing: 'upload parts', action: 's3:PutObject (multipart upload)' },
  abort: { doing: 'abort multipart uploads', action: 's3:AbortMultipartUpload' },
} as const;

type Step = keyof typeof STEPS;

/** A check that failed at `step`; `cause` is what the store threw. */
class StepFailed extends Error {
  constructor(readonly step: Step, override readonly cause: unknown) {
    super(describeError(cause));
  }
}

/** `<hook>: cannot <what the step does> under s3://bucket/folder/: <reason>`. */
function stepFailure(hook: string, bucket: string, folder: string, failed: StepFailed, notes: string[] = []): PluginError {
  const head = `${hook}: cannot ${STEPS[failed.step].doing} under ${s3Url(bucket, `${folder}/`)}: ${reason(failed.cause, bucket, failed.step)}`;
  return new PluginError([head, ...notes].join('; '));
}

async function attempt<T>(step: Step, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw new StepFailed(step, err);
  }
}

/**
 * Why a request failed, for a DBA: a missing bucket, the IAM action that
 * AccessDenied implies, or the store's own message. Other 403s
 * (SignatureDoesNotMatch, InvalidAccessKeyId) are not about permissions and
 * keep their own message.
 */
function reason(err: unknown, bucket: string, step: Step): string {
  const { status, code } = err as { status?: number; code?: string };
  if (code === 'NoSuchBucket') return `bucket "${bucket}" does not exist`;
  if (code === 'AccessDenied' || (status === 403 && !code)) {
    // S3's own words when they say more than "Access Denied" (a KMS key policy, an explicit deny...).
    const said = /AccessDenied: (.*?) \(HTTP 403\)/.exec(describeError(err))?.[1];
    const detail = said && !/^access denied\.?$/i.test(said) ? ` (the server says: ${said})` : '';
    return `AccessDenied${status ? ` (HTTP ${status})` : ''}: the credentials need ${STEPS[step].action}${detail}`;
  }
  return describeError(err);
}

/** The first `length` bytes of an object, and its CRC-32 if the answer carried it. */
async function readStart(store: ObjectStore, key: string, length: number, signal?: AbortSignal): Promise<{ bytes: Buffer; crc32?: number }> {
  const r = await store.getRange(key, 0, length, signal);
  // An empty object's body may already be closed by the store: nothing to read.
  if (r.length === 0) {
    r.body.destroy();
    return { bytes: Buffer.alloc(0), crc32: r.crc32 };
  }
  const chunks: Buffer[] = [];
  for await (const chunk of r.body) chunks.push(chunk as Buffer);
  return { bytes: Buffer.concat(chunks), crc32: r.crc32 };
}

/** What the coordinator's check cannot prove without leaving or deleting objects; said in the log. */
export const UNPROVEN =
  's3:DeleteObject (not tried: setup deletes nothing; only delete_backup and delete_directory need it, ' +
  'so a backup role may go without, see docs/iam.md) and CompleteMultipartUpload (an s3:PutObject request, ' +
  'not tried because it would leave an object)';

/**
 * The coordinator's check before a backup, with the configured credentials, needing no delete:
 * the backup's empty report object is written (as the Go plugin's setup writes it; gpbackup
 * replaces it at the end), its size read back and the listing shown to hold it; then a
 * multipart upload is started, a part uploaded and the upload aborted, which leaves nothing.
 * The message of a failure names the request that failed, the IAM action an AccessDenied
 * implies, and an upload that could not be aborted. Six requests, once per backup.
 */
export async function backupPreflight(store: ObjectStore, hook: string, folder: string, report: string, signal?: AbortSignal): Promise<void> {
  const { bucket } = store;
  const empty = Buffer.alloc(0);
  const multipart = multipartProbeKey(report);
  const body = Buffer.from(`gpbackup_s3_plugin preflight probe ${basename(multipart)}\n`);
  let upload: string | undefined;
  try {
    await attempt('put', () => store.putObject(report, empty, crc32(empty), signal));
    await attempt('head', async () => {
      const head = await store.headObject(report);
      if (head === undefined) throw new PluginError(`${s3Url(bucket, report)} is not there, written just before`);
      if (head.size !== 0) throw new PluginError(`${s3Url(bucket, report)} reads back as ${head.size} bytes, written empty`);
    });
    await attempt('list', async () => {
      for await (const o of store.listObjects(report)) if (o.key === report) return;
      throw new PluginError(`the listing does not show ${s3Url(bucket, report)}, written just before`);
    });
    upload = await attempt('create', () => store.createMultipartUpload(multipart));
    const uploadId = upload;
    await attempt('part', () => store.uploadPart(multipart, uploadId, 1, body, crc32(body), signal));
    await attempt('abort', () => store.abortMultipartUpload(multipart, uploadId));
  } catch (err) {
    if (!(err instanceof StepFailed)) throw err;
    const notes: string[] = [];
    if (err.step === 'abort') {
      notes.push(`left behind: the multipart upload of ${s3Url(bucket, multipart)}`);
    } else if (upload !== undefined) {
      await store.abortMultipartUpload(multipart, upload).catch((abortErr: unknown) => {
        notes.push(`the multipart upload of ${s3Url(bucket, multipart)} could not be aborted: ${reason(abortErr, bucket, 'abort')}`);
      });
    }
    throw stepFailure(hook, bucket, folder, err, notes);
  }
}

/** A segment host's check: the backup's empty report object written, as the Go plugin's setup does on every host; nothing to delete. */
export async function backupWriteCheck(store: ObjectStore, hook: string, folder: string, report: string, signal?: AbortSignal): Promise<void> {
  const empty = Buffer.alloc(0);
  try {
    await attempt('put', () => store.putObject(report, empty, crc32(empty), signal));
  } catch (err) {
    throw err instanceof StepFailed ? stepFailure(hook, store.bucket, folder, err) : err;
  }
}

/** Before a restore: the folder can be listed and, if it holds an object, one byte of it read. Two requests. */
export async function restoreCheck(store: ObjectStore, hook: string, folder: string, signal?: AbortSignal): Promise<void> {
  const { bucket } = store;
  try {
    const first = await attempt('list', async () => {
      for await (const o of store.listObjects(`${folder}/`)) return o.key;
      return undefined;
    });
    if (first !== undefined) {
      await attempt('get', () =>
        readStart(store, first, 1, signal).catch((err: unknown) => {
          // Deleted since it was listed: the listing already proved the folder is there.
          if ((err as { code?: string }).code !== 'NoSuchKey') throw err;
        }),
      );
    }
  } catch (err) {
    throw err instanceof StepFailed ? stepFailure(hook, bucket, folder, err) : err;
  }
}

/**
 * Before any data moves, the coordinator proves with the configured
 * credentials every kind of request a backup makes, short of a delete
 * (backupPreflight); each segment host proves it reaches the endpoint and can
 * write. Both write only the backup's empty report object, as the Go plugin
 * does. A segment is covered by its host's check.
 */
export async function setupForBackup(args: string[]): Promise<void> {
  const name = 'setup_plugin_for_backup';
  const hook = parseHookArgs(name, args);
  if (!hook) return;
  if (hook.scope === 'segment') {
    readConfig(hook.configPath);
    return;
  }
  const isCoordinator = hook.scope === 'master' || hook.scope === 'coordinator';
  const { config, store, signal } = await openContext(hook.configPath, () => 1, isCoordinator);
  const report = reportKey(config.folder, hook.localDir, name);
  const folderUrl = s3Url(config.bucket, `${config.folder}/`);
  if (hook.scope === 'segment_host') {
    await backupWriteCheck(store, name, config.folder, report, signal);
    log.info(`${name} (${hook.scope}): ${folderUrl} is writable (wrote the empty report object ${s3Url(config.bucket, report)})`);
  } else {
    await checkObjectLockForBackup(config, store, name);
    await backupPreflight(store, name, config.folder, report, signal);
    log.info(
      `${name} (${hook.scope}): ${folderUrl} takes writes, reads, listings and multipart uploads (started, a part uploaded, aborted); ` +
        `wrote the empty report object ${s3Url(config.bucket, report)}, which gpbackup replaces`,
    );
    log.info(`${name} (${hook.scope}): not proven: ${UNPROVEN}`);
  }
}

/** Coordinator and segment hosts prove the folder can be listed and read before the restore starts. */
export async function setupForRestore(args: string[]): Promise<void> {
  const name = 'setup_plugin_for_restore';
  const hook = parseHookArgs(name, args);
  if (!hook) return;
  if (hook.scope === 'segment') {
    readConfig(hook.configPath);
    return;
  }
  const isCoordinator = hook.scope === 'master' || hook.scope === 'coordinator';
  const { config, store, signal } = await openContext(hook.configPath, () => 1, isCoordinator);
  await restoreCheck(store, name, config.folder, signal);
  log.info(`${name} (${hook.scope}): ${s3Url(config.bucket, `${config.folder}/`)} can be listed and read`);
}

/** Nothing is left behind by setup, so cleanup has nothing to do; it does not even read the config. */
export async function cleanup(args: string[]): Promise<void> {
  parseHookArgs('cleanup_plugin', args);
}

/** `backups/<YYYYMMDD>/<timestamp>/` when the local dir names a backup's directory. */
function backupDirOf(localDir: string): string | undefined {
  const [ts, day] = [basename(localDir), basename(localDir.replace(/\/+[^/]*\/*$/, ''))];
  return /^\d{14}$/.test(ts) && /^\d{8}$/.test(day) && ts.startsWith(day) ? `backups/${day}/${ts}/` : undefined;
}

/**
 * The coordinator's cleanup after a backup aborts the multipart uploads of that backup begun
 * before the cleanup started: every backup_data has ended by then, so an upload still open was
 * left by one that was killed. Best effort for a config that cannot be read (gpbackup only warns
 * about a failed cleanup): that is logged, and nothing is done. Other scopes do nothing.
 */
export async function cleanupForBackup(args: string[]): Promise<void> {
  const name = 'cleanup_plugin_for_backup';
  const started = new Date();
  const hook = parseHookArgs(name, args);
  if (!hook || !(hook.scope === 'master' || hook.scope === 'coordinator')) return;
  const dir = backupDirOf(hook.localDir);
  if (dir === undefined) {
    log.verbose(`${name}: ${hook.localDir} names no backup directory (backups/<YYYYMMDD>/<timestamp>): nothing to clean up`);
    return;
  }
  let context: Awaited<ReturnType<typeof openContext>>;
  try {
    context = await openContext(hook.configPath, () => 1);
  } catch (err) {
    log.warn(`${name}: unfinished multipart uploads of the backup are not looked for: ${describeError(err)}`);
    return;
  }
  const prefix = `${context.config.folder}/${dir}`;
  const aborted = await abortUploadsUnder(context.store, prefix, name, started);
  log.info(`${name}: aborted ${aborted} unfinished multipart upload(s) under ${s3Url(context.store.bucket, prefix)}`);
}
