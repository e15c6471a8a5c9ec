/** FLIP Table 1f, the MAE reconstruction loss: targets are the pixels normalised per patch (mean 0, variance 1), and
 * only removed patches count (predictions at kept patches or CLS rows change neither the loss nor its gradient). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { maeTargets, maskedPatchLoss } from '../models/nn/mae-decoder.js';
import { makeRng } from '../models/random.js';
import { allIndices, extractPatches, keepCount, sampleKeepIndices } from '../models/vit.js';

const SIZE = 16;
const PATCH = 4;
const L = 16;
const PV = PATCH * PATCH * 3;

function setup(batch: number, ratio: number, seed: number) {
  const rng = makeRng(seed);
  // Each image has its own brightness and contrast, so a global normalisation would not give mean 0 / var 1 per patch.
  const images = Array.from({ length: batch }, (_, b) => Float32Array.from({ length: SIZE * SIZE * 3 }, () => 0.2 + 0.1 * b + 0.3 * rng() * (1 + b)));
  const keep = sampleKeepIndices(batch, L, keepCount(L, ratio), rng);
  const patches = extractPatches(images, SIZE, PATCH, allIndices(batch, L)); // [B*L, PV]
  return { images, keep, patches, t: maeTargets(patches, keep, batch, L, PV) };
}

test('targets: each patch normalised by its own mean and variance; CLS rows zero', () => {
  const batch = 3;
  const { patches, t } = setup(batch, 0.75, 1);
  assert.equal(t.target.length, batch * (L + 1) * PV);
  for (let b = 0; b < batch; b++) {
    assert.ok(t.target.subarray(b * (L + 1) * PV, (b * (L + 1) + 1) * PV).every((v) => v === 0), `sample ${b}: CLS row not zero`);
    for (let p = 0; p < L; p++) {
      const row = t.target.subarray((b * (L + 1) + 1 + p) * PV, (b * (L + 1) + 2 + p) * PV);
      const mean = row.reduce((a, v) => a + v, 0) / PV;
      const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / PV;
      assert.ok(Math.abs(mean) < 1e-5, `sample ${b} patch ${p}: mean ${mean}`);
      assert.ok(Math.abs(variance - 1) < 1e-3, `sample ${b} patch ${p}: variance ${variance}`);
      // An affine map of the patch's own pixels (same order), not of other pixels.
      const src = patches.subarray((b * L + p) * PV, (b * L + p + 1) * PV);
      const scale = (row[1] - row[0]) / (src[1] - src[0]);
      for (let i = 0; i < PV; i++) assert.ok(Math.abs(row[i] - (src[i] - src[0]) * scale - row[0]) < 1e-3, `sample ${b} patch ${p} value ${i}`);
    }
  }
});

test('weights: 1 exactly on the removed patches of each sample, 0 on kept patches and CLS', () => {
  const batch = 4;
  const { keep, t } = setup(batch, 0.75, 2);
  const k = keep.length / batch;
  for (let b = 0; b < batch; b++) {
    const kept = new Set(keep.subarray(b * k, (b + 1) * k));
    assert.equal(t.weight[b * (L + 1)], 0);
    for (let p = 0; p < L; p++) assert.equal(t.weight[b * (L + 1) + 1 + p], kept.has(p) ? 0 : 1, `sample ${b} patch ${p}`);
  }
  assert.equal(t.weight.reduce((a, w) => a + w, 0), batch * (L - k));
});

test('the loss ignores kept patches: changing predictions there changes neither the loss nor its gradient', async () => {
  await selectBackend('wasm');
  const batch = 2;
  const { t } = setup(batch, 0.5, 3);
  const rows = batch * (L + 1);
  const rng = makeRng(4);
  const pred = Float32Array.from({ length: rows * PV }, () => rng() * 2 - 1);
  const lossOf = (values: Float32Array) => tf.tidy(() => maskedPatchLoss(tf.tensor2d(values, [rows, PV]), t).dataSync()[0]);
  const base = lossOf(pred);
  const atKept = Float32Array.from(pred);
  const atRemoved = Float32Array.from(pred);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < PV; i++) {
      if (t.weight[r] === 0) atKept[r * PV + i] += 10 * (rng() - 0.5);
    }
  }
  const removedRow = t.weight.indexOf(1);
  atRemoved[removedRow * PV] += 1;
  assert.equal(lossOf(atKept), base, 'changing kept / CLS predictions changed the loss');
  assert.notEqual(lossOf(atRemoved), base, 'changing a removed patch prediction did not change the loss');

  // By hand: mean over removed rows of the per-row MSE.
  let sum = 0;
  let n = 0;
  for (let r = 0; r < rows; r++) {
    if (t.weight[r] !== 1) continue;
    let row = 0;
    for (let i = 0; i < PV; i++) row += (pred[r * PV + i] - t.target[r * PV + i]) ** 2;
    sum += row / PV;
    n++;
  }
  assert.ok(Math.abs(base - sum / n) < 1e-5, `loss ${base}, by hand ${sum / n}`);

  const g = tf.tidy(() => tf.grad((p: tf.Tensor) => maskedPatchLoss(p as tf.Tensor2D, t))(tf.tensor2d(pred, [rows, PV])).dataSync());
  for (let r = 0; r < rows; r++) {
    const rowGrad = g.subarray(r * PV, (r + 1) * PV);
    if (t.weight[r] === 0) assert.ok(rowGrad.every((v) => v === 0), `row ${r} (kept or CLS) has a gradient`);
    else assert.ok(rowGrad.some((v) => v !== 0), `removed row ${r} has no gradient`);
  }
});
