/**
 * Mid-training resume (models/resume.ts): a run stopped after its last saved state and started again with the same
 * checkpoint directory continues from that state and ends with exactly the numbers of a run never stopped, on each
 * engine, with evaluations during training, text masking and unmasked tuning; the states are written atomically and
 * removed once the run finishes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../models/backend.js';
import { deepMerge, resolveConfig, type PartialTrainConfig } from '../models/config.js';
import type { StartInfo, TrainResult } from '../models/events.js';
import { resumeStep } from '../models/resume.js';
import { DataOrder, train } from '../models/train.js';

const BASE: PartialTrainConfig = {
  model: { preset: 'tiny', text: { context_length: 12 } },
  data: { dataset: 'shapes', train_size: 96, eval_size: 32, image_size: 16 },
  mask: { image_ratio: 0.5 },
  // States by steps only (at 5, 10, 15), so where the run stops decides which state the rerun finds.
  train: { batch_size: 16, steps: 18, base_lr: 0.004, warmup: 0.2, checkpoint_every: 5, checkpoint_every_s: null },
  eval: { every: 6 },
};
const config = (over: PartialTrainConfig) => resolveConfig(deepMerge(BASE, over));

class Stop extends Error {}

/** One run into dir; stopAt: throw from the step event of that step (as a kill would end it there). */
async function run(over: PartialTrainConfig, dir: string, stopAt?: number): Promise<{ result?: TrainResult; start?: StartInfo; losses: number[] }> {
  const losses: number[] = [];
  let start: StartInfo | undefined;
  try {
    const result = await train(
      config(over),
      {
        onStart: (info) => (start = info),
        onStep: (step, m) => {
          losses[step] = m.loss;
          if (step === stopAt) throw new Stop(`stopped at step ${step}`);
        },
      },
      { checkpointDir: dir },
    );
    return { result, start, losses };
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    return { start, losses };
  }
}

const CASES: [string, PartialTrainConfig, Record<string, string>][] = [
  ['native engine, image mask 0.5', {}, {}],
  ['autodiff engine, text mask 0.5', { mask: { image_ratio: 0.25, text_ratio: 0.5 } }, { FLIP_ENGINE: 'autodiff' }],
  ['unmasked tuning after pre-training', { tune: { steps: 4 } }, {}],
];

for (const [what, over, env] of CASES) {
  test(`resume (${what}): stopped after its last saved state, the rerun starts there and ends with the uninterrupted run's numbers`, async () => {
    await selectBackend('wasm');
    Object.assign(process.env, env);
    const root = mkdtempSync(join(tmpdir(), 'flip-resume-'));
    try {
      const whole = await run(over, join(root, 'whole'));
      assert.equal(whole.start?.resumed_from_step, undefined, 'a fresh run resumes nothing');
      assert.ok(whole.result);
      assert.equal(existsSync(join(root, 'whole', 'resume')), false, 'a finished run leaves no resume state');

      const dir = join(root, 'stopped');
      const first = await run(over, dir, 13);
      assert.equal(first.result, undefined);
      assert.equal(resumeStep(join(dir, 'resume')), 10, 'states at steps 5 and 10; the last one is kept');
      assert.deepEqual(readdirSync(join(dir, 'resume')).sort(), ['latest.json', 'step-000010']);

      const second = await run(over, dir);
      assert.equal(second.start?.resumed_from_step, 10);
      assert.ok(second.result);
      assert.equal(second.losses.findIndex((x) => x !== undefined), 11, 'the rerun trains from step 11');
      for (let s = 11; s <= 13; s++) assert.equal(second.losses[s], first.losses[s], `step ${s}: the same loss as before the stop`);
      const [a, b] = [whole.result!.results, second.result!.results];
      assert.equal(b.final_loss, a.final_loss, 'final loss');
      for (const k of ['zero_shot_top1', 'zero_shot_top5', 'retrieval_i2t_r1', 'retrieval_t2i_r1', 'steps', 'samples_seen', 'tune_steps']) {
        assert.equal(b[k], a[k], k);
      }
      assert.equal(existsSync(join(dir, 'resume')), false, 'the resumed run, finished, leaves no state');
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test('a state is named only once complete: a torn newer state beside latest.json is ignored and replaced', async () => {
  await selectBackend('wasm');
  const root = mkdtempSync(join(tmpdir(), 'flip-resume-'));
  try {
    await run({}, root, 7);
    // A crash while writing the state of step 10: its folder exists, half written, latest.json still names step 5.
    writeFileSync(join(root, 'resume', 'step-000010'), 'half');
    assert.equal(resumeStep(join(root, 'resume')), 5);
    const again = await run({}, root);
    assert.equal(again.start?.resumed_from_step, 5);
    assert.ok(again.result);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the data order continues from a saved position exactly, across epoch boundaries', () => {
  const a = new DataOrder(10, 3);
  a.next(13);
  const at = a.position();
  const rest = a.next(25);
  const b = new DataOrder(10, 99);
  b.restore(at);
  assert.deepEqual(b.next(25), rest);
  assert.throws(() => new DataOrder(11, 3).restore(at), /a position in 10 examples \(at 3\) for an order over 11/);
});
