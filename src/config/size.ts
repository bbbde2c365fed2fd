/**
 * Sizes as the Go plugin reads them (github.com/inhies/go-bytesize): a decimal number and a
 * case-insensitive unit, all units 1024-based, so 5MB = 5 MiB. Also accepted here: KiB..TiB,
 * and a bare whole number meaning bytes. schemas/plugin-config.schema.json repeats this syntax
 * as a pattern (a unit test keeps the two in step).
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

function checked(bytes: number, text: string): number {
  if (!Number.isSafeInteger(bytes)) throw new Error(`"${text}" is too large`);
  return bytes;
}

/** A byte count for messages: `16MiB`, `5GiB`, `1536KiB`, `100 bytes`. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes} bytes`;
}
