/**
 * Nothing lost under faults: round trips of the built plugin (backup_data from
 * a pipe, restore_data to a pipe) through a proxy that injects seeded faults
 * into the traffic to a real S3 server. Each round trip either restores its
 * bytes exactly or fails clean; a backup that reports success is in the bucket
 * byte for byte; nothing else is: no other object, no unfinished upload.
 *
 * The figures of a run go to the test output and to a JSON file in the temp
 * directory (docs/reliability.md quotes them).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FAULT_KINDS, prng, startFaultProxy, type FaultKind, type FaultProxy } from '../support/fault-proxy.js';
import { PluginEnv, patternBytes, type RunResult } from '../support/plugin.js';
import { startS3Server, TEST_SECRET_KEY, testOptions, type TestS3Server } from '../support/s3server.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const BUCKET = 'gpbackup-reliability';
const FOLDER = 'faults';
const SEED = 20240517;
const FAULT_RATE = 0.15;
/** Longer than the plugin's request_timeout below, so a stall is only survived by a timeout and a retry. */
const STALL_MS = 3_000;
const CONCURRENCY = 3;
const RANDOM_ROUND_TRIPS = 96;
const RESULTS_FILE = join(tmpdir(), 'gpbackup_s3_plugin-reliability.json');

let s3: TestS3Server;
let proxy: FaultProxy;
let env: PluginEnv;
/** Object keys whose backup_data reported success, across every test of this file. */
const backedUp = new Set<string>();

function options(overrides: Record<string, string> = {}): Record<string, string> {
  return testOptions(s3, BUCKET, FOLDER, {
    endpoint: proxy.endpoint,
    backup_multipart_chunksize: '5MB',
    restore_multipart_chunksize: '5MB',
    request_timeout: '2s',
    max_retries: '8',
    ...overrides,
  });
}

/** The part boundaries twice each, then seeded sizes: mostly small, some multipart. */
function roundTripSizes(): number[] {
  const edges = [0, 1, PART - 1, PART, PART + 1, 3 * PART + 1];
  const sizes = [...edges, ...edges];
  const random = prng(SEED); // its own stream, apart from the proxy's faults
  for (let i = 0; i < RANDOM_ROUND_TRIPS; i++) {
    const r = random();
    const span = r < 0.7 ? 64 * 1024 : r < 0.92 ? PART + 64 * 1024 : 2 * PART + 1;
    sizes.push(Math.floor(random() * span));
  }
  return sizes;
}

const TS = '20240517120000';

function localPath(file: string): string {
  return env.backupPath(TS, file);
}

function keyOf(file: string): string {
  return `${FOLDER}/backups/${TS.slice(0, 8)}/${TS}/${file}`;
}

/** What "fails clean" requires of a failed command; the problems found, if any. */
function cleanFailureProblems(what: string, r: RunResult): string[] {
  const problems: string[] = [];
  if (r.code === null) problems.push(`${what}: killed by ${r.signal} instead of exiting`);
  const lines = r.stderr.trim().split('\n');
  if (r.stderr.trim() === '' || lines.length !== 1) problems.push(`${what}: stderr is not one line: ${JSON.stringify(r.stderr)}`);
  if (/\n\s+at |node:internal/.test(r.stderr)) problems.push(`${what}: stack trace on stderr`);
  if (r.stderr.includes(TEST_SECRET_KEY)) problems.push(`${what}: the secret key on stderr`);
  return problems;
}

type Outcome = 'restored' | 'backup failed' | 'restore failed' | 'lost';

interface RoundTrip {
  file: string;
  size: number;
  outcome: Outcome;
  problems: string[];
  message?: string;
}

async function roundTrip(index: number, size: number, cfg: string): Promise<RoundTrip> {
  const file = `gpbackup_0_${TS}_${index}`;
  const data = patternBytes(size, SEED + index);
  const key = keyOf(file);
  const backup = await env.run(['backup_data', cfg, localPath(file)], { stdin: data, timeoutMs: 120_000 });
  if (backup.code !== 0) {
    const problems = cleanFailureProblems(`backup of ${size} bytes`, backup);
    // Asked directly of the server, not through the proxy.
    if ((await s3.headObject(BUCKET, key)) !== undefined) problems.push(`failed backup of ${size} bytes left an object at ${key}`);
    return { file, size, outcome: 'backup failed', problems, message: backup.stderr.trim() };
  }
  backedUp.add(key);
  const restore = await env.run(['restore_data', cfg, localPath(file)], { timeoutMs: 120_000 });
  if (restore.code !== 0) {
    return { file, size, outcome: 'restore failed', problems: cleanFailureProblems(`restore of ${size} bytes`, restore), message: restore.stderr.trim() };
  }
  if (!restore.stdout.equals(data)) {
    return { file, size, outcome: 'lost', problems: [`restore of ${size} bytes exited 0 with ${restore.stdout.length} different bytes`] };
  }
  return { file, size, outcome: 'restored', problems: [] };
}

