/**
 * Errors the plugin reports to its caller. Every failure ends as one line on
 * stderr and a non-zero exit code (the plugin protocol's only error channel).
 */

/** Exit codes: 1 for any failed command (as the Go plugin), 2 for misuse of the command line. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure with a message fit for a DBA: what was being done, and on what. */
export class PluginError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT_FAILURE) {
    super(message);
    this.name = 'PluginError';
  }
}

/** Wrong command or argument count: the usage text goes with it. */
export class UsageError extends PluginError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
}

/** One or more config problems, each a line naming the option. */
export class ConfigError extends PluginError {
  constructor(readonly configPath: string, readonly problems: string[]) {
    super(`invalid plugin config ${configPath}: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** The message of anything thrown, on one line. */
export function describeError(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
