/**
 * Errors of the command line itself; the errors every layer raises are in src/errors.ts.
 */
import { PluginError } from '../errors.js';

/** Exit codes: 0 for success, 2 for misuse of the command line (1, any other failure, is src/errors.ts'). */
export const EXIT_OK = 0;
export const EXIT_USAGE = 2;

/** Wrong command or argument count: the usage text goes with it. */
export class UsageError extends PluginError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
}
