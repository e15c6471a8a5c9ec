/** FLIP Table 1e, unmasked tuning: it continues from the pre-trained weights (loss continuity), with a fresh AdamW
 * (zero moments: the first update of every parameter is lr x sign(gradient)), and reports the evaluation right
 * before tuning as pretune_* next to the final one. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpointMeta, WEIGHTS_FILE } from '../models/checkpoint.js';
import { resolveConfig } from '../models/config.js';
import type { TrainResult } from '../models/events.js';
import { tunePeakLr } from '../models/optimizer.js';
import { PRETUNE_PREFIX, train } from '../models/train.js';
import { tempDir } from './helpers.js';

const PRETRAIN = 40;
const config = resolveConfig({
  model: { preset: 'tiny' },
  data: { dataset: 'shapes', train_size: 1024, eval_size: 64, image_size: 16 },
  train: { steps: PRETRAIN, batch_size: 32, lr: 3e-3, warmup: 0.1 },
  mask: { image_ratio: 0.5 },
  tune: { steps: 1, warmup: 0 },
});
const dir = tempDir('flip-tune-');
const losses: number[] = [];
const evals: { step: number; metrics: Record<string, number> }[] = [];
let result: TrainResult;

before(async () => {
  result = await train(config, { onStep: (_, m) => losses.push(m.loss), onEval: (step, metrics) => evals.push({ step, metrics }) }, { checkpointDir: dir });
});

function weights(stage: string): Map<string, Float32Array> {
  const meta = readCheckpointMeta(join(dir, stage));
  const b = readFileSync(join(dir, stage, WEIGHTS_FILE));
  const flat = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  return new Map(meta.params.map((p) => [p.name, flat.subarray(p.offset, p.offset + p.length)]));
}

test('tuning starts from the pre-trained weights: its first loss is close to the last pre-training loss, far below a fresh model', () => {
  assert.equal(losses.length, PRETRAIN + 1);
  const fresh = losses[0]; // step 1's loss is computed with the initial weights
  const lastPre = losses[PRETRAIN - 1];
  const firstTune = losses[PRETRAIN];
  assert.ok(fresh - lastPre > 0.5, `pre-training barely learned: ${fresh} -> ${lastPre}`);
  assert.ok(Math.abs(firstTune - lastPre) < 0.25 * (fresh - lastPre), `first tuning loss ${firstTune}, last pre-training ${lastPre}, fresh model ${fresh}`);
});

test('tuning uses a fresh optimizer: the first update moves every no-decay parameter by exactly lr x sign(g) (or 0)', () => {
  const pre = weights('pretrain');
  const fin = weights('final');
  const meta = readCheckpointMeta(join(dir, 'final'));
  assert.equal(meta.step, PRETRAIN + 1);
  assert.equal(readCheckpointMeta(join(dir, 'pretrain')).step, PRETRAIN);
  const lr = tunePeakLr(config); // warm-up 0: the first tuning step runs at the peak
  // Weight decay would add lr x wd x p on matrices; the moments-only part is checked where decay is off.
  const noDecay = ['logit_scale', 'image.cls', 'image.patch.b', 'text.positions'].concat([...pre.keys()].filter((n) => /\.(gamma|beta|b[qkvo]?|b1|b2)$/.test(n)));
  let moved = 0;
  let atLr = 0;
  for (const name of new Set(noDecay)) {
    const a = pre.get(name);
    const b = fin.get(name);
    if (!a || !b) continue;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(b[i] - a[i]);
      assert.ok(d <= lr * 1.05 + 1e-7, `${name}[${i}] moved ${d}, more than lr ${lr}: not a first Adam step`);
      if (d > 0) {
        moved++;
        if (Math.abs(d - lr) < 0.05 * lr + 2e-7) atLr++;
      }
    }
  }
  assert.ok(moved > 500, `only ${moved} no-decay values moved`);
  assert.ok(atLr > 0.9 * moved, `${atLr} of ${moved} moved values moved by lr ${lr} (a carried-over optimizer state gives varied steps)`);
});

test('the evaluation right before tuning is emitted at the pre-tuning step and reported as pretune_*', () => {
  assert.deepEqual(evals.map((e) => e.step), [PRETRAIN, PRETRAIN + 1]);
  const r = result.results;
  for (const [key, value] of Object.entries(evals[0].metrics)) assert.equal(r[PRETUNE_PREFIX + key], value, key);
  for (const [key, value] of Object.entries(evals[1].metrics)) assert.equal(r[key], value, key);
  for (const key of ['zero_shot_top1', 'zero_shot_top5', 'retrieval_i2t_r1', 'retrieval_t2i_r1']) assert.ok(Number.isFinite(r[PRETUNE_PREFIX + key]), key);
  assert.ok(r.pretune_train_seconds > 0 && r.pretune_train_seconds < r.train_seconds, `pretune ${r.pretune_train_seconds} s, total ${r.train_seconds} s`);
  assert.equal(r.steps, PRETRAIN + 1);
  assert.equal(r.tune_steps, 1);
  assert.deepEqual(result.artifacts, { pretrain: join(dir, 'pretrain'), final: join(dir, 'final') });
});
