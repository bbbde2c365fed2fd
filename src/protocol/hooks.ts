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
import { s3Url } from '../storage/keys.js';
import { openContext, readConfig } from './context.js';
import { PluginError, UsageError } from './errors.js';

const SCOPES = new Set(['master', 'coordinator', 'segment_host', 'segment']);

interface HookArgs {
  configPath: string;
  localDir: string;
  scope: string;
}

/** The content ID arrives as `"-1"` (quotes included, after bash re-parsing) or `-1`. */
export function parseContentId(raw: string): number {
  const m = /^"?(-?\d+)"?$/.exec(raw.trim());
  if (!m) throw new UsageError(`content ID must be a number such as -1 or "3", got ${raw}`);
  return Number(m[1]);
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

/** Probe objects are unique per process, so concurrent hooks never collide. */
function probeKey(folder: string, localDir: string): string {
  const [ts, day] = [basename(localDir), basename(localDir.replace(/\/+[^/]*\/*$/, ''))];
  const dir = /^\d{14}$/.test(ts) && /^\d{8}$/.test(day) ? `backups/${day}/${ts}/` : '';
  return `${folder}/${dir}.gpbackup_s3_plugin_probe_${process.pid}_${Date.now()}`;
}

/**
 * Coordinator and segment hosts prove, with the configured credentials, that
 * the bucket and folder take writes (and that this host reaches the endpoint)
 * before any data moves. A segment is covered by its host's probe.
 */
export async function setupForBackup(args: string[]): Promise<void> {
  const hook = parseHookArgs('setup_plugin_for_backup', args);
  if (!hook) return;
  if (hook.scope === 'segment') {
    readConfig(hook.configPath);
    return;
  }
  const { config, store, signal } = await openContext(hook.configPath, () => 1);
  const key = probeKey(config.folder, hook.localDir);
  try {
    await store.putObject(key, Buffer.alloc(0), signal);
  } catch (err) {
    throw new PluginError(
      `setup_plugin_for_backup: cannot write to bucket "${config.bucket}" folder "${config.folder}": ${(err as Error).message}`,
    );
  }
  const failures = await store.deleteObjects([key]).catch((err: Error) => [{ key, message: err.message }]);
  for (const f of failures) log.warn(`setup_plugin_for_backup: could not remove probe object ${s3Url(config.bucket, f.key)}: ${f.message}`);
  log.info(`setup_plugin_for_backup (${hook.scope}): ${s3Url(config.bucket, config.folder + '/')} is writable`);
}

/** Coordinator and segment hosts prove the folder can be listed (and so read) before the restore starts. */
export async function setupForRestore(args: string[]): Promise<void> {
  const hook = parseHookArgs('setup_plugin_for_restore', args);
  if (!hook) return;
  if (hook.scope === 'segment') {
    readConfig(hook.configPath);
    return;
  }
  const { config, store } = await openContext(hook.configPath, () => 1);
  try {
    for await (const _ of store.listObjects(`${config.folder}/`)) break;
  } catch (err) {
    throw new PluginError(
      `setup_plugin_for_restore: cannot read bucket "${config.bucket}" folder "${config.folder}": ${(err as Error).message}`,
    );
  }
  log.info(`setup_plugin_for_restore (${hook.scope}): ${s3Url(config.bucket, config.folder + '/')} is readable`);
}

/** Nothing is left behind by setup, so cleanup has nothing to do; it does not even read the config. */
export async function cleanup(args: string[]): Promise<void> {
  parseHookArgs('cleanup_plugin', args);
}
