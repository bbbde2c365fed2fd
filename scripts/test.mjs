#!/usr/bin/env node
// Runs the test suites with Node's test runner: `node scripts/test.mjs [unit|integration|rgw|e2e]...`
// (default: all four). Integration tests run the built dist/gpbackup_s3_plugin against a local
// S3 server they start themselves (s3rver). The RGW tier then runs RGW_FILES again against one
// Ceph RGW (Debian's radosgw) started for the whole tier and stopped after it
// (test/support/ceph-rgw.mjs): a real S3 implementation that checks SigV4 signatures. Last the
// end-to-end tier (test/e2e): the real gpbackup and gprestore on a Greenplum cluster it builds from
// ../shared/e2e (test/support/greenplum.ts); skipped with one line when something is missing, a
// failure under CI=true.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateValidator } from './gen-validator.mjs';
import { killRgwDirSync, RGW_INSTALL_HINT, rgwInstalled, rgwVersion, startRgw } from '../test/support/ceph-rgw.mjs';

const TIERS = ['rgw', 'e2e'];

/** Integration files that must pass on Ceph RGW too. */
const RGW_FILES = ['commands', 'conformance', 'integrity', 'signature', 'encryption', 'object-lock', 'inventory', 'dedup', 'verify-dedup', 'dedup-object-lock'].map(f => join('test', 'integration', `${f}.test.ts`));

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'integration', ...TIERS];
const files = suites
  .filter(s => !TIERS.includes(s))
  .flatMap(s =>
    readdirSync(join(root, 'test', s))
      .filter(f => f.endsWith('.test.ts'))
      .sort()
      .map(f => join('test', s, f)),
  );
generateValidator(); // unit tests import the generated config validator

function nodeTest(testFiles, env, concurrency) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...testFiles], {
    cwd: root,
    stdio: 'inherit',
    env,
  });
  return r.status ?? 1;
}

let status = files.length ? nodeTest(files, process.env, 2) : 0;

if (suites.includes('rgw')) status = (await rgwTier()) || status;
if (suites.includes('e2e')) status = e2eTier() || status;
process.exit(status);

function e2eTier() {
  const t0 = Date.now();
  // The test file checks its prerequisites itself: one line and a skip, or under CI=true a failure.
  const status = nodeTest([join('test', 'e2e', 'gpbackup.test.ts')], process.env, 1);
  process.stdout.write(`e2e tier: ${((Date.now() - t0) / 60000).toFixed(1)} min\n`);
  return status;
}

async function rgwTier() {
  if (!rgwInstalled()) {
    if (process.env.CI === 'true') {
      process.stderr.write(`RGW tier: Ceph RGW is not installed, and CI must run it: ${RGW_INSTALL_HINT}\n`);
      return 1;
    }
    process.stdout.write(`RGW tier skipped: Ceph RGW is not installed (as root: ${RGW_INSTALL_HINT})\n`);
    return 0;
  }
  const t0 = Date.now();
  let rgw;
  try {
    rgw = await startRgw();
  } catch (err) {
    process.stderr.write(`RGW tier: ${err.message}\n`);
    return 1;
  }
  // Interrupted or not, the daemons we started go with us.
  const kill = () => killRgwDirSync(rgw.dir);
  process.once('exit', kill);
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));
  process.stdout.write(`RGW tier: ${rgwVersion()} at ${rgw.endpoint}, up in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  // One file at a time: the files share the instance and some bucket names.
  const status = nodeTest(RGW_FILES, { ...process.env, S3_TEST_SERVER: 'rgw', RGW_ENDPOINT: rgw.endpoint }, 1);
  await rgw.stop();
  process.off('exit', kill);
  return status;
}
