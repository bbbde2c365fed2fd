/**
 * scripts/install.sh (`make install`) without a Greenplum: a temporary GPHOME, and fake
 * gpsync, gpscp and psql scripts that record how they were called. PATH holds only those
 * fakes and links to the few system tools the script uses, so a real psql or gpsync on this
 * machine cannot take part.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { PROJECT_ROOT, patternBytes } from '../support/plugin.js';

const SCRIPT = join(PROJECT_ROOT, 'scripts/install.sh');
const SYSTEM_TOOLS = ['bash', 'cat', 'chmod', 'cp', 'dirname', 'hostname', 'mktemp', 'mv', 'rm'];
const QUERY = 'SELECT DISTINCT hostname FROM gp_segment_configuration ORDER BY 1';

/** Where a system tool is, found once with the test's own PATH. */
function which(tool: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  assert.ok(r.status === 0 && path.startsWith('/'), `${tool} is needed by scripts/install.sh and was not found`);
  return path;
}
const toolPaths = new Map(SYSTEM_TOOLS.map(t => [t, which(t)]));

const outerRoot = mkdtempSync(join(tmpdir(), 'gpb-s3-install-'));
after(() => rmSync(outerRoot, { recursive: true, force: true }));

let root: string;
let gphome: string;
let pathDir: string; // the only directory on the script's PATH
let calls: string; // where the fakes record their calls
let pluginFile: string;
const pluginBytes = patternBytes(64 * 1024, 6);

