/**
 * What every S3 command starts with: the config, the logger set up from it,
 * the store, and a signal that fires on SIGTERM/SIGINT.
 */
import { loadConfig } from '../config/load.js';
import type { PluginConfig } from '../config/types.js';
import { log } from '../log/gplog.js';
import type { ObjectStore } from '../storage/store.js';
import { PluginError } from './errors.js';

export interface CommandContext {
  config: PluginConfig;
  store: ObjectStore;
  signal: AbortSignal;
}

const interrupt = new AbortController();
let handlersInstalled = false;

/** Aborts transfers on SIGTERM/SIGINT/SIGHUP; a second signal exits at once. */
export function interruptSignal(): AbortSignal {
  if (!handlersInstalled) {
    handlersInstalled = true;
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.on(sig, () => {
        if (interrupt.signal.aborted) process.exit(1);
        interrupt.abort(new PluginError(`interrupted by ${sig}`));
      });
    }
  }
  return interrupt.signal;
}

/**
 * `warnIfExposed`: log a warning if the file holds a secret others can read. Only the commands
 * that run once per backup or by hand ask: gpbackup writes its per-host copies with mode 0644,
 * and the data commands run once per table per segment.
 */
export function readConfig(configPath: string, warnIfExposed = false): PluginConfig {
  const config = loadConfig(configPath, warnIfExposed ? log : { warn: () => {} });
  log.addSecret(config.secretAccessKey);
  log.addSecret(config.sessionToken);
  log.setVerbosity(config.loggerVerbosity);
  for (const warning of config.warnings) log.warn(`plugin config ${configPath}: ${warning}`);
  return config;
}

export async function openContext(
  configPath: string,
  concurrency: (c: PluginConfig) => number,
  warnIfExposed = false,
): Promise<CommandContext> {
  const config = readConfig(configPath, warnIfExposed);
  const { createS3Store } = await import('../storage/s3/client.js');
  const store = await createS3Store(config, concurrency(config) + 2);
  return { config, store, signal: interruptSignal() };
}
