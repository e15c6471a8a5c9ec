/** Checkpoints: a save / load round trip gives identical parameters and outputs in a fresh model; a checkpoint that
 * does not fit the config is refused naming the parameters; evaluateCheckpoint reproduces the evaluation train() ran
 * on the same weights (same inference mode, same eval split), so evaluation-only sweep jobs can reuse trained runs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint } from '../models/checkpoint.js';
import { deepMerge, resolveConfig, type PartialTrainConfig } from '../models/config.js';
import { WordTokenizer } from '../models/data/word-tokenizer.js';
import { evaluateCheckpoint } from '../models/evaluate-checkpoint.js';
import { ConfigError } from '../models/events.js';
import { fullPositions } from '../models/flip-model.js';
import type { FlipModel } from '../models/flip-model.js';
import { buildModel } from '../models/engine/select.js';
import { makeRng } from '../models/random.js';
import { train } from '../models/train.js';
import { allIndices } from '../models/vit.js';
import type { JobMessage, JobRequest } from '../framework/run/messages.js';
import { ROOT, tempDir } from './helpers.js';

const tiny = (over: PartialTrainConfig = {}) =>
  resolveConfig(deepMerge<PartialTrainConfig>({ model: { preset: 'tiny' }, data: { dataset: 'shapes', train_size: 256, eval_size: 48, image_size: 16 } }, over));

test('round trip: a fresh model loaded from a checkpoint has the same parameters and the same outputs', async () => {
  await selectBackend('wasm');
  const config = tiny({ seed: 1, loss: { reconstruction_weight: 1 }, mask: { image_ratio: 0.5 } });
  const tokenizer = WordTokenizer.fromCaptions(['a red circle', 'a blue small square', 'green triangle'], 20);
  const model = buildModel(config, tokenizer.vocabSize, tokenizer.padId);
  const dir = join(tempDir('flip-ckpt-'), 'x');
  await saveCheckpoint(dir, model, config, tokenizer, { step: 7, stage: 'test' });
  const meta = readCheckpointMeta(dir);
  assert.equal(meta.step, 7);
  assert.deepEqual(meta.tokenizer, { name: 'word', words: [...tokenizer.words] });
  assert.deepEqual(meta.config, config);

  const other = { ...config, seed: 2 }; // different initial weights before loading
  const loaded = await loadCheckpoint(dir, other);
  const rng = makeRng(5);
  const images = Array.from({ length: 3 }, () => Float32Array.from({ length: 16 * 16 * 3 }, () => rng()));
  const ids = Int32Array.from([1, 4, 5, 2, 0, 0, 1, 6, 2, 0, 0, 0, 1, 7, 8, 9, 2, 0]);
  const outputs = (m: FlipModel) =>
    tf.tidy(() => [
      Array.from(m.embedImages(m.image.tokens(images, allIndices(3, 16)), 3).dataSync()),
      Array.from(m.embedTexts(ids, fullPositions(3, 6), 3).dataSync()),
    ]);
  const fresh = buildModel(other, tokenizer.vocabSize, tokenizer.padId);
  try {
    assert.equal(loaded.tokenizer.vocabSize, tokenizer.vocabSize);
    assert.deepEqual((loaded.tokenizer as WordTokenizer).words, tokenizer.words);
    assert.deepEqual(loaded.model.store.params.map((p) => p.name), model.store.params.map((p) => p.name));
    for (let i = 0; i < model.store.params.length; i++) {
      assert.deepEqual(loaded.model.store.params[i].variable.dataSync(), model.store.params[i].variable.dataSync(), model.store.params[i].name);
    }
    assert.deepEqual(outputs(loaded.model), outputs(model));
    assert.notDeepEqual(outputs(fresh), outputs(model), 'the seed-2 model differs before loading');
  } finally {
    model.dispose();
    loaded.model.dispose();
    fresh.dispose();
  }
});

test('a checkpoint that does not fit the config is refused, naming the parameters and shapes', async () => {
  await selectBackend('wasm');
  const config = tiny();
  const tokenizer = WordTokenizer.fromCaptions(['a red circle'], 20);
  const model = buildModel(config, tokenizer.vocabSize, tokenizer.padId);
  const dir = tempDir('flip-ckpt-');
  await saveCheckpoint(dir, model, config, tokenizer, { step: 0, stage: 'test' });
  model.dispose();
  const refuse = async (over: PartialTrainConfig, pattern: RegExp) =>
    assert.rejects(() => loadCheckpoint(dir, tiny(over)), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
  await refuse({ model: { embed_dim: 32 } }, /^model: checkpoint .*: 2 differences: image\.proj: checkpoint \[64, 64\], config wants \[64, 32\]; text\.proj/);
  await refuse({ model: { image: { depth: 3 } } }, /missing parameter image\.block2\./);
  await refuse({ loss: { reconstruction_weight: 1 }, mask: { image_ratio: 0.5 } }, /missing parameter decoder\./);
  await refuse({ data: { image_size: 32 } }, /^data\.image_size: 32 but checkpoint .* trained at 16/);
  await assert.rejects(() => loadCheckpoint(join(dir, 'nope'), config), /cannot read checkpoint\.json/);
});

test('evaluateCheckpoint gives the same numbers as the evaluation at the end of training (masked inference)', async () => {
  const config = tiny({ train: { steps: 4, batch_size: 32, lr: 2e-3 }, mask: { image_ratio: 0.5 }, eval: { inference: 'masked' } });
  const dir = tempDir('flip-ckpt-');
  const evals: Record<string, number>[] = [];
  const trained = await train(config, { onEval: (_, m) => evals.push(m) }, { checkpointDir: dir });
  // No tuning: only pretrain/ is written and 'final' names it.
  assert.deepEqual(trained.artifacts, { pretrain: join(dir, 'pretrain'), final: join(dir, 'pretrain') });
  assert.ok(!existsSync(join(dir, 'final')));
  assert.match(readCheckpointMeta(join(dir, 'pretrain')).note ?? '', /final weights are these pre-training weights/);

  let started = 0;
  const evalSteps: number[] = [];
  const r = await evaluateCheckpoint(config, trained.artifacts!.final, { onStart: () => started++, onEval: (step) => evalSteps.push(step) });
  assert.equal(started, 1);
  assert.deepEqual(evalSteps, [4]);
  assert.deepEqual(r.results, { ...evals[evals.length - 1], evaluated_step: 4 });
  for (const key of ['train_seconds', 'steps', 'samples_seen', 'final_loss']) assert.ok(!(key in r.results), `evaluation-only result has ${key}`);

  // Another inference mode on the same weights: an evaluation-only job of the sweep.
  const unmasked = await evaluateCheckpoint({ ...config, eval: { ...config.eval, inference: 'unmasked' } }, trained.artifacts!.final, {});
  assert.equal(unmasked.results.evaluated_step, 4);
  assert.ok(unmasked.results.zero_shot_top1 >= 0 && unmasked.results.zero_shot_top1 <= 1);
});

/** Runs one job process the way the local executor does and collects its messages. */
function runJob(request: JobRequest): Promise<{ code: number | null; messages: JobMessage[] }> {
  return new Promise((resolve, reject) => {
    const child = fork(join(ROOT, 'framework/run/job-process.ts'), [], { execArgv: ['--import', 'tsx'], cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const messages: JobMessage[] = [];
    child.on('message', (m) => messages.push(m as JobMessage));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, messages }));
    child.send(request);
  });
}

