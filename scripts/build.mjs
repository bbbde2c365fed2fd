#!/usr/bin/env node
// Builds dist/gpbackup_s3_plugin: generates the config validator, bundles src/main.ts with esbuild.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateValidator } from './gen-validator.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const dist = join(root, 'dist');
mkdirSync(dist, { recursive: true });

generateValidator();

const bundle = join(dist, 'gpbackup_s3_plugin.cjs');
await build({
  entryPoints: [join(root, 'src/main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minifySyntax: true,
  legalComments: 'none',
  define: { __PLUGIN_VERSION__: JSON.stringify(pkg.version) },
  logLevel: 'warning',
});

const exe = join(dist, 'gpbackup_s3_plugin');
writeFileSync(exe, `#!/usr/bin/env node\n${readFileSync(bundle, 'utf8')}`);
chmodSync(exe, 0o755);
console.log(`built ${exe}`);
