// The pinned Bun runtime for Linux aarch64, the base of dist/arm64/gpbackup_s3_plugin.
//
// npm refuses to install a package whose "cpu" is arm64 on an x64 host (EBADPLATFORM, also in
// `npm ci`), so it cannot be a devDependency like @oven/bun-linux-x64-baseline. Instead the first
// `make dist-arm64` takes the same package from the npm registry with npm's own client
// (`npm pack`, which uses npm's cache), checks it against the integrity pinned here, and unpacks
// it under build/runtime/; later builds use that copy and fetch nothing.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Same version as the x64 devDependency; integrity as the registry publishes it (dist.integrity). */
export const ARM64_RUNTIME = {
  pkg: '@oven/bun-linux-aarch64',
  version: '1.4.5',
  integrity: 'sha512-4BXmsSKnjOrlGWqZV4x/oWa7AVoR+B6lCXddMzOAXBIm3t50eslg9wb66gmtW1AamEQ1l1CDvmmruysEhqOWMg==',
};

/** Path of the aarch64 bun binary; `hostVersion` (the x64 runtime's) must match the pin. */
export function arm64Runtime(hostVersion) {
  const { pkg, version, integrity } = ARM64_RUNTIME;
  if (hostVersion !== version) {
    throw new Error(`the x64 Bun is ${hostVersion} but scripts/arm64-runtime.mjs pins ${pkg} ${version}: pin the same version`);
  }
  const dir = join(root, 'build/runtime', `bun-linux-aarch64-${version}`);
  const bin = join(dir, 'bin/bun');
  if (existsSync(bin)) return bin;
  const work = join(root, 'build/runtime/tmp');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const packed = spawnSync('npm', ['pack', `${pkg}@${version}`, '--pack-destination', work, '--json', '--silent'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (packed.status !== 0) throw new Error(`npm pack ${pkg}@${version} failed: the aarch64 runtime comes from the npm registry`);
  const [{ filename }] = JSON.parse(packed.stdout);
  const tarball = join(work, filename);
  const got = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (got !== integrity) throw new Error(`${tarball}: integrity ${got}, expected ${integrity}`);
  const tar = spawnSync('tar', ['-xzf', tarball, '-C', work], { stdio: 'inherit' });
  if (tar.status !== 0) throw new Error(`unpacking ${tarball} failed`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(join(work, 'package'), dir);
  rmSync(work, { recursive: true, force: true });
  if (!existsSync(bin)) throw new Error(`${bin} is missing from ${pkg}@${version}`);
  return bin;
}
