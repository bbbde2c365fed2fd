/**
 * Runs the built plugin executable the way gpbackup does: a separate process,
 * arguments as argv, data through real pipes. Each test environment has its
 * own HOME, so the plugin's log (~/gpAdminLogs) can be read back.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

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

export function toYaml(executablePath: string, options: Options): string {
  const lines = [`executablepath: ${executablePath}`, 'options:'];
  for (const [k, v] of Object.entries(options)) lines.push(`  ${k}: ${JSON.stringify(v)}`);
  return lines.join('\n') + '\n';
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

  writeConfig(options: Options, name = 'config.yaml'): string {
    return this.writeFile(name, toYaml(this.bin, options));
  }

  /** A local path as gpbackup hands it to the plugin: <datadir>/backups/<D>/<TS>/<file>. */
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

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

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
      resolvePromise({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.on('error', () => {}); // the plugin may exit before reading all input
    const input = opts.stdin;
    if (input === undefined) child.stdin.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
  });
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function patternBytes(size: number, seed = 1): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  for (; i < size; i++) buf[i] = (x = (x * 1103515245 + 12345) >>> 0) & 0xff;
  return buf;
}
