// The measurement behind the chunk sizes (docs/deduplication.md): for average sizes from 256 KiB
// to 4 MiB (min = avg / 4, max = avg x 4), the chunks per GiB (a PUT and a HEAD each when new, a
// HEAD when present) against the bytes a stream with 1% of its rows changed in 5 places adds.
//
//   node --import tsx scripts/dedup-chunk-sizes.ts [MiB]
import { createHash } from 'node:crypto';
import { Chunker } from '../src/dedup/chunker.js';
import { changedRuns, rowWriter } from './table-rows.mjs';

const MIB = Number(process.argv[2] ?? '256');
const count = Math.round((MIB * 2 ** 20) / 70);
const row = rowWriter(1);
const edit = rowWriter(2);
const base: string[] = [];
for (let i = 0; i < count; i++) base.push(row(i));
const changed = [...base];
for (const [start, end] of changedRuns(count)) for (let i = start; i < end; i++) changed[i] = edit(i);
const a = Buffer.from(base.join(''));
const b = Buffer.from(changed.join(''));

function chunks(buf: Buffer, chunker: Chunker): Map<string, number> {
  const out = new Map<string, number>();
  for (let pos = 0; pos < buf.length; ) {
    const n = chunker.cut(buf, pos, buf.length);
    out.set(createHash('sha256').update(buf.subarray(pos, pos + n)).digest('hex'), n);
    pos += n;
  }
  return out;
}

console.log(`| average (min, max) | chunks per GiB | new bytes, 1% of rows changed in 5 places |`);
console.log(`|---|---|---|`);
for (const avgKiB of [256, 512, 1024, 2048, 4096]) {
  const avg = avgKiB * 1024;
  const chunker = new Chunker({ min: avg / 4, avg, max: avg * 4 });
  const first = chunks(a, chunker);
  const second = chunks(b, chunker);
  let fresh = 0;
  for (const [name, n] of second) if (!first.has(name)) fresh += n;
  const perGiB = (second.size / b.length) * 2 ** 30;
  console.log(`| ${avgKiB} KiB (${avgKiB / 4} KiB, ${avgKiB * 4} KiB) | ${perGiB.toFixed(0)} | ${((100 * fresh) / b.length).toFixed(2)}% |`);
}