/** Runs the jobs `width` at a time, in order of index. */
async function pool<T>(count: number, width: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

function pathOf(file: string): string {
  return `/${BUCKET}/${keyOf(file)}`;
}

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  proxy = await startFaultProxy({ target: s3.endpoint, seed: SEED, stallMs: STALL_MS });
  env = new PluginEnv();
});

after(async () => {
  await proxy?.stop();
  await s3?.stop();
  env?.cleanup();
});

describe('round trips through a faulty network', () => {
  test(`${12 + RANDOM_ROUND_TRIPS} round trips at a ${FAULT_RATE * 100}% fault rate: each restores bit-exact or fails clean, none is lost`, async t => {
    const cfg = env.writeConfig(options(), 'faults.yaml');
    const sizes = roundTripSizes();
    const requestsBefore = proxy.requests.length;
    proxy.setOptions({ seed: SEED, faultRate: FAULT_RATE, faults: [...FAULT_KINDS], schedule: undefined });
    const started = Date.now();
    const trips = await pool(sizes.length, CONCURRENCY, i => roundTrip(i, sizes[i], cfg));
    const seconds = (Date.now() - started) / 1000;
    proxy.setOptions({ faultRate: 0 });

    // Faults met by each round trip: those on requests for its object.
    const requests = proxy.requests.slice(requestsBefore);
    const faultsOf = (file: string) => requests.filter(r => r.path === pathOf(file) && r.fault !== undefined).length;
    const faultsByKind = Object.fromEntries(FAULT_KINDS.map(k => [k, requests.filter(r => r.fault === k).length])) as Record<FaultKind, number>;

    // A backup that reported success must be in the bucket exactly, whatever the restore said.
    for (const trip of trips) {
      if (trip.outcome === 'backup failed') continue;
      const stored = await s3.getObject(BUCKET, keyOf(trip.file));
      const index = Number(trip.file.slice(trip.file.lastIndexOf('_') + 1));
      if (!stored || !stored.equals(patternBytes(trip.size, SEED + index))) {
        trip.outcome = 'lost';
        trip.problems.push(`backup of ${trip.size} bytes reported success but the bucket holds ${stored ? `${stored.length} different bytes` : 'nothing'}`);
      }
    }

    const figures = {
      date: new Date().toISOString(),
      machine: `${cpus().length} vCPU, ${cpus()[0]?.model ?? 'unknown CPU'}`,
      server: s3.kind,
      seed: SEED,
      faultRate: FAULT_RATE,
      stallMs: STALL_MS,
      pluginOptions: { request_timeout: '2s', max_retries: '8', backup_multipart_chunksize: '5MB', concurrency: CONCURRENCY },
      roundTrips: trips.length,
      bytes: sizes.reduce((a, b) => a + b, 0),
      requests: requests.length,
      faultsInjected: requests.filter(r => r.fault !== undefined).length,
      faultsByKind,
      recovered: trips.filter(r => r.outcome === 'restored' && faultsOf(r.file) > 0).length,
      restoredWithoutFault: trips.filter(r => r.outcome === 'restored' && faultsOf(r.file) === 0).length,
      failedClean: trips.filter(r => (r.outcome === 'backup failed' || r.outcome === 'restore failed') && r.problems.length === 0).length,
      lost: trips.filter(r => r.outcome === 'lost').length,
      seconds,
    };
    writeFileSync(RESULTS_FILE, JSON.stringify(figures, null, 2) + '\n');
    t.diagnostic(
      `round trips ${figures.roundTrips}, requests ${figures.requests}, faults injected ${figures.faultsInjected} ` +
        `(${FAULT_KINDS.map(k => `${k} ${faultsByKind[k]}`).join(', ')}), recovered ${figures.recovered}, ` +
        `failed clean ${figures.failedClean}, lost ${figures.lost}, ${seconds.toFixed(1)} s`,
    );
    for (const trip of trips) if (trip.message) t.diagnostic(`${trip.outcome} (${trip.size} bytes): ${trip.message}`);
    t.diagnostic(`figures written to ${RESULTS_FILE}`);

    assert.ok(trips.length >= 100);
    assert.deepEqual(trips.flatMap(r => r.problems), []);
    assert.equal(figures.lost, 0);
    // Failing clean is allowed, but at this rate a request fails all 9 attempts with a
    // probability of 0.15^9, about 4e-8: a failure here means some fault is not retried.
    assert.equal(figures.failedClean, 0, 'round trips failed although every fault is retryable');
    // The run proves something only if faults of every kind were met, and survived. A cut
    // answer is only drawn for GET, HEAD and DELETE (the proxy turns it into resetRequest
    // for PUT and POST), a few a run: the two cut kinds are counted together.
    for (const kind of ['status500', 'slowdown503', 'resetRequest', 'stall'] as const) {
      assert.ok(faultsByKind[kind] > 0, `no ${kind} fault was injected`);
    }
    assert.ok(faultsByKind.resetResponse + faultsByKind.truncate > 0, 'no answer was cut (resetResponse, truncate)');
    assert.ok(figures.recovered >= 20, `only ${figures.recovered} round trips met a fault and recovered`);
  });
});

