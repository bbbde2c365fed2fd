/**
 * Reads and checks the plugin config file (the per-host copy gpbackup writes to /tmp, or the
 * user's own file for delete_backup) and returns the plugin's settings.
 */
import { readFileSync, statSync } from 'node:fs';
import { fileErrorReason, readRegularFile } from './regular-file.js';
import { log, type Logger } from '../log/gplog.js';
import { PluginError } from '../errors.js';
import { ConfigError } from './errors.js';
import { readEncryptionKeys } from './encryption-keys.js';
import { resolveConfig } from './resolve.js';
import type { PluginConfig } from './types.js';
import { findProblems, optionAt } from './validate.js';
import { type KeyLines, parseYaml, type Problem } from './yaml.js';

const MAX_CONFIG_BYTES = 1024 * 1024;
/** Far above any real bundle (the Mozilla set is about 220 KB), far below trouble. */
const MAX_CA_BUNDLE_BYTES = 16 * 1024 * 1024;

/** `logger` gets the warning about a config file with a secret that others can read. */
export function loadConfig(path: string, logger: Pick<Logger, 'warn'> = log): PluginConfig {
  const { bytes, stat } = readRegularFile(path, MAX_CONFIG_BYTES, `reading plugin config ${path}`, tooLarge(path).message);
  const config = parseConfigText(bytes.toString('utf8'), path);
  warnIfSecretExposed(config, path, stat.mode, logger);
  return config;
}

/**
 * A warning, not a failure: gpbackup itself writes its per-host copies in /tmp with mode 0644
 * (gp-common-go-libs opens them so), whatever the mode of the user's file.
 */
function warnIfSecretExposed(config: PluginConfig, path: string, mode: number, logger: Pick<Logger, 'warn'>): void {
  if ((mode & 0o044) === 0) return;
  const held = [config.secretAccessKey && 'aws_secret_access_key', config.sessionToken && 'aws_session_token'].filter(Boolean);
  if (held.length === 0) return;
  const octal = (mode & 0o7777).toString(8).padStart(4, '0');
  logger.warn(
    `plugin config ${path} holds ${held.join(' and ')} and is readable by group or others (mode ${octal}): ` +
      'run chmod 600 on it; gpbackup writes its per-host copies in /tmp with mode 0644 anyway, so consider aws_profile, ' +
      'the environment or an instance role instead of a key in the file',
  );
}

/** The settings in a config file's text; the file named by ca_bundle is checked here too. */
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
  if (resolved.config.caBundle !== undefined) problems.push(...checkCaBundle(resolved.config.caBundle, lines));
  if (problems.length === 0) problems.push(...readEncryptionKeys(resolved.config, lines));
  if (problems.length > 0) {
    // Problems without a line (missing options) first, then in file order.
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(path, problems.map(p => p.text));
  }
  return resolved.config;
}

/** The CA bundle must be there now: a TLS failure on the first request would say far less. */
function checkCaBundle(file: string, lines: KeyLines): Problem[] {
  const problem = (text: string): Problem[] => [
    { text: `${optionAt('ca_bundle', lines)}: ${text}`, line: lines.options.get('ca_bundle'), option: 'ca_bundle' },
  ];
  let pem: string;
  try {
    const stat = statSync(file);
    if (stat.isDirectory()) return problem(`cannot read ${file}: it is a directory`);
    if (!stat.isFile()) return problem(`${file} is not a regular file`);
    if (stat.size > MAX_CA_BUNDLE_BYTES) return problem(`${file} is larger than 16 MiB: is it a CA bundle?`);
    pem = readFileSync(file, 'latin1');
  } catch (err) {
    return problem(`cannot read ${file}: ${fileErrorReason(err)}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    return problem(`${file} holds no PEM certificate (a line -----BEGIN CERTIFICATE-----)`);
  }
  return [];
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function tooLarge(path: string): PluginError {
  return new PluginError(`plugin config ${path} is larger than 1 MiB: is it the right file?`);
}
