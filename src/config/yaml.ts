/**
 * Reads the config file's YAML with every scalar as its source text (FAILSAFE schema): gpbackup
 * re-writes values as quoted strings, and unquoted `off`, `0123` or `6` must mean what they show,
 * not YAML 1.1 booleans or octal numbers.
 */
import { FAILSAFE_SCHEMA, load, YAMLException } from 'js-yaml';

/** Where a problem was found, for messages; `option` names an option that is wrong. */
export interface Problem {
  text: string;
  line?: number;
  option?: string;
}

/** 1-based line numbers of the top-level keys and of the keys under `options:`. */
export interface KeyLines {
  top: Map<string, number>;
  options: Map<string, number>;
  duplicates: { key: string; line: number; isOption: boolean }[];
}

export interface ParsedYaml {
  /** The document, or undefined if the text is not YAML (then `problems` says why). */
  doc: unknown;
  lines: KeyLines;
  problems: Problem[];
}

export function parseYaml(text: string): ParsedYaml {
  const lines = scanKeyLines(text);
  try {
    return { doc: load(text, { schema: FAILSAFE_SCHEMA }), lines, problems: [] };
  } catch (err) {
    if (!(err instanceof YAMLException)) throw err;
    const line = err.mark ? err.mark.line + 1 : undefined;
    if (err.reason !== 'duplicated mapping key') {
      // err.message would quote the surrounding text, which may hold a secret.
      const at = err.mark ? ` at line ${line}, column ${err.mark.column + 1}` : '';
      return { doc: undefined, lines, problems: [{ text: `not valid YAML${at}: ${err.reason}`, line }] };
    }
    // Report every duplicate, then carry on (last value wins) so the other checks still run.
    const problems: Problem[] = lines.duplicates.map(d => ({
      text: `${d.isOption ? 'option' : 'key'} "${d.key}" (line ${d.line}): appears more than once`,
      line: d.line,
    }));
    if (problems.length === 0) problems.push({ text: `a key appears more than once (line ${line})`, line });
    return { doc: load(text, { schema: FAILSAFE_SCHEMA, json: true }), lines, problems };
  }
}

// A block-mapping key at the start of a line: `key:`, `"key":` or `'key':`.
const KEY_LINE = /^( *)(?:"([^"]*)"|'([^']*)'|([^\s#'"{}[\],&*!|>%@`?-][^:#]*?))\s*:(?:\s|$)/;

/** Finds key lines by a plain text scan: js-yaml does not give node positions. */
export function scanKeyLines(text: string): KeyLines {
  const lines: KeyLines = { top: new Map(), options: new Map(), duplicates: [] };
  let section = '';
  let optionIndent = -1;
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((line, i) => {
    const m = KEY_LINE.exec(line);
    if (!m) return;
    const indent = (m[1] ?? '').length;
    const key = m[2] ?? m[3] ?? m[4] ?? '';
    let map: Map<string, number>;
    if (indent === 0) {
      section = key;
      optionIndent = -1;
      map = lines.top;
    } else {
      if (section !== 'options') return;
      if (optionIndent < 0) optionIndent = indent;
      if (indent !== optionIndent) return;
      map = lines.options;
    }
    if (map.has(key)) lines.duplicates.push({ key, line: i + 1, isOption: indent > 0 });
    else map.set(key, i + 1);
  });
  return lines;
}
