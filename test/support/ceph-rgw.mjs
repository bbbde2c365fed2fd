#!/usr/bin/env node
// A throwaway Ceph cluster serving S3 through radosgw on 127.0.0.1, from Debian's packages
// (ceph-mon ceph-osd radosgw ceph-common): one mon, one OSD on memstore (pool size 1, no mgr),
// radosgw with the beast frontend. Everything (conf, fsid, mon data, sockets, logs, ports) lives
// under one temporary directory, so several instances run side by side; stop kills exactly
// the PIDs that start spawned and removes the directory.
//
// As a library: startRgw() / instance.stop() (the test runner, scripts/test.mjs).
// By hand:
//   node test/support/ceph-rgw.mjs start     prints the endpoint, keys and the directory, and leaves it running
//   node test/support/ceph-rgw.mjs stop DIR  stops the instance started in DIR
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The key pair of the S3 user every instance creates (the same pair as s3server.ts's TEST_ACCESS_KEY/TEST_SECRET_KEY). */
export const RGW_ACCESS_KEY = 'GPBTESTACCESSKEY';
export const RGW_SECRET_KEY = 'gpb-Test/Secret+Key-do-not-print-0123456789';

export const RGW_PACKAGES = ['ceph-mon', 'ceph-osd', 'radosgw', 'ceph-common'];
export const RGW_INSTALL_HINT = `apt-get install -y --no-install-recommends ${RGW_PACKAGES.join(' ')}`;

const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'];

/** Whether every program an instance needs is on the PATH. */
export function rgwInstalled() {
  const path = (process.env.PATH ?? '').split(':').filter(Boolean);
  return BINARIES.every(b => path.some(d => existsSync(join(d, b))));
}

/** radosgw's version line, e.g. "ceph version 16.2.15 (...) pacific (stable)". */
export function rgwVersion() {
  const r = spawnSync('radosgw', ['--version'], { encoding: 'utf8' });
  return (r.stdout || '').trim();
}

async function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

function config(dir, fsid, monPort, rgwPort) {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
public addr = 127.0.0.1
# No cephx; with auth none radosgw's default ms_mon_client_mode=secure hangs 300 s.
auth cluster required = none
auth service required = none
auth client required = none
ms_mon_client_mode = crc
keyring = /dev/null
run dir = ${dir}/run
admin socket = ${dir}/run/$cluster-$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
[mon]
mon data = ${dir}/mon/$name
[osd]
osd data = ${dir}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = 2147483648
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
`;
}

/** Starts a daemon in the foreground (-f) as our own child, its output to a file; returns its PID. */
function daemon(dir, name, args) {
  const out = openSync(join(dir, 'log', `${name}.out`), 'a');
  const child = spawn(args[0], args.slice(1), { stdio: ['ignore', out, out], detached: true });
  closeSync(out);
  child.unref();
  return child.pid;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True when `pid` is still one of this instance's daemons (its command line names our conf), not a reused PID. */
function ours(pid, conf) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(conf);
  } catch {
    return false;
  }
}

function logTail(dir) {
  const parts = [];
  for (const n of ['mon', 'osd', 'rgw']) {
    const f = join(dir, 'log', `${n}.out`);
    if (existsSync(f)) parts.push(`${n}: ${readFileSync(f, 'utf8').slice(-1500)}`);
  }
  return parts.join('\n');
}

/** Kills the instance's daemons (SIGTERM, then SIGKILL after 5 s) and removes its directory. */
export async function stopRgwDir(dir) {
  const conf = join(dir, 'ceph.conf');
  let pids = [];
  try {
    pids = JSON.parse(readFileSync(join(dir, 'instance.json'), 'utf8')).pids;
  } catch {
    // never got as far as starting a daemon
  }
  const mine = pids.filter(p => ours(p, conf));
  for (const p of mine) process.kill(p, 'SIGTERM');
  const deadline = Date.now() + 5000;
  while (mine.some(alive) && Date.now() < deadline) await new Promise(r => setTimeout(r, 50));
  for (const p of mine) if (alive(p) && ours(p, conf)) process.kill(p, 'SIGKILL');
  while (mine.some(p => alive(p) && ours(p, conf))) await new Promise(r => setTimeout(r, 20));
  rmSync(dir, { recursive: true, force: true });
}

/** Synchronous last resort for process exit handlers: SIGKILL the daemons, remove the directory. */
export function killRgwDirSync(dir) {
  const conf = join(dir, 'ceph.conf');
  try {
    for (const p of JSON.parse(readFileSync(join(dir, 'instance.json'), 'utf8')).pids) if (ours(p, conf)) process.kill(p, 'SIGKILL');
  } catch {
    // nothing started
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Starts an instance; resolves once radosgw answers S3 and the test user exists.
 * Returns { endpoint, port, dir, accessKey, secretKey, pids, stop() }.
 */
export async function startRgw({ timeoutMs = 120_000, accessKey = RGW_ACCESS_KEY, secretKey = RGW_SECRET_KEY } = {}) {
  if (!rgwInstalled()) throw new Error(`Ceph RGW is not installed: ${RGW_INSTALL_HINT}`);
  const dir = mkdtempSync(join(tmpdir(), 'ceph-rgw-'));
  const conf = join(dir, 'ceph.conf');
  const pids = [];
  const record = () => writeFileSync(join(dir, 'instance.json'), JSON.stringify({ pids }));
  const env = { ...process.env, CEPH_CONF: conf };
  const tool = (cmd, args) => run(cmd, ['-c', conf, ...args], { env, timeout: 60_000 });
  try {
    for (const d of ['run', 'log', 'mon', 'osd/ceph-0', 'rgw']) mkdirSync(join(dir, d), { recursive: true });
    const fsid = randomUUID();
    const [monPort, rgwPort] = [await freePort(), await freePort()];
    writeFileSync(conf, config(dir, fsid, monPort, rgwPort));
    const monmap = join(dir, 'monmap');
    await run('monmaptool', ['--create', '--add', 'a', `v2:127.0.0.1:${monPort}`, '--fsid', fsid, monmap], { env });
    await tool('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', monmap]);
    pids.push(daemon(dir, 'mon', ['ceph-mon', '-c', conf, '-i', 'a', '-f']));
    record();
    const osdUuid = randomUUID();
    await tool('ceph', ['--connect-timeout', '30', 'osd', 'new', osdUuid]);
    await tool('ceph-osd', ['-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    pids.push(daemon(dir, 'osd', ['ceph-osd', '-c', conf, '-i', '0', '-f']));
    record();
    pids.push(daemon(dir, 'rgw', ['radosgw', '-c', conf, '-n', 'client.rgw', '-f']));
    record();
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await fetch(`${endpoint}/`);
        break;
      } catch {
        const dead = pids.find(p => !alive(p));
        if (dead) throw new Error(`a Ceph daemon (PID ${dead}) exited during start-up`);
        if (Date.now() > deadline) throw new Error(`radosgw did not answer on ${endpoint} within ${timeoutMs} ms`);
        await new Promise(r => setTimeout(r, 100));
      }
    }
    await tool('radosgw-admin', ['user', 'create', '--uid', 'gpbtest', '--display-name', 'gpbackup tests', '--access-key', accessKey, '--secret-key', secretKey]);
    return { endpoint, port: rgwPort, dir, accessKey, secretKey, pids: [...pids], stop: () => stopRgwDir(dir) };
  } catch (err) {
    const tail = logTail(dir);
    await stopRgwDir(dir);
    throw new Error(`Ceph RGW did not start: ${err.message}${tail ? `\n${tail}` : ''}`);
  }
}

async function cli(argv) {
  const [cmd, dir] = argv;
  if (cmd === 'start') {
    const t0 = Date.now();
    const rgw = await startRgw();
    process.stdout.write(
      `Ceph RGW (${rgwVersion()}) up in ${((Date.now() - t0) / 1000).toFixed(1)} s\n` +
        `  endpoint   ${rgw.endpoint}\n  access key ${rgw.accessKey}\n  secret key ${rgw.secretKey}\n  directory  ${rgw.dir}\n` +
        `  PIDs       ${rgw.pids.join(' ')}\n` +
        `Stop it with: node test/support/ceph-rgw.mjs stop ${rgw.dir}\n` +
        `Run tests on it: S3_TEST_SERVER=rgw RGW_ENDPOINT=${rgw.endpoint} node --import tsx --test --test-concurrency=1 test/integration/commands.test.ts\n`,
    );
  } else if (cmd === 'stop' && dir) {
    const abs = resolve(dir);
    if (!existsSync(join(abs, 'ceph.conf'))) throw new Error(`${abs} is not a Ceph RGW test instance (no ceph.conf)`);
    await stopRgwDir(abs);
    process.stdout.write(`stopped and removed ${abs}\n`);
  } else {
    process.stderr.write('usage: node test/support/ceph-rgw.mjs start | stop DIR\n');
    process.exit(2);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch(err => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}
