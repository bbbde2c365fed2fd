/**
 * The layers' direction: protocol (argv, dispatch, exit codes) sits on config, storage and log,
 * which import nothing from it; the errors every layer raises are in src/errors.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The src-relative paths a module imports from, for its relative imports. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/gm)].map(m => relative(src, resolve(dirname(file), m[1]!)));
}

test('config, storage and log import nothing from protocol (nor from main)', () => {
  const lower = sources(src).filter(f => !relative(src, f).startsWith('protocol/') && relative(src, f) !== 'main.ts');
  assert.ok(lower.length > 20, `found only ${lower.length} modules below protocol`);
  const wrong = lower.flatMap(f => importsOf(f).filter(i => i.startsWith('protocol/') || i === 'main.js').map(i => `${relative(src, f)} imports ${i}`));
  assert.deepEqual(wrong, []);
});

test('the check sees imports: protocol modules are found importing the layers below', () => {
  const protocol = sources(join(src, 'protocol')).flatMap(importsOf);
  assert.ok(protocol.some(i => i.startsWith('storage/')) && protocol.includes('errors.js'));
});