describe('failures that retries cannot cure end clean', () => {
  // Few retries, so that a short schedule of faults outlasts them.
  const fewRetries = () => env.writeConfig(options({ max_retries: '2' }), 'few-retries.yaml');

  test('a single-PUT backup whose every attempt fails: exit 1, one line, no object', async () => {
    const cfg = fewRetries();
    const file = 'gpbackup_0_20240517120000_put-exhausted';
    proxy.setOptions({ faultRate: 0, schedule: ['status500', 'slowdown503', 'resetRequest'] });
    const r = await env.run(['backup_data', cfg, localPath(file)], { stdin: patternBytes(1000, 5) });
    proxy.setOptions({ schedule: undefined });
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(cleanFailureProblems('backup', r), []);
    assert.match(r.stderr, /attempt|retr/i); // says that it tried more than once
    assert.equal(await s3.headObject(BUCKET, keyOf(file)), undefined);
  });

  test('a multipart backup with a part the server refuses: exit 1, upload aborted, no object', async () => {
    const cfg = fewRetries();
    const file = 'gpbackup_0_20240517120000_part-denied';
    proxy.setOptions({ faultRate: 0, deny: r => r.method === 'PUT' && r.query.get('partNumber') === '2' });
    const r = await env.run(['backup_data', cfg, localPath(file)], { stdin: patternBytes(3 * PART + 1, 6) });
    proxy.setOptions({ deny: undefined });
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(cleanFailureProblems('backup', r), []);
    assert.match(r.stderr, /AccessDenied|Access Denied|denied/i);
    assert.equal(await s3.headObject(BUCKET, keyOf(file)), undefined);
    assert.ok(!(await s3.listMultipartUploads(BUCKET)).includes(keyOf(file)), 'its multipart upload was left');
  });

  test('a restore whose every attempt fails: exit 1, one line', async () => {
    const file = 'gpbackup_0_20240517120000_restore-exhausted';
    const data = patternBytes(PART + 1, 7);
    const backup = await env.run(['backup_data', env.writeConfig(options(), 'faults.yaml'), localPath(file)], { stdin: data });
    assert.equal(backup.code, 0, backup.stderr);
    backedUp.add(keyOf(file));
    const cfg = fewRetries();
    // Whatever the restore asks first (HEAD or GET) fails three times.
    proxy.setOptions({ faultRate: 0, schedule: ['status500', 'resetRequest', 'slowdown503'] });
    const r = await env.run(['restore_data', cfg, localPath(file)]);
    proxy.setOptions({ schedule: undefined });
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(cleanFailureProblems('restore', r), []);
  });
});

describe('afterwards', () => {
  test('the bucket holds exactly the objects whose backup succeeded, and no unfinished upload', async () => {
    assert.deepEqual(await s3.listMultipartUploads(BUCKET), []);
    assert.deepEqual(await s3.listKeys(BUCKET), [...backedUp].sort());
  });
});