test('job process: checkpoint_dir saves and reports artifacts; evaluate_checkpoint evaluates without training', async () => {
  const config = tiny({ train: { steps: 3, batch_size: 16 }, mask: { image_ratio: 0.5 }, tune: { steps: 1 } });
  const dir = tempDir('flip-job-');
  const trained = await runJob({ type: 'run', config, checkpoint_dir: dir });
  assert.equal(trained.code, 0, JSON.stringify(trained.messages.filter((m) => m.type === 'error')));
  const result = trained.messages.find((m) => m.type === 'result');
  assert.ok(result && result.type === 'result');
  assert.deepEqual(result.artifacts, { pretrain: join(dir, 'pretrain'), final: join(dir, 'final') });
  assert.ok('pretune_zero_shot_top1' in result.results);

  const evaluated = await runJob({ type: 'run', config, evaluate_checkpoint: result.artifacts!.final });
  assert.equal(evaluated.code, 0);
  assert.equal(evaluated.messages.filter((m) => m.type === 'step').length, 0, 'an evaluation-only job trains no step');
  const er = evaluated.messages.find((m) => m.type === 'result');
  assert.ok(er && er.type === 'result');
  assert.equal(er.results.evaluated_step, 4);
  assert.equal(er.results.zero_shot_top1, result.results.zero_shot_top1);
  assert.equal(er.artifacts, undefined);

  const missing = await runJob({ type: 'run', config: tiny({ model: { embed_dim: 32 } }), evaluate_checkpoint: result.artifacts!.final });
  assert.equal(missing.code, 1);
  const error = missing.messages.find((m) => m.type === 'error');
  assert.ok(error && error.type === 'error' && error.config && /^model: checkpoint .* image\.proj/.test(error.message), JSON.stringify(error));
});
