/**
 * A throwaway Greenplum 6 cluster (1 coordinator, 2 primaries, no mirrors) with the real gpbackup,
 * gprestore and gpbackup_helper, for the end-to-end tier (test/e2e). Built from the prebuilt
 * tarballs in ../shared/e2e (its README.md says what they hold) into one temporary directory:
 * GPHOME, gpbackup, the Go plugin and gofakes3, a copy of pyenv's Python 2.7 (Greenplum's
 * management tools need it, and gpadmin cannot read /root), the data directories and an sshd of
 * its own on a free port of 127.0.0.1. Everything runs as the OS user gpadmin (created if
 * missing): Greenplum refuses root, and gpbackup reaches every segment host, this one, over ssh.
 *
 * Every process started is recorded by PID in <dir>/pids.json; stop() stops the cluster with
 * gpstop, kills the rest by PID and removes the directory; if the process exits first (the caller
 * turns SIGINT and SIGTERM into an exit), an 'exit' handler does the same at once (SIGQUIT to each
 * postmaster), from the moment the directory exists. A run that was killed outright
 * leaves its directory behind: the next start removes every such directory whose owner is gone.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SHARED_E2E } from './reference.js';

export { SHARED_E2E };

const run = promisify(execFile);

export const TARBALLS = ['greenplum-db-6.24.3.tar.xz', 'gpbackup-1.30.6.tar.xz', 'reference.tar.xz'];
const GPHOME_NAME = 'greenplum-db-6.24.3';
const GPBACKUP_NAME = 'gpbackup-1.30.6';
export const OS_USER = 'gpadmin';
const DIR_PREFIX = 'gpb-e2e-';
/** gpadmin's environment file; ~/.bashrc sources it first, so ssh commands get it too. */
const ENV_FILE = '.gpb_e2e_env';
/** Sourced first by gpadmin's ~/.bashrc: our environment for ssh commands and su -c. */
const BASHRC_HOOK = `[ -f ~/${ENV_FILE} ] && . ~/${ENV_FILE}\n`;
const SSH_KEY = 'id_gpb_e2e';
const SSH_CONFIG_MARK = '# written by the e2e tier';

function pyenvPython27(): string | undefined {
  const roots = [process.env.PYENV_ROOT, join(process.env.HOME ?? '/root', '.pyenv')].filter(Boolean) as string[];
  return roots.map(r => join(r, 'versions', '2.7.18')).find(p => existsSync(join(p, 'bin', 'python2.7')));
}

/**
 * What the tier needs and does not find, each with where it comes from; empty when all is there.
 * (The Debian packages come from scripts/system-packages.sh, which `make test` runs.)
 */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  const absent = TARBALLS.filter(t => !existsSync(join(SHARED_E2E, t)));
  if (absent.length > 0) missing.push(`${absent.join(', ')} in ${SHARED_E2E} (the shared e2e fixtures: ../shared/e2e beside the checkout, or GPB_E2E_SHARED=<dir>)`);
  if (!existsSync('/usr/sbin/sshd')) missing.push('/usr/sbin/sshd (Debian package openssh-server: scripts/system-packages.sh)');
  if (!pyenvPython27()) missing.push('Python 2.7.18 under pyenv (pyenv install 2.7.18), for Greenplum\'s management tools');
  if (process.getuid?.() !== 0) missing.push('root (to create the gpadmin user and start sshd)');
  return missing;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

/**
 * `count` consecutive free ports of 127.0.0.1 (Greenplum numbers primaries from a base port), below
 * the kernel's ephemeral range: a port found free there can be taken by an outgoing connection before
 * a postmaster binds it, which then listens on IPv6 only and the coordinator cannot reach it.
 */
