// What the fast-s3 benchmarks share (bench.mjs, bench-dedup.mjs): their options, medians, and
// the in-memory S3 stand-in (test/support/fast-s3.mjs) in its own process, killed when they exit.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const args = process.argv.slice(2);

/** The value after `--name` on the command line, or `dflt`. */
export function option(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Starts fast-s3 on a free port; it is killed when this process exits (or by `stop`). */
export async function startFastS3() {
  const server = spawn(process.execPath, [join(root, 'test/support/fast-s3.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((res, rej) => {
    let out = '';
    server.stdout.on('data', d => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    server.once('exit', code => rej(new Error(`fast-s3 exited ${code}`)));
  });
  const stop = () => server.kill();
  process.on('exit', stop);
  return { port, endpoint: `http://127.0.0.1:${port}`, stop };
}

/**
 * Runs `argv` under GNU time (`work`: where its report goes): stdin from a file (`|file`: through
 * a pipe from cat) or /dev/null, stdout into `stdoutCmd` or /dev/null. Wall seconds, CPU seconds
 * (user + system) and peak RSS.
 */
export function timedRun(argv, { stdinFile, stdoutCmd, work, env }) {
  const quoted = argv.map(a => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const out = join(work, 'time.out');
  const inner = `/usr/bin/time -f '%e %U %S %M' -o ${out} ${quoted}${stdinFile ? ` < ${stdinFile}` : ' < /dev/null'}`;
  const shell = stdinFile && stdinFile.startsWith('|') ? `cat ${stdinFile.slice(1)} | ${inner.replace(/ < \S+$/, '')}` : inner;
  const cmd = stdoutCmd ? `${shell} | ${stdoutCmd}` : `${shell} > /dev/null`;
  const t0 = performance.now();
  const r = spawnSync('sh', ['-c', `set -e; ${cmd}`], { env, encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  const [, u, s, m] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { wall, cpu: u + s, rssMiB: m / 1024 };
}
