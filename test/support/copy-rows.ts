/** Text rows as COPY writes them, from a seed, for deduplication's tests. */
import { createHash } from 'node:crypto';

/** `rows` COPY-like text rows from `seed`; the rows numbered in `edits` differ by `editSeed` (day-to-day updates). */
export function copyRows(rows: number, seed: number, edits: number[] = [], editSeed = 0): Buffer {
  const lines: string[] = [];
  const edited = new Set(edits);
  for (let i = 0; i < rows; i++) {
    const h = createHash('sha256').update(`${seed}:${i}:${edited.has(i) ? editSeed : 0}`).digest('hex');
    lines.push(`${i}\t${h.slice(0, 20)}\tcustomer ${h.slice(20, 36)}\t${parseInt(h.slice(36, 44), 16) % 1000000}.${h.slice(44, 46)}\t2024-07-08\n`);
  }
  return Buffer.from(lines.join(''));
}
