/**
 * Checks the parsed config against schemas/plugin-config.schema.json, using the validator that
 * scripts/gen-validator.mjs compiled ahead of time, and turns its errors into messages for a DBA.
 */
import generated from './generated/validate-options.cjs';
import type { SchemaError } from './generated/validate-options.cjs';
import type { KeyLines, Problem } from './yaml.js';

export const meta = generated.meta;

/** Options whose values never appear in a message. */
const SECRET = new Set(['aws_access_key_id', 'aws_secret_access_key', 'aws_session_token']);

/** ` (line 4)`, or nothing if the line is not known. */
const at = (line: number | undefined): string => (line ? ` (line ${line})` : '');

/** `option "bucket" (line 4)`, or without the line if the key isn't in the file. */
export function optionAt(name: string, lines: KeyLines): string {
  return `option "${name}"${at(lines.options.get(name))}`;
}

/** `, got "abc"` for messages; a credential's value is never shown. */
export function got(name: string, value: string): string {
  if (SECRET.has(name)) return ' (value not shown)';
  // A proxy or endpoint URL may hold a password: user:password@host.
  const shown = name === 'http_proxy' || name === 'endpoint' ? value.replace(/\/\/[^/@\s]*@/, '//***@') : value;
  return `, got ${JSON.stringify(shown.length > 80 ? `${shown.slice(0, 77)}...` : shown)}`;
}

/** `doc` is a mapping whose null values (`key:` with nothing after it) are already empty strings. */
export function findProblems(doc: Record<string, unknown>, lines: KeyLines): Problem[] {
  if (generated.validate(doc)) return [];
  const options = (doc.options ?? {}) as Record<string, unknown>;
  const problems = new Map<string, Problem>(); // one per key or rule
  const add = (id: string, p: Problem, replace = false) => {
    if (replace || !problems.has(id)) problems.set(id, p);
  };

  for (const err of generated.validate.errors ?? []) {
    const rule = /^#\/properties\/options\/allOf\/(\d+)\//.exec(err.schemaPath);
    if (rule) {
      const { message, trigger } = meta.rules[Number(rule[1])]!;
      const line = trigger ? lines.options.get(trigger) : undefined;
      add(`rule ${rule[1]}`, { text: `${message}${at(line)}`, line });
    } else if (err.instancePath === '' || err.instancePath === '/executablepath') {
      topLevelProblem(err, lines, add);
    } else if (err.instancePath === '/options') {
      optionsProblem(err, lines, add);
    } else {
      const name = err.instancePath.slice('/options/'.length);
      const value = options[name];
      const line = lines.options.get(name);
      const where = optionAt(name, lines);
      if (err.keyword === 'type') {
        add(`option ${name}`, { text: `${where}: must be a single value, not a list or a mapping`, line, option: name }, true);
      } else if (value === '' && meta.required.includes(name)) {
        add(`option ${name}`, { text: `${where}: is required and cannot be empty`, line, option: name });
      } else {
        add(`option ${name}`, { text: `${where}: ${meta.messages[name]}${got(name, String(value))}`, line, option: name });
      }
    }
  }
  return [...problems.values()];
}

type Add = (id: string, p: Problem, replace?: boolean) => void;

function topLevelProblem(err: SchemaError, lines: KeyLines, add: Add): void {
  if (err.keyword === 'additionalProperties') {
    const key = String(err.params.additionalProperty);
    const line = lines.top.get(key);
    const hint = meta.options.includes(key)
      ? ' (it is an option: indent it under options:)'
      : didYouMean(key, meta.topLevel);
    add(`top ${key}`, {
      text: `unknown key "${key}"${at(line)}: only executablepath and options belong at the top level${hint}`,
      line,
    });
  } else if (err.keyword === 'required' && err.params.missingProperty === 'options') {
    add('top options', { text: 'options is missing: it holds the plugin settings (bucket, folder, ...)' });
  } else {
    const line = lines.top.get('executablepath');
    const text = err.keyword === 'type' ? 'must be a single value, not a list or a mapping' : meta.messages.executablepath;
    add('top executablepath', { text: `executablepath${at(line)}: ${text}`, line }, err.keyword === 'type');
  }
}

function optionsProblem(err: SchemaError, lines: KeyLines, add: Add): void {
  if (err.keyword === 'additionalProperties') {
    const name = String(err.params.additionalProperty);
    const hint = meta.topLevel.includes(name) ? ' (it belongs at the top level, not under options:)' : didYouMean(name, meta.options);
    add(`option ${name}`, { text: `${optionAt(name, lines)}: unknown option${hint}`, line: lines.options.get(name), option: name });
  } else if (err.keyword === 'required') {
    const name = String(err.params.missingProperty);
    add(`option ${name}`, { text: `option "${name}" is required but missing`, option: name });
  } else if (err.keyword === 'type') {
    const line = lines.top.get('options');
    add('top options', { text: `options${at(line)}: must be a mapping of option names to values`, line });
  }
}

function didYouMean(name: string, known: string[]): string {
  const limit = name.length < 5 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of known) {
    const d = distance(name.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      const prev = d[i - 1]!;
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
