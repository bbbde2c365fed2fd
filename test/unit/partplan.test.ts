import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planParts } from '../../src/storage/partplan.js';
import { MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE } from '../../src/storage/store.js';

const MiB = 1024 * 1024;

for (const base of [MIN_PART_SIZE, 16 * MiB, 100 * MiB, 500 * MiB, 1024 * MiB, MAX_PART_SIZE]) {
  test(`part plan from ${base / MiB} MiB parts holds a 5 TiB stream in 10,000 valid parts`, () => {
    const plan = planParts(base);
    let total = 0;
    let prev = 0;
    for (let n = 1; n <= MAX_PARTS; n++) {
      const size = plan.sizeOf(n);
      assert.ok(size >= MIN_PART_SIZE && size <= MAX_PART_SIZE, `part ${n} size ${size}`);
      assert.ok(size >= prev, `part ${n} smaller than part ${n - 1}`);
      assert.equal(size % base === 0 || size === MAX_PART_SIZE, true);
      prev = size;
      total += size;
    }
    assert.ok(total >= MAX_OBJECT_SIZE, `10,000 parts hold only ${total} bytes`);
    // Parts stay at the configured size as long as the 5 TiB goal allows.
    assert.equal(plan.sizeOf(1), base);
    assert.equal(plan.sizeOf(plan.groupSize), base);
    if (plan.groupSize < MAX_PARTS) assert.ok(plan.sizeOf(plan.groupSize + 1) > base);
  });
}

test('part plan: a larger group size would not reach 5 TiB (the growth starts as late as it can)', () => {
  const plan = planParts(MIN_PART_SIZE);
  let total = 0;
  const g = plan.groupSize + 1;
  for (let n = 1; n <= MAX_PARTS; n++) {
    total += Math.min(MAX_PART_SIZE, MIN_PART_SIZE * 2 ** Math.floor((n - 1) / g));
  }
  assert.ok(total < MAX_OBJECT_SIZE);
  // 5 MiB parts: the first ~4.5 GiB go in base-size parts.
  assert.ok(plan.groupSize * MIN_PART_SIZE > 4 * 1024 * MiB);
});
