/** Ablation settings that cannot mean what they say are refused before any training step, with a message that starts
 * with the config key and gives the value found and what is allowed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConfig } from '../models/check-config.js';
import { deepMerge, resolveConfig, type PartialTrainConfig } from '../models/config.js';
import { evaluateCheckpoint } from '../models/evaluate-checkpoint.js';
import { ConfigError } from '../models/events.js';
import { train } from '../models/train.js';

const tiny = (over: PartialTrainConfig) =>
  resolveConfig(deepMerge<PartialTrainConfig>({ model: { preset: 'tiny' }, data: { train_size: 128, eval_size: 32, image_size: 16 }, train: { steps: 10, batch_size: 16 } }, over));

const CASES: [string, PartialTrainConfig, RegExp][] = [
  ['text ratio above 1', { mask: { text_ratio: 1.2 } }, /^mask\.text_ratio: 1\.2 is out of range; allowed \[0, 1\)/],
  ['negative text ratio', { mask: { text_ratio: -0.1 } }, /^mask\.text_ratio: -0\.1 is out of range; allowed \[0, 1\)/],
  ['unknown text strategy', { mask: { text_ratio: 0.5, text_strategy: 'longest' as 'random' } }, /^mask\.text_strategy: "longest" is not one of random, prioritized, truncate/],
  ['text masking that leaves the start token alone', { mask: { text_ratio: 0.95 } }, /^mask\.text_ratio: 0\.95 keeps 1 of 16 tokens .*at least 2 are needed, allowed <= 0\.875/],
  ['a decoder on an unmasked run', { loss: { reconstruction_weight: 0.5 } }, /^loss\.reconstruction_weight: 0\.5 with mask\.image_ratio 0: no patch is removed, nothing to reconstruct/],
  ['tune.fraction above 1', { mask: { image_ratio: 0.5 }, tune: { fraction: 1.5 } }, /^tune\.fraction: 1\.5 is out of range; allowed \[0, 1\]/],
  ['tune.steps longer than pre-training', { mask: { image_ratio: 0.5 }, tune: { steps: 11 } }, /^tune\.steps: 11 is more than the 10 pre-training steps the budget allows; allowed <= 10/],
  ['tune.steps longer than a sample budget', { mask: { image_ratio: 0.5 }, train: { steps: null, samples: 64 }, tune: { steps: 5 } }, /^tune\.steps: 5 is more than the 4 pre-training steps/],
  ['tune.base_lr without tuning', { tune: { base_lr: 1e-5 } }, /^tune\.base_lr: 0\.00001 is set but unmasked tuning is off/],
];

test('checkConfig: each bad ablation setting gives one problem naming its key, the value and what is allowed', () => {
  for (const [name, partial, pattern] of CASES) {
    const problems = checkConfig(tiny(partial));
    assert.ok(problems.some((p) => pattern.test(p)), `${name}: expected ${pattern}, got ${JSON.stringify(problems)}`);
  }
});

test('limits are inclusive where they say so: tuning as long as pre-training, 2 text tokens, a decoder on a masked run', () => {
  const ok: PartialTrainConfig[] = [
    { mask: { image_ratio: 0.5 }, tune: { steps: 10 } },
    { mask: { image_ratio: 0.5 }, tune: { fraction: 1 } },
    { mask: { image_ratio: 0.5 }, tune: { steps: 2, base_lr: 1e-5 } },
    { mask: { text_ratio: 0.875, text_strategy: 'prioritized' } },
    { mask: { image_ratio: 0.75 }, loss: { reconstruction_weight: 1 } },
    { train: { steps: null, time_budget_s: 5 }, tune: { steps: 50 } }, // pre-training length unknown before running
  ];
  for (const partial of ok) assert.deepEqual(checkConfig(tiny(partial)), [], JSON.stringify(partial));
});

test('train() and evaluateCheckpoint() throw the ConfigError before any step or any loading', async () => {
  for (const [name, partial, pattern] of CASES) {
    const steps: number[] = [];
    await assert.rejects(
      () => train(tiny(partial), { onStep: (s) => steps.push(s) }),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
      name,
    );
    assert.equal(steps.length, 0, name);
  }
  await assert.rejects(
    () => evaluateCheckpoint(tiny({ mask: { text_ratio: 1.2 } }), '/nonexistent', {}),
    (e: unknown) => e instanceof ConfigError && e.key === 'mask.text_ratio',
  );
});
