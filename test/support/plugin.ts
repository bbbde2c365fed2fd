/**
 * Runs the built plugin executable the way gpbackup does: a separate process,
 * arguments as argv, data through real pipes. Each test environment has its
 * own HOME, so the plugin's log (~/gpAdminLogs) can be read back.
 *
 * Secrets never leak unnoticed: every process run here has its stderr (and its
 * stdout, unless that is restored data) searched for every registered secret,
 * and PluginEnv.cleanup() searches every log file under its HOME. The test key
 * pair's secret is registered from the start; so is every secret key and
 * session token a test writes into a config with writeConfig.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { TEST_SECRET_KEY } from './s3server.js';

export { patternBytes } from './pattern.mjs';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const PLUGIN_BIN = process.env.PLUGIN_BIN ?? join(PROJECT_ROOT, 'dist/gpbackup_s3_plugin');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  stdin?: Buffer | string | Readable;
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}

/** Options as a config file holds them; every value a string, as gpbackup writes them. */
export type Options = Record<string, string>;

/** Secrets no process output or log may contain, by the name a finding reports (never the value). */
const secrets = new Map<string, string>();

/** Shorter values could turn up in output by chance. */
const MIN_SECRET_LENGTH = 8;

/**
 * Adds a secret to search every later process's output and every log for, under a name
 * that a finding reports (a secret registered again keeps its first name). The value is
 * also searched in its URL-encoded form.
 */
export function registerSecret(value: string, name = 'a registered secret'): void {
  if (value.length < MIN_SECRET_LENGTH) throw new Error(`registerSecret: ${name} is shorter than ${MIN_SECRET_LENGTH} characters`);
  if (!secrets.has(value)) secrets.set(value, name);
}

registerSecret(TEST_SECRET_KEY, 'TEST_SECRET_KEY');

/** Options whose values writeConfig registers as secrets. */
const SECRET_OPTIONS = ['aws_secret_access_key', 'aws_session_token'];
/** Options holding a URL whose userinfo password (http://KEY:SECRET@host) writeConfig registers as a secret. */
const URL_OPTIONS = ['endpoint', 'http_proxy'];

/** The password of a URL's userinfo (or a lone user name), decoded, if any. */
function userinfoSecret(url: string): string | undefined {
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url.trim())?.[1];
  if (!userinfo) return undefined;
  const secret = userinfo.includes(':') ? userinfo.slice(userinfo.indexOf(':') + 1) : userinfo;
  try {
    return decodeURIComponent(secret);
  } catch {
    return secret;
  }
}

/** The names of the registered secrets found in `text`. */
export function secretsIn(text: string | Buffer): string[] {
  const found: string[] = [];
  for (const [value, name] of secrets) {
    const encoded = encodeURIComponent(value);
    if (text.includes(value) || (encoded !== value && text.includes(encoded))) found.push(name);
  }
  return found;
}

/** Commands whose stdout is restored data, which is not searched (it is the data itself). */
const DATA_ON_STDOUT = new Set(['restore_data', 'restore_data_subset']);

/** An error naming the command and the secrets its output showed, or undefined. */
function leakIn(bin: string, args: string[], result: RunResult): Error | undefined {
  const where: string[] = [];
  const onStderr = secretsIn(result.stderr);
  if (onStderr.length) where.push(`${onStderr.join(', ')} on stderr`);
  if (!DATA_ON_STDOUT.has(args[0] ?? '')) {
    const onStdout = secretsIn(result.stdout);
    if (onStdout.length) where.push(`${onStdout.join(', ')} on stdout`);
  }
  if (where.length === 0) return undefined;
  // The command is named by its first argument too, with any secret in it shown by name.
  const command = [basename(bin), ...args.slice(0, 1)].join(' ');
  return new Error(`secret leaked: \`${masked(command)}\` printed ${where.join(' and ')}`);
}

/** `text` with every registered secret replaced by <its name>. */
function masked(text: string): string {
  let out = text;
  for (const [value, name] of secrets) out = out.split(value).join(`<${name}>`);
  return out;
}

