#!/usr/bin/env node
// Builds dist/gpbackup_s3_plugin, one ELF executable that needs no Node.js or Bun on the host:
//   1. generate the config validator (scripts/gen-validator.mjs);
//   2. bundle src/main.ts and everything it imports into one CommonJS file,
//      build/gpbackup_s3_plugin.cjs (esbuild), and check that it loads nothing at run time
//      but built-in modules;
//   3. compile it with the pinned Bun runtime from the npm package @oven/bun-linux-x64-baseline
//      (scripts/bun-compile.mjs), checked by running it.
//   `node scripts/build.mjs --arm64` builds dist/arm64/gpbackup_s3_plugin for Linux aarch64 instead,
//   on the pinned aarch64 runtime (scripts/arm64-runtime.mjs).
// Nothing is fetched (but the aarch64 runtime, once, by `make dist-arm64`); the same inputs give
// the same bytes.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateValidator } from './gen-validator.mjs';
import { compile, hostBun } from './bun-compile.mjs';
import { arm64Runtime } from './arm64-runtime.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// PLUGIN_BUILD_DIR and PLUGIN_BIN put the intermediate files and the executable elsewhere, so that
// several builds of one checkout (a developer's and a test run's) do not overwrite each other.
const buildDir = process.env.PLUGIN_BUILD_DIR ?? join(root, 'build');
const arm64 = process.argv.includes('--arm64');
const exe = arm64 ? join(root, 'dist/arm64/gpbackup_s3_plugin') : (process.env.PLUGIN_BIN ?? join(root, 'dist/gpbackup_s3_plugin'));

/**
 * Packages that dependencies import inside try/catch as optional extras and that the
 * bundle cannot contain. In the executable, require() loads built-in modules only, so
 * these fail and the dependency reports its own error.
 *   kerberos: Negotiate (SPNEGO) proxy authentication in the proxy agents.
 */
const OPTIONAL_EXTERNALS = new Set(['kerberos']);

const started = Date.now();
generateValidator();

const runtime = hostBun();
const bundle = join(buildDir, 'gpbackup_s3_plugin.cjs');
mkdirSync(buildDir, { recursive: true });
const result = await build({
  absWorkingDir: root, // paths in the bundle's comments are relative to it: same bytes from any cwd
  entryPoints: [join(root, 'src/main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  // What Bun's JavaScriptCore runs; Bun implements the node: built-ins the bundle imports.
  target: 'node22',
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

const built = compile({
  bundle,
  output: exe,
  arch: arm64 ? 'arm64' : 'x64',
  runtime: arm64 ? arm64Runtime(runtime.version) : undefined,
  buildDir: join(buildDir, arm64 ? 'bun-arm64' : 'bun-x64'),
  smoke: { args: ['--version'], stdout: `gpbackup_s3_plugin version ${pkg.version}\n` },
});

const mib = n => (n / 2 ** 20).toFixed(1);
console.log(
  `built ${exe}: ${mib(statSync(exe).size)} MiB, Bun ${built.runtimeVersion} (${built.bunTarget}), ` +
    `bundle ${mib(statSync(bundle).size)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
