/**
 * The error every layer raises for a failure fit for a DBA's eyes, and the exit code it ends
 * with. It lives below protocol, config and storage so that each of them may raise it: every
 * failure ends as one line on stderr and a non-zero exit code (the plugin protocol's only error
 * channel).
 */

/** Exit code of any failed command (as the Go plugin). */
export const EXIT_FAILURE = 1;

/** A failure with a message fit for a DBA: what was being done, and on what. */
export class PluginError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT_FAILURE) {
    super(message);
    this.name = 'PluginError';
  }
}

/** The message of anything thrown, on one line. */
export function describeError(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
