/** End to end on the 'shapes' dataset: determinism (data order, initial weights, masks) and learning (zero-shot
 * top-1 well above chance on held-out data within about a minute), with no tensor growth per step. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { resolveConfig, type PartialTrainConfig } from '../models/config.js';
import { buildModel } from '../models/engine/select.js';
import { DataOrder, train } from '../models/train.js';

test('same seed -> same data order and initial weights; different seed -> different', async () => {
  await selectBackend('wasm');
  const a = new DataOrder(100, 1).next(250);
  assert.deepEqual(a, new DataOrder(100, 1).next(250));
  assert.notDeepEqual(a, new DataOrder(100, 2).next(250));
  assert.deepEqual([...a.slice(0, 100)].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i), 'first epoch is a permutation');

  const weights = async (seed: number) => {
    const m = buildModel(resolveConfig({ seed, model: { preset: 'tiny' } }), 50, 0);
    const out = await Promise.all(m.store.params.map((p) => p.variable.data()));
    const names = m.store.params.map((p) => p.name);
    m.dispose();
    return { names, values: out.map((v) => Array.from(v as Float32Array)) };
  };
  const w1 = await weights(3);
  const w2 = await weights(3);
  const w3 = await weights(4);
  assert.deepEqual(w1.names, w2.names);
  assert.deepEqual(w1.values, w2.values);
  const proj = w1.names.indexOf('image.proj');
  assert.notDeepEqual(w1.values[proj], w3.values[proj]);
  // Two live models of the same seed in one process (tfjs registers variable names globally).
  const a1 = buildModel(resolveConfig({ seed: 3, model: { preset: 'tiny' } }), 50, 0);
  const a2 = buildModel(resolveConfig({ seed: 3, model: { preset: 'tiny' } }), 50, 0);
  assert.deepEqual(Array.from(await a1.imageProj.data()), Array.from(await a2.imageProj.data()));
  a1.dispose();
  a2.dispose();
});

const tinyRun = (over: PartialTrainConfig) =>
  resolveConfig({
    model: { preset: 'tiny' },
    data: { dataset: 'shapes', train_size: 512, eval_size: 64, image_size: 16 },
    train: { steps: 3, batch_size: 32, lr: 2e-3 },
    mask: { image_ratio: 0.5 },
    ...over,
  });

test('two runs of the same config and seed give identical losses; another seed differs', async () => {
  const losses = async (seed: number) => {
    const out: number[] = [];
    await train({ ...tinyRun({}), seed }, { onStep: (_, m) => out.push(m.loss) });
    return out;
  };
  const a = await losses(0);
  assert.equal(a.length, 3);
  assert.deepEqual(a, await losses(0));
  assert.notDeepEqual(a, await losses(1));
});

test('unmasked tuning runs after pre-training: steps continue, lr restarts from the warm-up', async () => {
  const lrs: number[] = [];
  const logs: string[] = [];
  const r = await train(tinyRun({ tune: { steps: 2, warmup: 0 } }), { onStep: (_, m) => lrs.push(m.lr), onLog: (m) => logs.push(m) });
  assert.equal(r.results.steps, 5);
  assert.equal(r.results.tune_steps, 2);
  assert.equal(lrs.length, 5);
  assert.ok(Math.abs(lrs[3] - 2e-5) < 1e-12, `first tuning lr ${lrs[3]}, expected the pre-training peak / 100`);
  assert.ok(logs.some((l) => l.startsWith('unmasked tuning: 2 steps')), logs.join('\n'));
});

test('with loss.reconstruction_weight > 0 the MAE decoder trains and reports reconstruction_loss', async () => {
  const rec: number[] = [];
  await train(tinyRun({ loss: { reconstruction_weight: 1 } }), { onStep: (_, m) => rec.push(m.reconstruction_loss) });
  assert.equal(rec.length, 3);
  assert.ok(rec.every((x) => Number.isFinite(x) && x > 0), `reconstruction losses ${rec}`);
});

test('tiny FLIP run on shapes: zero-shot top-1 >= 3x chance on held-out data, tensors flat per step', async () => {
  const config = resolveConfig({
    model: { preset: 'tiny' },
    data: { dataset: 'shapes', train_size: 4096, eval_size: 256, image_size: 16 },
    train: { steps: 150, batch_size: 64, lr: 2e-3, warmup: 0.1 },
    mask: { image_ratio: 0.5 },
    eval: { every: 0 },
  });
  const before = tf.memory().numTensors;
  const tensorsAtStep: number[] = [];
  const metrics: Record<string, number>[] = [];
  const evals: number[] = [];
  let start: { backend: string; total_steps: number } | null = null;
  const result = await train(config, {
    onStart: (info) => (start = info),
    onStep: (_, m) => {
      tensorsAtStep.push(tf.memory().numTensors);
      metrics.push(m);
    },
    onEval: (step) => evals.push(step),
  });
  assert.deepEqual(start, { backend: 'wasm', device: result.device, total_steps: 150 });
  assert.equal(metrics.length, 150);
  assert.deepEqual(evals, [150]);
  for (const key of ['loss', 'lr', 'logit_scale', 'pairs_per_second', 'elapsed_seconds', 'samples_seen']) {
    assert.ok(Number.isFinite(metrics[10][key]), `step metric ${key}: ${metrics[10][key]}`);
  }
  assert.ok(metrics[149].loss < metrics[0].loss, `loss ${metrics[0].loss} -> ${metrics[149].loss}`);
  assert.ok(tensorsAtStep.slice(2).every((n) => n === tensorsAtStep[2]), `tensor count per step: ${tensorsAtStep.slice(0, 6)} ... ${tensorsAtStep.slice(-3)}`);
  assert.equal(tf.memory().numTensors, before, 'all tensors released after train()');

  const r = result.results;
  const chance = 1 / 35;
  assert.ok(r.zero_shot_top1 >= 3 * chance, `zero-shot top-1 ${r.zero_shot_top1} < 3x chance ${3 * chance}`);
  assert.ok(r.zero_shot_top5 >= r.zero_shot_top1);
  for (const key of ['retrieval_i2t_r1', 'retrieval_i2t_r5', 'retrieval_i2t_r10', 'retrieval_t2i_r1', 'retrieval_t2i_r5', 'retrieval_t2i_r10']) {
    assert.ok(r[key] >= 0 && r[key] <= 1, `${key}: ${r[key]}`);
  }
  assert.ok(r.retrieval_i2t_r10 >= r.retrieval_i2t_r1);
  assert.equal(r.steps, 150);
  assert.equal(r.samples_seen, 150 * 64);
  assert.ok(r.train_flops > 0 && r.peak_memory_bytes > 0 && r.train_seconds > 0);
  console.log(`# shapes tiny run: ${JSON.stringify(r)}`);
});
