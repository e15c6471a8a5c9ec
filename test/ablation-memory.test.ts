/** FLIP's memory claim at the scale of a unit test: a training step's peak tensor bytes (what train() reports as
 * peak_memory_bytes and bench-memory searches over) falls with the image mask ratio at a fixed batch, and the part
 * that grows with the batch shrinks with the kept patches. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectBackend } from '../models/backend.js';
import { deepMerge, resolveConfig, type PartialTrainConfig, type TrainConfig } from '../models/config.js';
import { buildModel } from '../models/engine/select.js';
import { makeRng } from '../models/random.js';
import { buildTrainBatch, train } from '../models/train.js';
import { createEngine } from '../models/engine/select.js';

const base = resolveConfig({ model: { preset: 'tiny' }, data: { train_size: 64, eval_size: 16, image_size: 16 } });

async function stepPeak(ratio: number, batch: number): Promise<number> {
  const config = deepMerge<TrainConfig>(base, { mask: { image_ratio: ratio }, train: { batch_size: batch } });
  const model = buildModel(config, 50, 0);
  const engine = createEngine(model);
  const opt = engine.createOptimizer({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.2 });
  const rng = makeRng(1);
  const examples = Array.from({ length: batch }, () => ({ image: Float32Array.from({ length: 16 * 16 * 3 }, () => rng()), caption: '', label: 0 }));
  const ids = Array.from({ length: batch }, () => Int32Array.from({ length: 16 }, (_, i) => (i === 0 ? 1 : i < 6 ? 3 + Math.floor(rng() * 40) : i === 6 ? 2 : 0)));
  try {
    const { out, bytes } = await engine.profiledStep(buildTrainBatch(config, examples, ids, model, rng), opt, 1e-4);
    out.dispose();
    return bytes;
  } finally {
    opt.dispose();
    model.dispose();
  }
}

test('peak bytes of a step fall with the mask ratio; the per-pair part shrinks with the kept patches', async () => {
  await selectBackend('wasm');
  const peaks: Record<number, [number, number]> = {};
  for (const ratio of [0, 0.5, 0.75]) peaks[ratio] = [await stepPeak(ratio, 8), await stepPeak(ratio, 16)];
  const perPair = (r: number) => (peaks[r][1] - peaks[r][0]) / 8;
  assert.ok(peaks[0][1] > peaks[0.5][1] && peaks[0.5][1] > peaks[0.75][1], `batch 16 peaks ${JSON.stringify(peaks)}`);
  // The image tower's share of the per-pair bytes scales with tokens (17 at 0.75 vs 65 at 0); the text tower's does not.
  assert.ok(perPair(0.75) < 0.7 * perPair(0), `per pair: mask 0 ${perPair(0)}, mask 0.75 ${perPair(0.75)}`);
  assert.ok(perPair(0.75) > 0.2 * perPair(0), 'the text tower still costs memory per pair');
});

test('train() reports the step peak as peak_memory_bytes, lower with masking', async () => {
  const run = async (over: PartialTrainConfig) => (await train(deepMerge(base, deepMerge<PartialTrainConfig>({ train: { steps: 1, batch_size: 16 } }, over)), {})).results.peak_memory_bytes;
  const unmasked = await run({});
  const masked = await run({ mask: { image_ratio: 0.75 } });
  assert.ok(masked < unmasked, `masked ${masked}, unmasked ${unmasked}`);
  assert.ok(unmasked > 10 * 4 * 200_000, `peak ${unmasked} bytes is about the weights alone: activations are missing`);
});
