/**
 * verify_backup and list_backups on backups written with `deduplication: on` (gpbackup's file set
 * through backup_file and backup_data: test/support/gpbackup-fixture.ts): manifests are read and
 * their chunks checked, present (quick) or intact (--deep), each chunk once; a deleted chunk, one
 * whose stored bytes are damaged, or one replaced by another's bytes, fails verify_backup naming
 * the chunk and its object.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_TABLES, writeBackup, type FixtureBackup } from '../support/gpbackup-fixture.js';
import { backupKey, PluginEnv, type RunResult } from '../support/plugin.js';
import { startS3Server, testOptions, type TestS3Server } from '../support/s3server.js';

const BUCKET = 'gpbackup-verify-dedup';
const FOLDER = 'cluster1/dedup';
const PLAN_FOLDER = 'cluster1/dedup-plan';

/** Table data above the smallest chunk (256 KiB): backup_data stores smaller streams whole. */
const tables = DEFAULT_TABLES.map(t => ({ ...t, bytes: 300 * 1024 }));
const SINGLE: FixtureBackup = { timestamp: '20250401010000', singleDataFile: true, compression: 'none', segments: 3, tables };
const GZIP: FixtureBackup = { timestamp: '20250402010000', compression: 'gzip', tables };
const ENCRYPTED: FixtureBackup = { timestamp: '20250403010000', singleDataFile: true, compression: 'none', tables };
const BASE: FixtureBackup = { timestamp: '20250404010000', compression: 'none', tables };
const INCR: FixtureBackup = { timestamp: '20250405010000', compression: 'none', incrementalOf: [BASE.timestamp], tables };

let s3: TestS3Server;
let env: PluginEnv;
let cfg: string;
let encryptedCfg: string;
let planCfg: string;

before(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  env = new PluginEnv();
  cfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { deduplication: 'on' }));
  const keyFile = env.writeFile('keys/dedup.key', 'c3'.repeat(32) + '\n');
  chmodSync(keyFile, 0o600);
  encryptedCfg = env.writeConfig(testOptions(s3, BUCKET, FOLDER, { deduplication: 'on', client_side_encryption: 'on', encryption_key_file: keyFile }), 'encrypted.yaml');
  planCfg = env.writeConfig(testOptions(s3, BUCKET, PLAN_FOLDER, { deduplication: 'on', logger_verbosity: 'debug' }), 'plan.yaml');
  for (const b of [SINGLE, GZIP]) await writeBackup(env, cfg, b);
  await writeBackup(env, encryptedCfg, ENCRYPTED);
  for (const b of [BASE, INCR]) await writeBackup(env, planCfg, b);
});

after(async () => {
  await s3?.stop();
  env?.cleanup();
});

interface Report {
  ok: boolean;
  problems: { kind: string; backup: string; key: string; message: string }[];
  deep: { objects: number; checkedBy: Record<string, number>; decrypted: number; chunks: number; chunkBytes: number } | null;
}

function json<T>(r: RunResult): T {
  return JSON.parse(r.stdout.toString()) as T;
}

async function verify(config: string, ts: string, ...flags: string[]): Promise<{ r: RunResult; report: Report }> {
  const r = await env.run(['verify_backup', config, ts, '--json', ...flags]);
  return { r, report: json<Report>(r) };
}

function keyOf(ts: string, file: string, folder = FOLDER): string {
  return backupKey(folder, ts, file);
}

/** The chunk keys a manifest names, from its unencrypted chunk list (36 bytes a chunk after a 16-byte header and 16 bytes of counts). */
async function chunksOf(key: string, folder = FOLDER): Promise<string[]> {
  const m = (await s3.getObject(BUCKET, key))!;
  assert.equal(m.subarray(0, 8).toString('latin1'), '\0GPBKDUP', `${key} is a manifest`);
  const count = Number(m.readBigUInt64BE(24));
  return Array.from({ length: count }, (_, i) => {
    const hex = m.subarray(32 + i * 36, 32 + i * 36 + 32).toString('hex');
    return `${folder}/chunks/${hex.slice(0, 2)}/${hex}`;
  });
}

