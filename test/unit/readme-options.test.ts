/**
 * The README's options table and the schema say the same: every option in both, and each
 * default the same value (sizes, rates and durations compared by what they mean, so `16MB` in
 * the README matches `16MiB` in the schema).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseDuration, parseRate, parseSize } from '../../src/config/size.js';

const root = new URL('../../', import.meta.url);
const schema = JSON.parse(readFileSync(new URL('schemas/plugin-config.schema.json', root), 'utf8'));
const properties: Record<string, { default?: string; pattern?: string }> = schema.properties.options.properties;
const readme = readFileSync(new URL('README.md', root), 'utf8');

/** Option name -> its README row's cells (default, meaning), from the table under "## Options". */
function readmeRows(): Map<string, { default: string; meaning: string }> {
  const section = readme.slice(readme.indexOf('\n## Options\n'));
  const lines = section.split('\n');
  const start = lines.findIndex(l => /^\|\s*option\s*\|\s*default\s*\|/.test(l));
  assert.ok(start >= 0, 'the README has an options table with "option" and "default" columns');
  const rows = new Map<string, { default: string; meaning: string }>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const [names, defaultCell, meaningCell] = line.split('|').slice(1, 4).map(c => c.trim());
    for (const [, name] of names!.matchAll(/`([a-z0-9_]+)`/g)) rows.set(name!, { default: defaultCell!, meaning: meaningCell! });
  }
  return rows;
}

function readmeOptions(): Map<string, string> {
  return new Map([...readmeRows()].map(([name, row]) => [name, row.default]));
}

/** What a default means, for comparing texts written differently. */
function meaning(option: string, text: string): string | number {
  if (/chunksize/.test(option)) return parseSize(text);
  if (/bandwidth/.test(option)) return parseRate(text);
  if (/timeout/.test(option)) return parseDuration(text);
  return text;
}

test('README options table: the same options as the schema', () => {
  const rows = readmeOptions();
  assert.deepEqual([...rows.keys()].sort(), Object.keys(properties).sort());
});

test('README options table: the same defaults as the schema', () => {
  const rows = readmeOptions();
  for (const [option, spec] of Object.entries(properties)) {
    const cell = rows.get(option)!;
    const shown = /^`([^`]+)`/.exec(cell)?.[1];
    if (spec.default === undefined) {
      // No default: the README must not show one as if it were (a bare `value` cell).
      assert.ok(shown === undefined || cell !== `\`${shown}\``, `${option}: README shows default ${cell}, the schema has none`);
      continue;
    }
    assert.ok(shown !== undefined, `${option}: the README's default cell "${cell}" names no value; the schema's is ${spec.default}`);
    assert.equal(meaning(option, shown), meaning(option, spec.default), `${option}: README default ${shown}, schema default ${spec.default}`);
  }
});

test('README options table: the ranges of the counts are the schema\'s', () => {
  const rows = readmeRows();
  for (const option of ['backup_max_concurrent_requests', 'restore_max_concurrent_requests', 'max_retries']) {
    const range = /\((\d+) to (\d+)\)|, (\d+) to (\d+);/.exec(rows.get(option)!.meaning);
    assert.ok(range, `${option}: the README states its range`);
    const [min, max] = (range[1] ? [range[1], range[2]] : [range[3], range[4]]).map(Number) as [number, number];
    const accepts = (n: number) => new RegExp(properties[option]!.pattern!).test(String(n));
    assert.ok(accepts(min) && accepts(max) && !accepts(min - 1) && !accepts(max + 1), `${option}: README says ${min} to ${max}`);
  }
});