async function freePortRun(count: number): Promise<number> {
  const ephemeralStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || 32768;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * (ephemeralStart - 20000 - count));
    const ok = await Promise.all(Array.from({ length: count }, (_, i) => portFree(base + i)));
    if (ok.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise(res => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Record_ {
  owner: number;
  pids: number[];
  dataDirs: string[];
}

function readRecord(dir: string): Record_ | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')) as Record_;
  } catch {
    return undefined;
  }
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops at once everything a cluster directory records (postmasters with SIGQUIT) and removes it. */
function killClusterDirSync(dir: string): void {
  const rec = readRecord(dir);
  if (rec) {
    for (const d of rec.dataDirs) {
      const pid = postmasterPid(d);
      if (pid && alive(pid)) process.kill(pid, 'SIGQUIT');
    }
    for (const pid of rec.pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
  removeEnvFile(dir);
}

/** Directories of earlier runs that were killed before they could clean up. */
function removeAbandoned(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const rec = readRecord(dir);
    if (rec && !alive(rec.owner)) killClusterDirSync(dir);
  }
}

function homeOf(user: string): string {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find(l => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user}`);
  return line.split(':')[5];
}

function removeEnvFile(dir: string): void {
  try {
    const file = join(homeOf(OS_USER), ENV_FILE);
    if (readFileSync(file, 'utf8').includes(dir)) rmSync(file);
  } catch {
    // no user or no file: nothing to remove
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Cluster {
  dir: string;
  gphome: string;
  /** Folder of gpbackup, gprestore, gpbackup_helper, plugin_test.sh, plugin_test_scale.sh. */
  gpbackupDir: string;
  /** Folder of the Go plugin and gofakes3 (reference.tar.xz). */
  referenceDir: string;
  home: string;
  port: number;
  coordinatorDataDir: string;
  /** Runs a bash command as gpadmin with the cluster's environment (a login shell). */
  sh(command: string, opts?: { timeoutMs?: number }): Promise<RunResult>;
  /** psql -At as gpadmin; throws on an error. */
  psql(db: string, sql: string): Promise<string>;
  /** Starts a long-running program as root, recorded for clean-up; resolves to its PID. */
  daemon(cmd: string, args: string[], logName: string): number;
  stop(): Promise<void>;
}

function sh(command: string, env: NodeJS.ProcessEnv, timeoutMs = 600_000): Promise<RunResult> {
  return new Promise(resolve => {
    const child = spawn('su', ['-', OS_USER, '-c', command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function ensureUser(): Promise<string> {
  if (spawnSync('id', [OS_USER]).status !== 0) await run('useradd', ['--create-home', '--shell', '/bin/bash', OS_USER]);
  const home = homeOf(OS_USER);
  // Before Debian's ~/.bashrc returns for non-interactive shells (ssh commands, su -c): our environment.
  const bashrc = join(home, '.bashrc');
  const current = existsSync(bashrc) ? readFileSync(bashrc, 'utf8') : '';
  if (!current.startsWith(BASHRC_HOOK)) writeFileSync(bashrc, BASHRC_HOOK + current);
  return home;
}

/** Takes out of gpadmin's home what ensureUser and setUpSsh put there (the user stays; removeEnvFile takes the environment file). */
function undoUserSetup(home: string): void {
  const bashrc = join(home, '.bashrc');
  const text = existsSync(bashrc) ? readFileSync(bashrc, 'utf8') : '';
  if (text.startsWith(BASHRC_HOOK)) writeFileSync(bashrc, text.slice(BASHRC_HOOK.length));
  const ssh = join(home, '.ssh');
  const ours = (file: string, content: string) => existsSync(join(ssh, file)) && readFileSync(join(ssh, file), 'utf8').startsWith(content);
  const pub = existsSync(join(ssh, `${SSH_KEY}.pub`)) ? readFileSync(join(ssh, `${SSH_KEY}.pub`), 'utf8') : undefined;
  if (pub && ours('authorized_keys', pub)) rmSync(join(ssh, 'authorized_keys'));
  if (ours('config', SSH_CONFIG_MARK)) rmSync(join(ssh, 'config'));
  for (const f of [SSH_KEY, `${SSH_KEY}.pub`]) rmSync(join(ssh, f), { force: true });
}

/** Passwordless ssh for gpadmin to this host's name, localhost and 127.0.0.1, on our sshd's port. */
async function setUpSsh(home: string, dir: string, sshPort: number): Promise<void> {
  const ssh = join(home, '.ssh');
  mkdirSync(ssh, { recursive: true });
  const key = join(ssh, SSH_KEY);
  rmSync(key, { force: true });
  rmSync(`${key}.pub`, { force: true });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  writeFileSync(join(ssh, 'authorized_keys'), readFileSync(`${key}.pub`));
  writeFileSync(
    join(ssh, 'config'),
    `${SSH_CONFIG_MARK} (${dir})\nHost ${hostname()} localhost 127.0.0.1\n  Port ${sshPort}\n  IdentityFile ${key}\n` +
      '  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n',
  );
  await run('chown', ['-R', `${OS_USER}:${OS_USER}`, ssh]);
  chmodSync(ssh, 0o700);
  for (const f of ['authorized_keys', 'config', SSH_KEY]) chmodSync(join(ssh, f), 0o600);
}

/**
 * One cluster at a time on a host: they share gpadmin's ~/.bashrc hook, environment file and ssh
 * config. Waits while the lock's owner lives (another checkout's `make test`); a dead owner's lock is taken over.
 */
async function takeLock(log: (line: string) => void): Promise<void> {
  const lock = join(tmpdir(), `${DIR_PREFIX}lock`);
  let waiting = false;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      process.once('exit', () => rmSync(lock, { force: true }));
      return;
    } catch {
      let owner: number;
      try {
        owner = Number(readFileSync(lock, 'utf8'));
      } catch {
        continue; // released meanwhile
      }
      if (!owner) {
        await new Promise(r => setTimeout(r, 200)); // its owner is still writing its PID
        continue;
      }
      if (!alive(owner)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (!waiting) log(`waiting for the e2e cluster of PID ${owner} to finish (${lock})`);
      waiting = true;
      await new Promise(r => setTimeout(r, 5000));
    }
  }
}

export async function startCluster(log: (line: string) => void = () => {}): Promise<Cluster> {
  await takeLock(log);
  removeAbandoned();
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
  chmodSync(dir, 0o755);
  const rec: Record_ = { owner: process.pid, pids: [], dataDirs: [] };
  const record = () => writeFileSync(join(dir, 'pids.json'), JSON.stringify(rec));
  record();
  // Interrupted or not (the caller turns SIGINT and SIGTERM into an exit), from here on what we start goes with us.
  const killAll = () => killClusterDirSync(dir);
  process.once('exit', killAll);
  const daemon = (cmd: string, args: string[], logName: string): number => {
    const out = join(dir, 'logs', logName);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const fd = `${out}`;
    const child = spawn('bash', ['-c', `exec "$0" "$@" >>${quote(fd)} 2>&1`, cmd, ...args], { stdio: 'ignore', detached: false });
    child.unref();
    rec.pids.push(child.pid!);
    record();
    return child.pid!;
  };
  const env: NodeJS.ProcessEnv = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', LANG: 'C.UTF-8' };
  const gphome = join(dir, GPHOME_NAME);
  const gpbackupDir = join(dir, GPBACKUP_NAME);
  const referenceDir = join(dir, 'reference');
  const python = join(dir, 'python2.7');
  const dataRoot = join(dir, 'data');
  const coordinatorDataDir = join(dataRoot, 'coordinator', 'gpseg-1');
  let port = 0;
  try {
    await Promise.all(TARBALLS.map(t => run('tar', ['-xJf', join(SHARED_E2E, t), '-C', dir])));
    // gpbackup runs $GPHOME/bin/gpbackup_helper on every segment host.
    for (const tool of ['gpbackup', 'gprestore', 'gpbackup_helper']) symlinkSync(join(gpbackupDir, tool), join(gphome, 'bin', tool));
    await run('cp', ['-a', pyenvPython27()!, python]);
    const home = await ensureUser();
    const sshPort = await freePort();
    // The coordinator's port, then the two primaries'.
    port = await freePortRun(3);
    writeFileSync(
      join(home, ENV_FILE),
      [
        `# the e2e tier's cluster in ${dir}`,
        `. ${gphome}/greenplum_path.sh`,
        `export PATH=${python}/bin:$PATH`,
        `export LD_LIBRARY_PATH=${python}/lib:$LD_LIBRARY_PATH`,
        `export MASTER_DATA_DIRECTORY=${coordinatorDataDir} COORDINATOR_DATA_DIRECTORY=${coordinatorDataDir}`,
        `export PGPORT=${port} PGHOST=127.0.0.1 PGDATABASE=postgres LC_ALL=C.UTF-8 LANG=C.UTF-8`,
        '',
      ].join('\n'),
    );
    await setUpSsh(home, dir, sshPort);
    // Our own sshd on a free port of 127.0.0.1, with the host keys of the system's.
    mkdirSync('/run/sshd', { recursive: true });
    await run('ssh-keygen', ['-A']);
    const sshdPid = daemon('/usr/sbin/sshd', ['-D', '-e', '-p', String(sshPort), '-o', 'ListenAddress=127.0.0.1', '-o', `PidFile=${join(dir, 'sshd.pid')}`], 'sshd.log');
    await waitForPort(sshPort, 10_000, () => alive(sshdPid), 'sshd');

    mkdirSync(join(dataRoot, 'coordinator'), { recursive: true });
    mkdirSync(join(dataRoot, 'primary'), { recursive: true });
    writeFileSync(join(dir, 'hostfile'), `${hostname()}\n`);
    writeFileSync(
      join(dir, 'gpinitsystem_config'),
      [
        'ARRAY_NAME="gpb e2e"',
        'SEG_PREFIX=gpseg',
        `PORT_BASE=${port + 1}`,
        `declare -a DATA_DIRECTORY=(${dataRoot}/primary ${dataRoot}/primary)`,
        `MASTER_HOSTNAME=${hostname()}`,
        `MASTER_DIRECTORY=${dataRoot}/coordinator`,
        `MASTER_PORT=${port}`,
        'TRUSTED_SHELL=ssh',
        'CHECK_POINT_SEGMENTS=8',
        'ENCODING=UNICODE',
        `MACHINE_LIST_FILE=${dir}/hostfile`,
        '',
      ].join('\n'),
    );
    await run('chown', ['-R', `${OS_USER}:${OS_USER}`, dir, join(home, ENV_FILE)]);
    rec.dataDirs = [coordinatorDataDir, join(dataRoot, 'primary', 'gpseg0'), join(dataRoot, 'primary', 'gpseg1')];
    record();
    const ssh = await sh(`ssh ${hostname()} true && ssh localhost true && ssh 127.0.0.1 'command -v gpbackup_helper python'`, env, 30_000);
    if (ssh.code !== 0) throw new Error(`passwordless ssh for ${OS_USER} does not work: ${(ssh.stderr || ssh.stdout).trim()}`);
    const init = await sh(`cd ${dir} && gpinitsystem -a -n C.utf8 -c ${dir}/gpinitsystem_config`, env, 300_000);
    // 1 means warnings only.
    if (init.code > 1) throw new Error(`gpinitsystem failed (exit ${init.code}):\n${(init.stdout + init.stderr).split('\n').filter(l => /ERROR|FATAL|error/.test(l)).slice(-15).join('\n')}`);
    log(`Greenplum 6.24.3 up in ${((Date.now() - t0) / 1000).toFixed(0)} s (coordinator port ${port}, ${dir})`);
  } catch (err) {
    killAll();
    process.off('exit', killAll);
    throw err;
  }
  const home = homeOf(OS_USER);
  const cluster: Cluster = {
    dir,
    gphome,
    gpbackupDir,
    referenceDir,
    home,
    port,
    coordinatorDataDir,
    sh: (command, opts = {}) => sh(command, env, opts.timeoutMs),
    async psql(db, sql) {
      const r = await sh(`psql -X -q -v ON_ERROR_STOP=1 -At -d ${db} -c ${quote(sql)}`, env, 1_800_000);
      if (r.code !== 0) throw new Error(`psql ${db}: ${r.stderr.trim()}`);
      return r.stdout.trim();
    },
    daemon,
    async stop() {
      await sh('gpstop -a -M fast', env, 120_000);
      killAll();
      process.off('exit', killAll);
      undoUserSetup(home);
    },
  };
  return cluster;
}

async function waitForPort(port: number, timeoutMs: number, stillAlive: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await portFree(port)) {
    if (!stillAlive()) throw new Error(`${what} exited on start-up`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise(r => setTimeout(r, 100));
  }
}

/** Starts gofakes3 (in memory) on a free port; resolves to its endpoint once it answers. */
export async function startGofakes3(cluster: Cluster): Promise<string> {
  const port = await freePort();
  const pid = cluster.daemon(join(cluster.referenceDir, 'gofakes3'), ['-backend', 'memory', '-host', `127.0.0.1:${port}`, '-quiet'], `gofakes3-${port}.log`);
  await waitForPort(port, 10_000, () => alive(pid), 'gofakes3');
  return `http://127.0.0.1:${port}`;
}
