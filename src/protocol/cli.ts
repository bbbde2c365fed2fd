/**
 * The command line as gpbackup, gprestore and gpbackup_helper use it:
 * `<plugin> <command> [args...]`, positional arguments only. A content ID of
 * `-1` is an argument, never a flag.
 */
import { writeSync } from 'node:fs';
import { describeError, PluginError } from '../errors.js';
import { EXIT_OK, UsageError } from './errors.js';
import { COMMANDS, type CommandSpec } from './commands.js';
import { log } from '../log/gplog.js';
import { ReaderClosedError } from '../storage/sink.js';

declare const __PLUGIN_VERSION__: string;

/** The plugin API this plugin speaks (list_directory and delete_directory arrived in 0.5.0). */
export const PLUGIN_API_VERSION = '0.5.0';
export const PLUGIN_VERSION = typeof __PLUGIN_VERSION__ === 'string' ? __PLUGIN_VERSION__ : '0.0.0-dev';

export function usage(): string {
  const lines = [
    'gpbackup_s3_plugin: the S3 storage plugin for gpbackup and gprestore.',
    'It is not a standalone utility: gpbackup and gprestore run it with the config named by --plugin-config.',
    '',
    'Usage: gpbackup_s3_plugin <command> [arguments]',
    '  plugin_api_version',
    '  --version',
  ];
  for (const spec of Object.values(COMMANDS)) if (!spec.byHand) lines.push(`  ${spec.name} ${spec.usage}`);
  lines.push('', 'Commands a DBA runs by hand (gpbackup never calls them; list_backups and verify_backup only read the bucket):');
  for (const spec of Object.values(COMMANDS)) if (spec.byHand) lines.push(`  ${spec.name} ${spec.usage}`);
  return lines.join('\n') + '\n';
}

/**
 * A short answer on stdout, in one write(2): process.stdout is not created (under Bun it adds
 * about 3 MiB to the peak RSS of plugin_api_version, docs/performance.md). A full non-blocking
 * pipe (EAGAIN) gets it through process.stdout, which waits for the pipe.
 */
function printLine(text: string): void {
  const bytes = Buffer.from(text);
  let written = 0;
  try {
    while (written < bytes.length) written += writeSync(1, bytes, written);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    process.stdout.write(bytes.subarray(written));
  }
}

function checkArgCount(spec: CommandSpec, args: string[]): void {
  if (args.length < spec.minArgs || args.length > spec.maxArgs) {
    const expected = spec.minArgs === spec.maxArgs ? `${spec.minArgs}` : `${spec.minArgs} to ${spec.maxArgs}`;
    throw new UsageError(
      `${spec.name} takes ${expected} argument${spec.maxArgs === 1 ? '' : 's'} (${spec.usage}), got ${args.length}`,
    );
  }
}

/** Runs one command; returns the exit code. Errors become one line on stderr. */
export async function runCli(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  try {
    switch (name) {
      case 'plugin_api_version':
        if (args.length) throw new UsageError(`plugin_api_version takes no arguments, got ${args.length}`);
        printLine(`${PLUGIN_API_VERSION}\n`);
        return EXIT_OK;
      case '--version':
        printLine(`gpbackup_s3_plugin version ${PLUGIN_VERSION}\n`);
        return EXIT_OK;
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(usage());
        return EXIT_OK;
      case undefined:
        throw new UsageError('no command given');
    }
    const spec = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!spec) throw new UsageError(`unknown command "${name}"`);
    checkArgCount(spec, args);
    await spec.run(args);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof UsageError) {
      log.fatal(err.message);
      process.stderr.write(usage());
      return err.exitCode;
    }
    if (err instanceof ReaderClosedError) {
      // Not alarming (gpbackup_helper closes the pipe on purpose once it has its tables), and yet
      // not a success: the stream was not delivered whole.
      log.notice(`${name}: ${err.message}: stopped, exit 1 (every byte written before was delivered; gpbackup_helper closes the pipe on purpose in a filtered restore)`);
      return 1;
    }
    // Every failure's line names the command, once.
    const message = describeError(err);
    const prefix = name && !message.startsWith(`${name}:`) && !message.startsWith(`${name} `) ? `${name}: ` : '';
    log.fatal(prefix + message);
    return err instanceof PluginError ? err.exitCode : 1;
  }
}