describe('verify_backup of deduplicated backups', () => {
  test('quick: OK; the single data files are sized by their manifests\' logical length, not the manifests\' own', async () => {
    for (const b of [SINGLE, GZIP]) {
      const { r, report } = await verify(cfg, b.timestamp);
      assert.equal(r.code, 0, r.stderr.toString());
      assert.equal(r.stderr.toString(), '');
      assert.deepEqual(report.problems, []);
    }
  });

  test('--deep: every manifest checked against its digest, every chunk read once and checked against its hash', async () => {
    const { r, report } = await verify(cfg, SINGLE.timestamp, '--deep');
    assert.equal(r.code, 0, r.stderr.toString());
    assert.ok(report.ok);
    const d = report.deep!;
    assert.equal(d.checkedBy.manifest, d.objects, 'every object of a deduplicated backup is a manifest');
    assert.ok(d.chunks >= 3 + 3, `chunks checked: ${d.chunks}`);
    const text = (await env.run(['verify_backup', cfg, SINGLE.timestamp, '--deep'])).stdout.toString();
    assert.match(text, new RegExp(`; ${d.objects} deduplication manifests checked against their SHA-256, ${d.chunks} chunks \\(.+\\) checked against their hash\\n`));
    assert.match(text, /^OK: backup 20250401010000 would restore: every byte read and checked$/m);
  });

  test('client-side encrypted: chunks decrypted with the configured key, quick and --deep', async () => {
    const quick = await verify(encryptedCfg, ENCRYPTED.timestamp);
    assert.equal(quick.r.code, 0, quick.r.stderr.toString());
    const { r, report } = await verify(encryptedCfg, ENCRYPTED.timestamp, '--deep');
    assert.equal(r.code, 0, r.stderr.toString());
    assert.equal(report.deep!.decrypted, report.deep!.objects);
    assert.ok(report.deep!.chunks > 0);
    const keyless = await env.run(['verify_backup', cfg, ENCRYPTED.timestamp]);
    assert.notEqual(keyless.code, 0, 'without the key the manifests cannot be read');
  });

  test('a chunk deleted: quick verify fails with missing-chunk naming the chunk and the object whose manifest names it', async () => {
    const object = keyOf(SINGLE.timestamp, `gpbackup_1_${SINGLE.timestamp}`);
    const [chunk] = await chunksOf(object);
    const saved = (await s3.getObject(BUCKET, chunk!))!;
    await s3.deleteObject(BUCKET, chunk!);
    try {
      for (const flags of [[], ['--deep']]) {
        const { r, report } = await verify(cfg, SINGLE.timestamp, ...flags);
        assert.notEqual(r.code, 0, `verify ${flags.join(' ')} must fail`);
        const p = report.problems.find(p => p.key === chunk);
        assert.ok(p, `a problem names ${chunk}: ${JSON.stringify(report.problems)}`);
        assert.equal(p.kind, 'missing-chunk');
        assert.equal(p.backup, SINGLE.timestamp);
        assert.match(p.message, new RegExp(`of ${object}`));
        assert.match(r.stderr.toString(), new RegExp(`missing-chunk: s3://${BUCKET}/${chunk}: `));
      }
    } finally {
      await s3.putObject(BUCKET, chunk!, saved);
    }
  });

  test('a chunk\'s stored bytes damaged (s3rver only): --deep fails naming it; quick, which reads no chunk, passes', async t => {
    if (!s3.objectPath(BUCKET, 'any')) return t.skip('changes stored bytes: s3rver only');
    const object = keyOf(GZIP.timestamp, `gpbackup_0_${GZIP.timestamp}_16384.gz`);
    const [chunk] = await chunksOf(object);
    const saved = (await s3.getObject(BUCKET, chunk!))!;
    await s3.corruptObject(BUCKET, chunk!, saved.length - 2);
    try {
      assert.equal((await verify(cfg, GZIP.timestamp)).r.code, 0);
      const { r, report } = await verify(cfg, GZIP.timestamp, '--deep');
      assert.notEqual(r.code, 0);
      const p = report.problems.find(p => p.key === chunk);
      assert.ok(p, `a problem names ${chunk}: ${JSON.stringify(report.problems)}`);
      assert.equal(p.kind, 'checksum-mismatch');
      assert.match(p.message, new RegExp(`^a chunk of ${object}: downloading s3://${BUCKET}/${chunk}: its CRC-32 does not match$`));
    } finally {
      await s3.putObject(BUCKET, chunk!, saved);
    }
  });

  test('a chunk replaced by another\'s bytes (its stored checksum then right): --deep fails, the content not matching the name', async () => {
    const [chunk] = await chunksOf(keyOf(GZIP.timestamp, `gpbackup_0_${GZIP.timestamp}_16384.gz`));
    const [other] = await chunksOf(keyOf(GZIP.timestamp, `gpbackup_1_${GZIP.timestamp}_16384.gz`));
    assert.notEqual(chunk, other);
    const saved = (await s3.getObject(BUCKET, chunk!))!;
    await s3.putObject(BUCKET, chunk!, (await s3.getObject(BUCKET, other!))!);
    try {
      const { r, report } = await verify(cfg, GZIP.timestamp, '--deep');
      assert.notEqual(r.code, 0);
      assert.deepEqual(
        report.problems.map(p => [p.kind, p.key, p.message]),
        [['checksum-mismatch', chunk, `a chunk of ${keyOf(GZIP.timestamp, `gpbackup_0_${GZIP.timestamp}_16384.gz`)}: s3://${BUCKET}/${chunk}: the chunk's content does not match its name (damaged or replaced)`]],
      );
    } finally {
      await s3.putObject(BUCKET, chunk!, saved);
    }
  });

  test('an incremental and its base share chunks: verify HEADs each chunk once', async () => {
    const logStart = env.logText().length;
    const { r } = await verify(planCfg, INCR.timestamp);
    assert.equal(r.code, 0, r.stderr.toString());
    const heads = [...env.logText().slice(logStart).matchAll(/request HeadObject key=(\S+\/chunks\/\S+) /g)].map(m => m[1]!);
    const stored = await s3.listKeys(BUCKET, `${PLAN_FOLDER}/chunks/`);
    assert.deepEqual([...heads].sort(), [...stored].sort(), 'every chunk of the two backups HEADed, none twice');
    const named = (await Promise.all([BASE, INCR].map(b => chunksOf(keyOf(b.timestamp, `gpbackup_0_${b.timestamp}_16384`, PLAN_FOLDER), PLAN_FOLDER)))).flat();
    assert.equal(new Set(named).size, named.length / 2, 'the two backups\' table data share their chunks');
  });
});

describe('list_backups of deduplicated backups', () => {
  test('says deduplicated in --json and in the FORMAT column', async () => {
    const list = json<{ timestamp: string; deduplicated: boolean | null }[]>(await env.run(['list_backups', encryptedCfg, '--json']));
    assert.deepEqual(
      list.map(b => [b.timestamp, b.deduplicated]),
      [ENCRYPTED, GZIP, SINGLE].map(b => [b.timestamp, true]),
    );
    const text = (await env.run(['list_backups', cfg])).stdout.toString();
    assert.match(text, new RegExp(`^${GZIP.timestamp} .* per-table gzip dedup `, 'm'));
    assert.match(text, new RegExp(`^${SINGLE.timestamp} .* single-file none dedup `, 'm'));
  });
});
