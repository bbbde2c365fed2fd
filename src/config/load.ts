/**
 * Reads and checks the plugin config file (the per-host copy gpbackup writes to /tmp, or the
 * user's own file for delete_backup) and returns the plugin's settings.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError, PluginError } from '../protocol/errors.js';
import { resolveConfig } from './resolve.js';
import type { PluginConfig } from './types.js';
import { findProblems } from './validate.js';
import { parseYaml } from './yaml.js';

const MAX_CONFIG_BYTES = 1024 * 1024;

export function loadConfig(path: string): PluginConfig {
  let text: string;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw new PluginError(`reading plugin config ${path}: it is a directory`);
    if (stat.size > MAX_CONFIG_BYTES) throw tooLarge(path);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof PluginError) throw err;
    throw new PluginError(`reading plugin config ${path}: ${reason(err)}`);
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, path: string): PluginConfig {
  if (Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) throw tooLarge(path);
  const { doc, lines, problems } = parseYaml(text);
  if (doc === undefined && problems.length > 0) throw new ConfigError(path, problems.map(p => p.text));
  if (doc === undefined || doc === null) throw new PluginError(`plugin config ${path} is empty`);
  if (!isMapping(doc)) {
    throw new PluginError(`plugin config ${path} is not a YAML mapping: it must hold the keys executablepath and options`);
  }

  // `key:` with nothing after it reads as null: treat it as empty text, as gpbackup does.
  if (doc.executablepath === null) doc.executablepath = '';
  if (doc.options === null) doc.options = {};
  if (isMapping(doc.options)) {
    for (const [k, v] of Object.entries(doc.options)) if (v === null) doc.options[k] = '';
  }

  problems.push(...findProblems(doc, lines));
  const skip = new Set(problems.flatMap(p => (p.option ? [p.option] : [])));
  const resolved = resolveConfig(doc, lines, path, skip);
  problems.push(...resolved.problems);
  if (problems.length > 0) {
    // Problems without a line (missing options) first, then in file order.
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(path, problems.map(p => p.text));
  }
  return resolved.config;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function tooLarge(path: string): PluginError {
  return new PluginError(`plugin config ${path} is larger than 1 MiB: is it the right file?`);
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      // Node's text starts with the code and ends with the call: "EIO: i/o error, read".
      return (err instanceof Error ? err.message : String(err)).replace(/^[A-Z]+: /, '').replace(/, \w+( '.*')?$/, '');
  }
}