beforeEach(() => {
  root = mkdtempSync(join(outerRoot, 'case-'));
  gphome = join(root, 'greenplum-db');
  mkdirSync(join(gphome, 'bin'), { recursive: true });
  pathDir = join(root, 'path');
  mkdirSync(pathDir);
  for (const [tool, path] of toolPaths) symlinkSync(path, join(pathDir, tool));
  calls = join(root, 'calls');
  mkdirSync(calls);
  pluginFile = join(root, 'dist', 'gpbackup_s3_plugin');
  mkdirSync(join(root, 'dist'));
  writeFileSync(pluginFile, pluginBytes, { mode: 0o644 }); // not executable: the install makes it so
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/**
 * A fake command on the script's PATH: records its arguments (one a line) to calls/<name>.args
 * and the file after `-f` to calls/<name>.hosts (the script may remove a file it made), then
 * runs `extra` (shell text) and exits with `code`.
 */
function fakeCommand(name: string, { code = 0, extra = '' } = {}): void {
  const bash = toolPaths.get('bash')!;
  const cat = toolPaths.get('cat')!;
  const text = [
    `#!${bash}`,
    `printf '%s\\n' "$@" > ${JSON.stringify(join(calls, `${name}.args`))}`,
    `if [ "$1" = -f ]; then ${cat} "$2" > ${JSON.stringify(join(calls, `${name}.hosts`))}; fi`,
    extra,
    `exit ${code}`,
  ].join('\n');
  writeFileSync(join(pathDir, name), text + '\n', { mode: 0o755 });
}

function recorded(name: string, what: 'args' | 'hosts'): string[] | undefined {
  const file = join(calls, `${name}.${what}`);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(0, -1) : undefined;
}

function install(env: Record<string, string | undefined> = {}) {
  const vars: Record<string, string> = { PATH: pathDir, GPHOME: gphome, PLUGIN_BIN: pluginFile, TMPDIR: root };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete vars[k];
    else vars[k] = v;
  }
  const r = spawnSync(toolPaths.get('bash')!, [SCRIPT], { env: vars, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertInstalled(): void {
  const target = join(gphome, 'bin', 'gpbackup_s3_plugin');
  assert.ok(readFileSync(target).equals(pluginBytes), 'the installed file has the same bytes');
  assert.equal(statSync(target).mode & 0o777, 0o755);
  assert.deepEqual(readdirSync(join(gphome, 'bin')), ['gpbackup_s3_plugin'], 'no staging file is left beside it');
}

describe('make install (scripts/install.sh)', () => {
  test('installs into $GPHOME/bin, replacing an older copy, and syncs it with gpsync -f HOSTFILE', () => {
    writeFileSync(join(gphome, 'bin', 'gpbackup_s3_plugin'), 'old version', { mode: 0o755 });
    const hostfile = join(root, 'hostfile');
    writeFileSync(hostfile, 'sdw1\nsdw2\n');
    fakeCommand('gpsync');
    fakeCommand('gpscp');
    fakeCommand('psql');

    const r = install({ HOSTFILE: hostfile });
    assert.equal(r.code, 0, r.stderr);
    assertInstalled();
    const target = join(gphome, 'bin', 'gpbackup_s3_plugin');
    assert.deepEqual(recorded('gpsync', 'args'), ['-f', hostfile, target, `=:${gphome}/bin/`]);
    assert.equal(recorded('gpscp', 'args'), undefined, 'gpsync is preferred over gpscp');
    assert.equal(recorded('psql', 'args'), undefined, 'a HOSTFILE needs no query');
    assert.match(r.stdout, /installed .*gpbackup_s3_plugin/);
  });

  test('falls back to gpscp and takes the hosts from gp_segment_configuration, leaving this host out', () => {
    fakeCommand('gpscp');
    fakeCommand('psql', { extra: `printf 'sdw1\\nsdw2\\n${hostname()}\\n'` });

    const r = install();
    assert.equal(r.code, 0, r.stderr);
    assertInstalled();
    assert.deepEqual(recorded('psql', 'args'), ['-X', '-d', 'postgres', '-Atc', QUERY]);
    const args = recorded('gpscp', 'args')!;
    assert.equal(args[0], '-f');
    assert.deepEqual(args.slice(2), [join(gphome, 'bin', 'gpbackup_s3_plugin'), `=:${gphome}/bin/`]);
    assert.deepEqual(recorded('gpscp', 'hosts'), ['sdw1', 'sdw2']);
    assert.ok(!existsSync(args[1]), 'the generated host file is removed');
  });

  test('a failing host query fails the install and says how to copy by hand', () => {
    fakeCommand('gpsync');
    fakeCommand('psql', { code: 2, extra: 'echo "psql: error: connection refused" >&2' });
    const r = install();
    assert.equal(r.code, 1);
    assertInstalled();
    assert.match(r.stderr, /psql could not read the hosts of the cluster/);
    assert.match(r.stderr, /gpsync -f <hostfile> /);
    assert.equal(recorded('gpsync', 'args'), undefined);
  });

  test('without gpsync or gpscp it installs locally and says how to sync', () => {
    fakeCommand('psql');
    const r = install();
    assert.equal(r.code, 0, r.stderr);
    assertInstalled();
    assert.match(r.stdout, /neither gpsync nor gpscp is on the PATH/);
    assert.ok(r.stdout.includes(`gpsync -f <hostfile> ${join(gphome, 'bin', 'gpbackup_s3_plugin')} =:${gphome}/bin/`), r.stdout);
    assert.equal(recorded('psql', 'args'), undefined);
  });

  test('with gpsync but neither HOSTFILE nor psql it installs locally and says so', () => {
    fakeCommand('gpsync');
    const r = install();
    assert.equal(r.code, 0, r.stderr);
    assertInstalled();
    assert.match(r.stdout, /no HOSTFILE=<file> given and psql is not on the PATH/);
    assert.equal(recorded('gpsync', 'args'), undefined);
  });

  test('a failing gpsync fails the install', () => {
    const hostfile = join(root, 'hostfile');
    writeFileSync(hostfile, 'sdw1\n');
    fakeCommand('gpsync', { code: 1 });
    const r = install({ HOSTFILE: hostfile });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /gpsync failed; .* is installed on this host only/);
  });

  test('refuses to run without a usable GPHOME, HOSTFILE or executable', () => {
    fakeCommand('gpsync');
    const unset = install({ GPHOME: undefined });
    assert.equal(unset.code, 1);
    assert.match(unset.stderr, /^install: GPHOME is not set: source greenplum_path.sh/);

    const notDir = install({ GPHOME: pluginFile });
    assert.equal(notDir.code, 1);
    assert.equal(notDir.stderr, `install: GPHOME=${pluginFile} is not a directory\n`);

    const missing = install({ PLUGIN_BIN: join(root, 'nothing') });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nothing does not exist: build it first \(make\)/);

    assert.deepEqual(readdirSync(join(gphome, 'bin')), [], 'nothing was installed');
    const noHostfile = install({ HOSTFILE: join(root, 'no-such-hostfile') });
    assert.equal(noHostfile.code, 1);
    assert.match(noHostfile.stderr, /HOSTFILE=.*no-such-hostfile is not a readable file/);
    assert.equal(recorded('gpsync', 'args'), undefined);
  });
});