export function toYaml(executablePath: string, options: Options): string {
  const lines = [`executablepath: ${executablePath}`, 'options:'];
  for (const [k, v] of Object.entries(options)) lines.push(`  ${k}: ${JSON.stringify(v)}`);
  return lines.join('\n') + '\n';
}

/** The key the plugin stores a backup's file at, as the Go plugin does: <folder>/backups/<D>/<TS>/<file>; without a file, the backup's prefix. */
export function backupKey(folder: string, timestamp: string, file = ''): string {
  return `${folder}/backups/${timestamp.slice(0, 8)}/${timestamp}/${file}`;
}

export class PluginEnv {
  readonly root: string;
  readonly home: string;

  constructor(readonly bin: string = PLUGIN_BIN) {
    this.root = mkdtempSync(join(tmpdir(), 'gpb-s3-test-'));
    this.home = join(this.root, 'home');
    mkdirSync(this.home);
  }

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  /** Writes a file (creating its directory) and returns its path. */
  writeFile(rel: string, content: Buffer | string): string {
    const p = this.path(rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
    return p;
  }

  /**
   * Writes a config file; its secret key and session token, and the password in the endpoint's
   * or http_proxy's URL, become registered secrets.
   */
  writeConfig(options: Options, name = 'config.yaml'): string {
    for (const option of SECRET_OPTIONS) {
      const value = options[option];
      if (value !== undefined && value.length >= MIN_SECRET_LENGTH) registerSecret(value, option);
    }
    for (const option of URL_OPTIONS) {
      const secret = options[option] === undefined ? undefined : userinfoSecret(options[option]);
      if (secret !== undefined && secret.length >= MIN_SECRET_LENGTH) registerSecret(secret, `${option} userinfo password`);
    }
    return this.writeFile(name, toYaml(this.bin, options));
  }

  /** A local path as gpbackup hands it to the plugin: <datadir>/backups/<D>/<TS>/<file> (its key: backupKey). */
  backupPath(timestamp: string, file: string, dataDir = 'data/gpseg0'): string {
    return this.path(dataDir, 'backups', timestamp.slice(0, 8), timestamp, file);
  }

  run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return runProcess(this.bin, args, {
      ...opts,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.home, USER: 'gpadmin', ...opts.env },
    });
  }

  /** Every line the plugin logged under this HOME. */
  logText(): string {
    const dir = join(this.home, 'gpAdminLogs');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return '';
    }
    return names.map(n => readFileSync(join(dir, n), 'utf8')).join('');
  }

  /** Removes the environment; throws, naming the file, if a log file under HOME holds a secret. */
  cleanup(): void {
    try {
      const leaks = logFiles(this.home).flatMap(file => {
        const found = secretsIn(readFileSync(file));
        return found.length ? [`${found.join(', ')} in ${file.slice(this.home.length + 1)}`] : [];
      });
      if (leaks.length) throw new Error(`secret leaked into the plugin's log under HOME: ${leaks.join('; ')}`);
    } finally {
      rmSync(this.root, { recursive: true, force: true });
    }
  }
}

/** Every file under ~/gpAdminLogs, and every *.log file anywhere under `home`. */
function logFiles(home: string): string[] {
  const files: string[] = [];
  if (!existsSync(home)) return files;
  const walk = (dir: string, inLogDir: boolean) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, inLogDir || (dir === home && entry.name === 'gpAdminLogs'));
      else if (entry.isFile() && (inLogDir || entry.name.endsWith('.log'))) files.push(path);
    }
  };
  walk(home, false);
  return files;
}

/**
 * Runs a process to its end. It rejects if the process's stderr, or its stdout when that is not
 * restored data, holds a registered secret.
 */
export function runProcess(bin: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { env: opts.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout: Buffer.concat(out), stderr: err };
      const leak = leakIn(bin, args, result);
      if (leak) reject(leak);
      else resolvePromise(result);
    });
    child.stdin.on('error', () => {}); // the plugin may exit before reading all input
    const input = opts.stdin;
    if (input === undefined) child.stdin.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
  });
}
