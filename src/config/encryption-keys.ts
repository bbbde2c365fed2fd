/**
 * The key files of client-side encryption, read when the config is read: a missing or exposed
 * key file is a config problem naming the option, before any byte moves.
 */
import { readKeyFile } from '../storage/encryption/keyfile.js';
import type { PluginConfig } from './types.js';
import { optionAt } from './validate.js';
import type { KeyLines, Problem } from './yaml.js';

/** Fills config.encryptionKey and config.decryptionKeys; returns the problems found. */
export function readEncryptionKeys(config: PluginConfig, lines: KeyLines): Problem[] {
  const problems: Problem[] = [];
  const read = (option: string, file: string) => {
    try {
      return readKeyFile(file);
    } catch (err) {
      problems.push({ text: `${optionAt(option, lines)}: ${(err as Error).message}`, line: lines.options.get(option), option });
      return undefined;
    }
  };
  // The current key is read whenever it is named (a restore with client_side_encryption off still decrypts).
  if (config.encryptionKeyFile !== undefined) {
    config.encryptionKey = read('encryption_key_file', config.encryptionKeyFile);
    if (config.encryptionKey) config.decryptionKeys.push(config.encryptionKey);
  }
  for (const file of config.encryptionOldKeyFiles) {
    const key = read('encryption_old_key_files', file);
    if (key) config.decryptionKeys.push(key);
  }
  return problems;
}
