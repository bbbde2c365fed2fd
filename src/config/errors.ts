import { PluginError } from '../errors.js';

/** One or more config problems, each a line naming the option. */
export class ConfigError extends PluginError {
  constructor(readonly configPath: string, readonly problems: string[]) {
    super(`invalid plugin config ${configPath}: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}
