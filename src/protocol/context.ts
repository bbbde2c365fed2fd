/**
 * What every S3 command starts with: the config, the logger set up from it,
 * the store, and a signal that fires on SIGTERM/SIGINT.
 */
import { loadConfig } from '../config/load.js';
import type { PluginConfig } from '../config/types.js';
import { log } from '../log/gplog.js';
import type { ObjectStore } from '../storage/store.js';
import { uploadsInProgress } from '../storage/upload.js';
import { PluginError } from '../errors.js';

export interface CommandContext {
  config: PluginConfig;
  store: ObjectStore;
  signal: AbortSignal;
}

const interrupt = new AbortController();
let handlersInstalled = false;

/**
 * How long after a signal the process may still run: transfers stop at once, a multipart upload
 * gets one abort request of at most 2 s (upload.ts), and then the process exits whatever the
 * server does.
 */
export const SIGNAL_EXIT_MS = 4_000;

/** Aborts transfers on SIGTERM/SIGINT/SIGHUP, and exits SIGNAL_EXIT_MS later if still running; a second signal exits at once. */
export function interruptSignal(): AbortSignal {
  if (!handlersInstalled) {
    handlersInstalled = true;
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.on(sig, () => {
        if (interrupt.signal.aborted) exitInterrupted(sig, 'a second signal');
        interrupt.abort(new PluginError(`interrupted by ${sig}`));
        setTimeout(() => exitInterrupted(sig, `still running ${SIGNAL_EXIT_MS / 1000} s later`), SIGNAL_EXIT_MS).unref();
      });
    }
  }
  return interrupt.signal;
}

/** Ends the process now, saying in the log which multipart uploads are left behind. */
function exitInterrupted(sig: string, why: string): never {
  for (const [uploadId, url] of uploadsInProgress) {
    log.warn(`multipart upload ${uploadId} of ${url} is left behind (not aborted before exit): delete_backup of its backup, or a lifecycle rule, removes it`);
  }
  log.fatal(`interrupted by ${sig}: exiting (${why})`);
  log.close();
  process.exit(1);
}

/** The secrets a URL's userinfo (http://KEY:SECRET@host) holds: the password, or a lone user name, as written and decoded. */
function urlSecrets(url: string | undefined): string[] {
  const userinfo = url === undefined ? undefined : /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url.trim())?.[1];
  if (!userinfo) return [];
  const colon = userinfo.indexOf(':');
  const secret = colon >= 0 ? userinfo.slice(colon + 1) : userinfo;
  let decoded = secret;
  try {
    decoded = decodeURIComponent(secret);
  } catch {
    // not percent-encoded
  }
  return [userinfo, secret, decoded];
}

/**
 * `warnIfExposed`: log a warning if the file holds a secret others can read. Only the commands
 * that run once per backup or by hand ask: gpbackup writes its per-host copies with mode 0644,
 * and the data commands run once per table per segment.
 */
export function readConfig(configPath: string, warnIfExposed = false): PluginConfig {
  // The environment's secrets first: a config error must not print them either.
  log.addSecret(process.env.AWS_SECRET_ACCESS_KEY);
  log.addSecret(process.env.AWS_SESSION_TOKEN);
  const config = loadConfig(configPath, warnIfExposed ? log : { warn: () => {} });
  log.addSecret(config.secretAccessKey);
  log.addSecret(config.sessionToken);
  for (const secret of [...urlSecrets(config.endpoint), ...urlSecrets(config.httpProxy)]) log.addSecret(secret);
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
