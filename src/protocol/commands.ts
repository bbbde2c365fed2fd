/**
 * The dispatch table: every plugin command, its argument counts, and its
 * handler. Handlers are imported on first use so that `plugin_api_version`
 * and `--version` never load the AWS SDK.
 */
export interface CommandSpec {
  name: string;
  /** A command a DBA runs by hand: gpbackup and gprestore never call it. */
  byHand?: boolean;
  minArgs: number;
  maxArgs: number;
  usage: string;
  run(args: string[]): Promise<void>;
}

const hooks = () => import('./hooks.js');
const files = () => import('./files.js');
const data = () => import('./data.js');
const manage = () => import('./manage.js');
const decryptCommand = () => import('./decrypt.js');
const inventory = () => import('./inventory.js');

const HOOK_USAGE = '<config> <local_backup_dir> <scope> [<content_id>]';

function spec(name: string, minArgs: number, maxArgs: number, usage: string, run: CommandSpec['run'], byHand = false): CommandSpec {
  return { name, minArgs, maxArgs, usage, run, byHand };
}

export const COMMANDS: Record<string, CommandSpec> = Object.fromEntries(
  [
    spec('setup_plugin_for_backup', 3, 4, HOOK_USAGE, async a => (await hooks()).setupForBackup(a)),
    spec('setup_plugin_for_restore', 3, 4, HOOK_USAGE, async a => (await hooks()).setupForRestore(a)),
    spec('cleanup_plugin_for_backup', 3, 4, HOOK_USAGE, async a => (await hooks()).cleanupForBackup(a)),
    spec('cleanup_plugin_for_restore', 3, 4, HOOK_USAGE, async a => (await hooks()).cleanup(a)),
    spec('backup_file', 2, 2, '<config> <local_file>', async a => (await files()).backupFile(a)),
    spec('restore_file', 2, 2, '<config> <local_file>', async a => (await files()).restoreFile(a)),
    spec('backup_data', 2, 2, '<config> <data_file_path>  (data on stdin)', async a => (await data()).backupData(a)),
    spec('restore_data', 2, 2, '<config> <data_file_path>  (data on stdout)', async a => (await data()).restoreData(a)),
    spec('restore_data_subset', 3, 3, '<config> <data_file_path> <offsets_file>', async a =>
      (await data()).restoreDataSubset(a),
    ),
    spec('delete_backup', 2, 2, '<config> <timestamp>', async a => (await manage()).deleteBackup(a)),
    spec('list_directory', 1, 2, '<config> [<path>]', async a => (await manage()).listDirectory(a)),
    spec('delete_directory', 2, 2, '<config> <path>', async a => (await manage()).deleteDirectory(a)),
    spec('prune', 1, 3, '<config> [--grace <duration>]', async a => (await manage()).pruneChunks(a), true),
    spec(
      'decrypt',
      2,
      16,
      '--key-file <file> [--key-file <older_file> ...]  (object on stdin, plaintext on stdout)',
      async a => (await decryptCommand()).decrypt(a),
      true,
    ),
    spec('list_backups', 1, 2, '<config> [--json]', async a => (await inventory()).listBackups(a), true),
    spec('verify_backup', 2, 4, '<config> <timestamp> [--deep] [--json]', async a => (await inventory()).verifyBackup(a), true),
  ].map(s => [s.name, s]),
);
