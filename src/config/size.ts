/**
 * The option syntaxes for amounts: sizes, rates (sizes a second) and durations.
 *
 * Sizes as the Go plugin reads them (github.com/inhies/go-bytesize): a decimal number and a
 * case-insensitive unit, all units 1024-based, so 5MB = 5 MiB. Also accepted here: KiB..TiB,
 * and a bare whole number meaning bytes. schemas/plugin-config.schema.json repeats each syntax
 * as a pattern (unit tests keep them in step).
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

const UNITS: Record<string, number> = {};
for (const [power, short, long] of [
  [0, 'B', 'BYTE'],
  [1, 'KB', 'KILOBYTE'],
  [2, 'MB', 'MEGABYTE'],
  [3, 'GB', 'GIGABYTE'],
  [4, 'TB', 'TERABYTE'],
  [5, 'PB', 'PETABYTE'],
  [6, 'EB', 'EXABYTE'],
] as const) {
  UNITS[short] = UNITS[long] = UNITS[`${long}S`] = 1024 ** power;
  if (power >= 1 && power <= 4) UNITS[`${short[0]}IB`] = 1024 ** power;
}

const SIZE = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$/;

/** Bytes in a size such as `16MB`, `5 MiB`, `1.5GB` or `5242880` (rounded down to whole bytes). */
export function parseSize(text: string): number {
  const m = SIZE.exec(text);
  if (!m) throw new Error(`"${text}" is not a size: expected a number and a unit, such as 16MB or 64MiB`);
  const [, number = '', unit = ''] = m;
  if (unit === '') {
    if (!/^\d+$/.test(number)) throw new Error(`"${text}" needs a unit, such as MB`);
    return checked(Number(number), text);
  }
  const factor = UNITS[unit.toUpperCase()];
  if (factor === undefined) {
    throw new Error(`"${text}" has an unknown unit "${unit}": use B, KB, MB, GB, TB, PB, EB, KiB, MiB, GiB or TiB`);
  }
  return checked(Math.floor(Number(number) * factor), text);
}

/** The syntax is right, the number too large to count bytes in. */
class TooLarge extends Error {
  constructor(text: string) {
    super(`"${text}" is too large`);
  }
}

function checked(bytes: number, text: string): number {
  if (!Number.isSafeInteger(bytes)) throw new TooLarge(text);
  return bytes;
}

/** A byte count for messages: `16MiB`, `5GiB`, `1536KiB`, `100 bytes`. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes} bytes`;
}

const RATE = /^(.*?)\s*\/\s*s\s*$/i;

/**
 * Bytes a second in a rate such as `100MB/s`, `1.5GB/s` or `100MB` (the `/s` is optional): the
 * size syntax above. The schema's bandwidth pattern repeats this syntax.
 */
export function parseRate(text: string): number {
  const size = RATE.exec(text)?.[1] ?? text;
  try {
    return parseSize(size);
  } catch (err) {
    if (err instanceof TooLarge) throw new TooLarge(text);
    throw new Error(`"${text}" is not a rate: expected a size a second, such as 100MB/s or 1.5GB/s`);
  }
}

/** A rate for messages: `64KiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatSize(bytesPerSecond)}/s`;
}

const DURATION = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*$/i;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/**
 * Milliseconds in a duration such as `500ms`, `10s`, `1.5s` or `2m`; a bare number is seconds.
 * Units are case-insensitive; the result is rounded to whole milliseconds. The schema's duration
 * pattern repeats this syntax.
 */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text);
  if (!m) throw new Error(`"${text}" is not a duration: expected a number and a unit ms, s or m, such as 500ms, 10s or 2m`);
  const [, number = '', unit = 's'] = m;
  const ms = Math.round(Number(number) * DURATION_UNITS[unit.toLowerCase()]!);
  if (!Number.isSafeInteger(ms)) throw new Error(`"${text}" is too long`);
  return ms;
}

/** Milliseconds for messages, in the largest unit that shows them whole: `100ms`, `1.5s`, `10m`. */
export function formatMilliseconds(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
