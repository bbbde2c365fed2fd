#!/usr/bin/env node
// Runs the test suites with Node's test runner: `node scripts/test.mjs [unit|integration]...` (default: both).
// Integration tests run the built dist/gpbackup_s3_plugin against a local S3 server they start themselves.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateValidator } from './gen-validator.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'integration'];
const files = suites.flatMap(s =>
  readdirSync(join(root, 'test', s))
    .filter(f => f.endsWith('.test.ts'))
    .sort()
    .map(f => join('test', s, f)),
);
generateValidator(); // unit tests import the generated config validator
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
