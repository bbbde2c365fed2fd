// Starts s3rver-main.cjs (s3rver from npm) as a child process on 127.0.0.1: one launcher
// for the integration tests and the benchmarks.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 's3rver-main.cjs');

/**
 * `port` 0 (the default) lets the system choose one.
 * Returns at once with the child (so a caller can kill it even while it starts), a
 * promise of its port, and the tail of its output (which is drained: a full pipe
 * would stall the server).
 */
export function launchS3rver(directory, { timeoutMs = 15_000, port: fixedPort = 0 } = {}) {
  // --openssl-legacy-provider: s3rver's ListObjectsV2 continuation tokens use a legacy cipher.
  const child = spawn(process.execPath, ['--openssl-legacy-provider', MAIN, directory, String(fixedPort)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = d => (tail = (tail + d.toString()).slice(-4000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const port = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start in ${timeoutMs} ms: ${tail}`)), timeoutMs);
    const onExit = code => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with ${code}: ${tail}`));
    };
    const onData = () => {
      const m = /listening (\d+)/.exec(tail);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
  return { child, port, tail: () => tail };
}
