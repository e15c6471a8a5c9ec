/** checkConfig problems, ConfigErrors from train() before training, and the analytic cost. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConfig } from '../models/check-config.js';
import { DEFAULTS, resolveConfig } from '../models/config.js';
import { ConfigError } from '../models/events.js';
import { estimateTrainCost, forwardFlops } from '../models/flops.js';
import { lrAt, peakLr, warmupShare } from '../models/optimizer.js';
import { train } from '../models/train.js';

test('the defaults and every preset at its natural image size pass checkConfig', () => {
  assert.deepEqual(checkConfig(DEFAULTS), []);
  for (const preset of ['tiny', 'mini', 'small', 'medium']) assert.deepEqual(checkConfig(resolveConfig({ model: { preset } })), [], preset);
  assert.deepEqual(checkConfig(resolveConfig({ model: { preset: 'B/16' }, data: { image_size: 224 } })), []);
});

test('checkConfig names the key and the values', () => {
  const cases: [Parameters<typeof resolveConfig>[0], string][] = [
    [{ mask: { image_ratio: 1 } }, 'mask.image_ratio: 1 is out of range; allowed [0, 1)'],
    [{ mask: { text_ratio: -0.5 } }, 'mask.text_ratio: -0.5 is out of range; allowed [0, 1)'],
    [{ model: { image: { patch_size: 5 } } }, 'model.image.patch_size: 5 does not divide data.image_size 32'],
    [{ model: { image: { heads: 3 } } }, 'model.image.heads: 3 does not divide width 128'],
    [{ model: { text: { heads: 5 } } }, 'model.text.heads: 5 does not divide width 128'],
    [{ train: { batch_size: 4096 } }, 'train.batch_size: 4096 is bigger than data.train_size 2048'],
    [{ data: { dataset: 'folder' } }, 'data.path: null'],
    [{ eval: { templates: ['no placeholder'] } }, `eval.templates[0]: "no placeholder" has no '{}'`],
    [{ loss: { reconstruction_weight: 1 }, model: { decoder: { heads: 5 } } }, 'model.decoder.heads: 5 does not divide width 96'],
    [{ loss: { reconstruction_weight: -1 } }, 'loss.reconstruction_weight: -1 must be a number >= 0'],
    [{ tune: { steps: 5, fraction: 0.1 } }, 'tune.steps: 5 and tune.fraction 0.1 are both set; set one'],
  ];
  for (const [partial, expected] of cases) {
    const problems = checkConfig(resolveConfig(partial));
    assert.ok(problems.some((p) => p.startsWith(expected)), `expected a problem starting "${expected}", got ${JSON.stringify(problems)}`);
  }
  const unknown = { ...DEFAULTS, model: { ...DEFAULTS.model, preset: 'huge' } };
  assert.ok(checkConfig(unknown).some((p) => p.startsWith('model.preset: "huge" is not one of tiny, mini, small')));
});

test('an unknown preset is refused with the known ones listed', () => {
  assert.throws(() => resolveConfig({ model: { preset: 'huge' } }), /unknown preset "huge"; known presets: tiny/);
});

test('train() throws ConfigError before training for mask ratio 1, a batch bigger than the data, an unknown dataset', async () => {
  const bad: [Parameters<typeof resolveConfig>[0], RegExp][] = [
    [{ mask: { image_ratio: 1 } }, /^mask\.image_ratio: 1 is out of range/],
    [{ train: { batch_size: 4096 } }, /^train\.batch_size: 4096 is bigger than data\.train_size 2048/],
    [{ data: { dataset: 'nope' as 'shapes' } }, /^data\.dataset: "nope" is not one of/],
  ];
  for (const [partial, message] of bad) {
    const steps: number[] = [];
    await assert.rejects(
      () => train(resolveConfig(partial), { onStep: (s) => steps.push(s) }),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
    );
    assert.equal(steps.length, 0);
  }
});

test('estimateTrainCost: budgets, first reached wins, default steps', () => {
  const base = resolveConfig({});
  const perStep = 3 * forwardFlops(base);
  assert.deepEqual(estimateTrainCost(base), { steps: 100, samples: 6400, flops_per_step: perStep, total_flops: 100 * perStep, tune_steps: 0 });
  const tuned = estimateTrainCost(resolveConfig({ mask: { image_ratio: 0.5 }, tune: { fraction: 0.1 } }));
  assert.equal(tuned.tune_steps, 10);
  assert.equal(tuned.samples, 100 * 64);
  assert.ok(tuned.total_flops > 100 * tuned.flops_per_step, 'tuning FLOPs are counted');
  assert.equal(estimateTrainCost(resolveConfig({ train: { steps: 50, samples: 640 } })).steps, 10);
  assert.equal(estimateTrainCost(resolveConfig({ train: { epochs: 2 } })).steps, 64);
  assert.ok(estimateTrainCost(resolveConfig({ train: { time_budget_s: 60 } })).steps >= 1);
  // Masking 75% of the patches cuts the image tower's FLOPs by more than half.
  const masked = 3 * forwardFlops(resolveConfig({ mask: { image_ratio: 0.75 } }));
  assert.ok(masked < 0.5 * perStep, `masked ${masked} vs unmasked ${perStep}`);
});

test('learning rate: base_lr x batch / 256, linear warm-up, cosine to 0', () => {
  assert.equal(peakLr(resolveConfig({ train: { base_lr: 1e-3, batch_size: 512 } })), 2e-3);
  assert.equal(peakLr(resolveConfig({ train: { lr: 5e-4 } })), 5e-4);
  assert.equal(warmupShare(10, 100), 0.1);
  assert.equal(warmupShare(0.2, 100), 0.2);
  assert.equal(lrAt(1, 0.1, 0), 0);
  assert.ok(Math.abs(lrAt(1, 0.1, 0.05) - 0.5) < 1e-12);
  assert.equal(lrAt(1, 0.1, 0.1), 1);
  assert.ok(Math.abs(lrAt(1, 0.1, 0.55) - 0.5) < 1e-12);
  assert.ok(lrAt(1, 0.1, 1) < 1e-12);
});

test('a diverging run stops with "non-finite loss at step N"', async () => {
  const config = resolveConfig({
    model: { preset: 'tiny' },
    data: { train_size: 128, eval_size: 32, image_size: 16 },
    train: { steps: 20, batch_size: 32, lr: 1e38, warmup: 0 },
  });
  await assert.rejects(() => train(config, {}), /non-finite loss at step \d+/);
});

test('backends: webgpu and tensorflow fail with a clear message when not installed; auto falls back to wasm', async () => {
  const { selectBackend } = await import('../models/backend.js');
  await assert.rejects(() => selectBackend('tensorflow'), /needs @tensorflow\/tfjs-node-gpu or @tensorflow\/tfjs-node/);
  await assert.rejects(() => selectBackend('webgpu'), /backend 'webgpu' needs the npm package "webgpu"|no GPU adapter/);
  const logs: string[] = [];
  const info = await selectBackend('auto', (m) => logs.push(m));
  assert.equal(info.backend, 'wasm');
  assert.equal(logs.length, 2, `fallback log lines: ${logs}`);
});
