#!/usr/bin/env node
// The bundled local S3 server, by hand: `node test/support/s3rver-cli.mjs [--port N] [--bucket NAME] [--dir DIR]`
// starts s3rver (with the operations test/support/s3rver-main.cjs adds) on 127.0.0.1, creates
// the bucket, prints the endpoint, bucket and key pair and a plugin config for them, and runs
// until Ctrl-C (or SIGTERM), then stops the server and removes its data unless --dir was given.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchS3rver } from './s3rver-launch.mjs';

// The key pair s3rver-main.cjs registers (test/support/s3server.ts uses the same).
const ACCESS_KEY = 'GPBTESTACCESSKEY';
const SECRET_KEY = 'gpb-Test/Secret+Key-do-not-print-0123456789';
const USAGE = 'usage: node test/support/s3rver-cli.mjs [--port N] [--bucket NAME] [--dir DIR]';

function parseArgs(argv) {
  const o = { port: 9000, bucket: 'gpbackup', dir: undefined };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '-h' || flag === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    if (value === undefined) throw new Error(`${flag} needs a value; ${USAGE}`);
    if (flag === '--port' && /^\d+$/.test(value)) o.port = Number(value);
    else if (flag === '--bucket' && /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(value)) o.bucket = value;
    else if (flag === '--dir') o.dir = resolve(value);
    else throw new Error(`unknown argument "${flag}"; ${USAGE}`);
    i++;
  }
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(err.message);
  process.exit(2);
}
const directory = opts.dir ?? mkdtempSync(join(tmpdir(), 'gpbackup-s3rver-'));
// s3rver keeps a bucket as a directory of its data directory: creating that creates the bucket.
mkdirSync(join(directory, opts.bucket), { recursive: true });
const server = launchS3rver(directory, { port: opts.port });

let stopping = false;
function stop(code) {
  if (stopping) return;
  stopping = true;
  server.child.once('exit', () => {
    if (!opts.dir) rmSync(directory, { recursive: true, force: true });
    process.exit(code);
  });
  if (!server.child.kill('SIGTERM')) process.exit(code);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => stop(0));

try {
  const port = await server.port;
  const endpoint = `http://127.0.0.1:${port}`;
  console.log(`endpoint:              ${endpoint}`);
  console.log(`bucket:                ${opts.bucket}`);
  console.log(`aws_access_key_id:     ${ACCESS_KEY}`);
  console.log(`aws_secret_access_key: ${SECRET_KEY}`);
  console.log(`data directory:        ${directory}${opts.dir ? '' : ' (removed when the server stops)'}`);
  console.log('\nA plugin config for it:\n');
  console.log(
    [
      `executablepath: ${resolve('dist/gpbackup_s3_plugin')}`,
      'options:',
      `  endpoint: ${endpoint}`,
      '  encryption: off',
      `  aws_access_key_id: ${ACCESS_KEY}`,
      `  aws_secret_access_key: ${SECRET_KEY}`,
      `  bucket: ${opts.bucket}`,
      '  folder: demo/cluster1',
    ].join('\n'),
  );
  console.log('\nRunning; Ctrl-C stops it.');
  server.child.once('exit', code => {
    if (stopping) return;
    console.error(`s3rver exited (${code}): ${server.tail()}`);
    if (!opts.dir) rmSync(directory, { recursive: true, force: true });
    process.exit(1);
  });
} catch (err) {
  console.error(`cannot start the local S3 server: ${err.message}`);
  stop(1);
}
