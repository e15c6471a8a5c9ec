/** Masking: exactly floor(L (1 - r)) distinct kept patches per sample, chosen independently per sample, seeded;
 * text masking keeps the start token; ensemble views cover every patch once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inferenceViews } from '../models/evaluate.js';
import { maskText } from '../models/flip-model.js';
import { makeRng } from '../models/random.js';
import { extractPatches, keepCount, sampleKeepIndices } from '../models/vit.js';

test('keepCount is floor(L (1 - r)) and rejects r outside [0, 1)', () => {
  assert.equal(keepCount(64, 0), 64);
  assert.equal(keepCount(64, 0.5), 32);
  assert.equal(keepCount(64, 0.75), 16);
  assert.equal(keepCount(49, 0.3), 34); // 34.3
  assert.equal(keepCount(64, 0.9), 6); // 6.4
  assert.throws(() => keepCount(64, 1), /out of range/);
  assert.throws(() => keepCount(64, -0.1), /out of range/);
});

test('each sample keeps exactly K distinct patches in [0, L), chosen independently per sample', () => {
  const batch = 32;
  const l = 64;
  for (const r of [0.25, 0.5, 0.75]) {
    const k = keepCount(l, r);
    const keep = sampleKeepIndices(batch, l, k, makeRng(7));
    assert.equal(keep.length, batch * k);
    const sets: string[] = [];
    for (let b = 0; b < batch; b++) {
      const row = Array.from(keep.subarray(b * k, (b + 1) * k));
      assert.equal(new Set(row).size, k, `sample ${b} at ratio ${r}: ${row.length} indices but ${new Set(row).size} distinct`);
      assert.ok(row.every((i) => i >= 0 && i < l), `sample ${b}: index outside [0, ${l}): ${row}`);
      sets.push([...row].sort((x, y) => x - y).join(','));
    }
    assert.ok(new Set(sets).size > batch * 0.9, `ratio ${r}: only ${new Set(sets).size} different kept sets over ${batch} samples`);
  }
  // Over many samples every patch gets kept about equally often.
  const counts = new Array(l).fill(0);
  const keep = sampleKeepIndices(2000, l, 16, makeRng(3));
  for (const i of keep) counts[i]++;
  const expected = (2000 * 16) / l;
  for (let i = 0; i < l; i++) assert.ok(Math.abs(counts[i] - expected) < expected * 0.25, `patch ${i} kept ${counts[i]} times, expected ~${expected}`);
});

test('masks are seeded: same seed same masks, different seed different masks', () => {
  const a = sampleKeepIndices(8, 64, 16, makeRng(1));
  const b = sampleKeepIndices(8, 64, 16, makeRng(1));
  const c = sampleKeepIndices(8, 64, 16, makeRng(2));
  assert.deepEqual(Array.from(a), Array.from(b));
  assert.notDeepEqual(Array.from(a), Array.from(c));
});

test('extractPatches takes the right pixels for a kept patch', () => {
  const size = 4;
  const img = Float32Array.from({ length: size * size * 3 }, (_, i) => i / 100);
  const out = extractPatches([img], size, 2, Int32Array.from([3])); // patch (row 1, col 1): pixels (2..3, 2..3)
  const expected: number[] = [];
  for (const r of [2, 3]) for (const c of [2, 3]) for (let ch = 0; ch < 3; ch++) expected.push(img[(r * size + c) * 3 + ch] * 2 - 1);
  assert.deepEqual(Array.from(out).map((v) => v.toFixed(5)), expected.map((v) => v.toFixed(5)));
});

test('text masking keeps the start token and K tokens in position order; prioritized drops padding first', () => {
  const ids = Int32Array.from([1, 5, 6, 7, 2, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0, 0]); // 2 captions of 8, pad 0
  const r = maskText(ids, 2, 0.5, 'prioritized', 0, makeRng(1));
  assert.equal(r.tokens, 4);
  assert.equal(r.ids[0], 1);
  assert.equal(r.positions[0], 0);
  const kept0 = Array.from(r.ids.subarray(0, 4));
  assert.ok(kept0.every((x) => [1, 5, 6, 7, 2].includes(x)), `sample 0 kept padding: ${kept0}`);
  const pos0 = Array.from(r.positions.subarray(0, 4));
  assert.deepEqual(pos0, [...pos0].sort((x, y) => x - y), `positions not in order: ${pos0}`);
  assert.deepEqual(Array.from(r.ids.subarray(4, 8)), [1, 8, 2, 0]); // 3 real tokens, then one padding token
  const t = maskText(ids, 2, 0.5, 'truncate', 0, makeRng(1));
  assert.deepEqual(Array.from(t.positions.subarray(0, 4)), [0, 1, 2, 3]);
});

test('ensemble inference views are disjoint and cover every patch of every sample', () => {
  const views = inferenceViews('ensemble', 4, 64, 0.75, makeRng(5));
  assert.equal(views.length, 4);
  for (let b = 0; b < 4; b++) {
    const seen: number[] = [];
    for (const v of views) {
      const k = v.length / 4;
      seen.push(...v.subarray(b * k, (b + 1) * k));
    }
    assert.deepEqual([...seen].sort((x, y) => x - y), Array.from({ length: 64 }, (_, i) => i));
  }
  const uneven = inferenceViews('ensemble', 2, 49, 0.6, makeRng(5)); // K = 19 -> views of 19, 19, 11
  assert.deepEqual(uneven.map((v) => v.length / 2), [19, 19, 11]);
  assert.equal(inferenceViews('masked', 3, 64, 0.5, makeRng(1))[0].length, 3 * 32);
  assert.equal(inferenceViews('unmasked', 3, 64, 0.5, makeRng(1))[0].length, 3 * 64);
});

test('sampleKeepIndices is the argsort of uniform noise per sample (stable, ties by index), first K kept', () => {
  for (const [batch, l, k, seed] of [[5, 64, 16, 1], [3, 196, 49, 2], [4, 16, 16, 3], [2, 9, 1, 4]]) {
    const got = sampleKeepIndices(batch, l, k, makeRng(seed));
    const rng = makeRng(seed);
    const want: number[] = [];
    for (let b = 0; b < batch; b++) {
      const noise = Array.from({ length: l }, () => rng());
      const order = Array.from({ length: l }, (_, i) => i).sort((x, y) => noise[x] - noise[y]);
      want.push(...order.slice(0, k));
    }
    assert.deepEqual(Array.from(got), want, `batch ${batch}, ${l} patches, keep ${k}`);
  }
});
