/**
 * The trainer's public entry: train(config, events, options). Selects the backend, loads data, builds the tokenizer,
 * the model and the engine that trains it (models/engine/select.ts), trains with AdamW (warm-up + cosine) until the
 * first budget is reached, evaluates every eval.every steps and at the end, and returns the final numbers. With
 * unmasked tuning it also evaluates right before tuning and reports those numbers with a 'pretune_' prefix. With
 * options.checkpointDir it saves <dir>/pretrain (end of pre-training) and <dir>/final (after tuning; when no tuning
 * ran, 'final' names the pretrain directory).
 *
 * peak_memory_bytes is the high point of a training step's activations and gradients as the engine measures it on the
 * first step of pre-training and of tuning (Engine.profiledStep; every later step of a phase has the same shapes): on
 * the autodiff engine the peak of tf.memory().numBytes over the step's kernels (tf.profile), on the native engine the
 * tensors plus its own buffers; both plus the native kernels' scratch. AdamW moments kept in JS arrays on wasm are not
 * included. peak_rss_bytes is the largest process RSS sampled after each step.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from './backend.js';
import { checkConfig } from './check-config.js';
import { saveCheckpoint } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import type { Dataset, Example } from './data/dataset.js';
import { loadDataset } from './data/load.js';
import { makeTokenizer } from './data/make-tokenizer.js';
import { evaluate } from './evaluate.js';
import { ConfigError, TrainingStopped, type TrainEvents, type TrainResult } from './events.js';
import { trainStep, type Engine } from './engine/engine.js';
import { buildModel, createEngine } from './engine/select.js';
import { concatIds, FlipModel, fullPositions, maskText, type ModelBatch } from './flip-model.js';
import { estimateTrainCost } from './flops.js';
import { AdamW, lrAt, peakLr, tunePeakLr, tuneStepCount, warmupShare } from './optimizer.js';
import { deriveSeed, makeRng, permutation, type Rng } from './random.js';
import { clearResumeState, loadResumeState, saveResumeState, type ResumeState } from './resume.js';
import { resumeDirOf } from './resume-dir.js';
import { allIndices, extractPatches, keepCount, sampleKeepIndices } from './vit.js';
import { maeTargets } from './nn/mae-decoder.js';
import { disposeConstants } from './nn/constants.js';

export interface TrainOptions {
  /** Save checkpoints under this directory: pretrain/ at the end of pre-training, final/ after unmasked tuning. */
  checkpointDir?: string;
  /** Once aborted, pre-training stops at the next step boundary after saving a resume state, throwing TrainingStopped. */
  stopSignal?: AbortSignal;
}

/** Evaluation metrics that the pre-tuning evaluation reports with this prefix (pretune_zero_shot_top1, ...). */
export const PRETUNE_PREFIX = 'pretune_';

/** Throws a ConfigError naming the first problem's key and listing every problem. */
export function assertConfig(config: TrainConfig): void {
  const problems = checkConfig(config);
  if (problems.length > 0) {
    const key = problems[0].slice(0, problems[0].indexOf(':'));
    throw new ConfigError(key, problems.join('; ').slice(key.length + 2));
  }
}

function adamwOptions(config: TrainConfig) {
  const t = config.train;
  return { beta1: t.beta1, beta2: t.beta2, eps: t.eps, weightDecay: t.weight_decay };
}

/** Epoch-wise shuffled order over the training split, continuing across epoch boundaries. */
export class DataOrder {
  private perm: Int32Array;
  private pos = 0;
  private readonly rng: Rng;

  constructor(readonly size: number, seed: number) {
    this.rng = makeRng(deriveSeed(seed, 'data'));
    this.perm = permutation(size, this.rng);
  }

  /** Where the order stands: its RNG state, the current permutation and the position in it. */
  position(): { rng: number; perm: Int32Array; pos: number } {
    return { rng: this.rng.state(), perm: this.perm.slice(), pos: this.pos };
  }

  /** Continues from a saved position of an order over the same split. */
  restore(at: { rng: number; perm: Int32Array; pos: number }): void {
    if (at.perm.length !== this.size || at.pos < 0 || at.pos > this.size) {
      throw new Error(`DataOrder.restore: a position in ${at.perm.length} examples (at ${at.pos}) for an order over ${this.size}`);
    }
    this.rng.restore(at.rng);
    this.perm = at.perm.slice();
    this.pos = at.pos;
  }

  next(count: number): number[] {
    const out: number[] = [];
    while (out.length < count) {
      if (this.pos === this.size) {
        this.perm = permutation(this.size, this.rng);
        this.pos = 0;
      }
      out.push(this.perm[this.pos++]);
    }
    return out;
  }
}

/** Host-side batch: kept patches of every image, token ids (text-masked when configured). */
export function buildTrainBatch(
  config: TrainConfig,
  examples: Example[],
  captionIds: Int32Array[],
  model: FlipModel,
  maskRng: () => number,
): ModelBatch {
  const b = examples.length;
  const vit = model.image;
  const keep = sampleKeepIndices(b, vit.numPatches, keepCount(vit.numPatches, config.mask.image_ratio), maskRng);
  const images = examples.map((x) => x.image);
  const image = vit.tokens(images, keep);
  const mae = model.decoder
    ? maeTargets(extractPatches(images, vit.imageSize, vit.cfg.patch_size, allIndices(b, vit.numPatches)), keep, b, vit.numPatches, vit.patchValues)
    : undefined;
  let ids = concatIds(captionIds);
  let positions = fullPositions(b, config.model.text.context_length);
  if (config.mask.text_ratio > 0) {
    const masked = maskText(ids, b, config.mask.text_ratio, config.mask.text_strategy, model.padId, maskRng);
    ids = masked.ids;
    positions = masked.positions;
  }
  return { size: b, image, mae, ids, positions };
}

export async function train(config: TrainConfig, events: TrainEvents, options: TrainOptions = {}): Promise<TrainResult> {
  const setupStart = performance.now();
  assertConfig(config);
  const log = (msg: string) => events.onLog?.(msg);
  const backend = await selectBackend(config.backend, log);
  const dataset: Dataset = await loadDataset(config);
  if (dataset.imageSize !== config.data.image_size) {
    throw new ConfigError('data.image_size', `${config.data.image_size} but dataset '${dataset.name}' gives ${dataset.imageSize}`);
  }
  if (config.train.batch_size > dataset.train.size) {
    throw new ConfigError('train.batch_size', `${config.train.batch_size} is bigger than the training split (${dataset.train.size} examples)`);
  }
  const ctx = config.model.text.context_length;
  // A streaming source (WebDataset) has no train.get: its vocabulary comes from the captions of one epoch's length of
  // samples, and its captions are encoded batch by batch in runStep.
  const captions: string[] = dataset.stream ? await dataset.stream.captions(dataset.train.size) : [];
  for (let i = 0; !dataset.stream && i < dataset.train.size; i++) captions.push(dataset.train.get(i).caption);
  const tokenizer = await makeTokenizer(config.model.text, captions);
  const captionIds = dataset.stream ? [] : captions.map((c) => tokenizer.encode(c, ctx));
  log(`data '${dataset.name}': ${dataset.train.size} train / ${dataset.eval.size} eval pairs; vocabulary ${tokenizer.vocabSize}`);

  const model = buildModel(config, tokenizer.vocabSize, tokenizer.padId);
  const engine = createEngine(model, log);
  const optimizer = engine.createOptimizer(adamwOptions(config));
  try {
    return await runTraining(config, events, backend, dataset, tokenizer, captionIds, engine, optimizer, options, (performance.now() - setupStart) / 1000);
  } finally {
    optimizer.dispose();
    engine.dispose();
    model.dispose();
    disposeConstants();
    await dataset.stream?.close();
  }
}

/** Whether `signal` fired. Steps can chain on resolved promises without ever reaching the event loop, where signal
 * handlers (SIGTERM) run: one macrotask turn lets them. */
async function stopRequested(signal: AbortSignal): Promise<boolean> {
  await new Promise((resolve) => setImmediate(resolve));
  return signal.aborted;
}

async function runTraining(
  config: TrainConfig,
  events: TrainEvents,
  backend: { backend: string; device: string },
  dataset: Dataset,
  tokenizer: Awaited<ReturnType<typeof makeTokenizer>>,
  captionIds: Int32Array[],
  engine: Engine,
  optimizer: AdamW,
  options: TrainOptions,
  /** Backend start-up, data preparation, tokenizer and model construction, in seconds. */
  setupSeconds: number,
): Promise<TrainResult> {
  const t = config.train;
  const b = t.batch_size;
  const model = engine.model;
  const cost = estimateTrainCost(config);
  const plannedSteps = cost.steps;
  const sampleLimit = Math.min(t.samples ?? Infinity, t.epochs != null ? t.epochs * dataset.train.size : Infinity);
  const stepLimit = t.steps ?? (t.samples == null && t.epochs == null && t.time_budget_s == null ? plannedSteps : Infinity);
  const timeLimit = t.time_budget_s ?? Infinity;
  const peak = peakLr(config);
  const warm = warmupShare(t.warmup, plannedSteps);

  const order = new DataOrder(dataset.train.size, config.seed);
  const maskRng = makeRng(deriveSeed(config.seed, 'mask'));
  const evalSeed = deriveSeed(config.seed, 'eval');
  let step = 0;
  let samplesSeen = 0;
  let trainSeconds = 0;
  let peakBytes = 0;
  let peakRss = 0;
  let lastLoss = NaN;
  let lastEval: Record<string, number> = {};
  let evalSeconds = 0;

  // Resume states (models/resume.ts) live beside the job's checkpoints; one left by an earlier attempt is continued.
  // A stream's position (shard order, shuffle buffer) is not saved yet, so streamed data gets no states: a rerun
  // would not continue the same sample order, and its numbers would not be the uninterrupted run's.
  const resumeDir = options.checkpointDir && !dataset.stream && engine.resumable ? resumeDirOf(options.checkpointDir) : null;
  if (options.checkpointDir && !resumeDir) {
    const why = dataset.stream ? 'streamed data (webdataset)' : `the ${engine.name} engine's optimizer state`;
    events.onLog?.(`note: no resume states for ${why}: an interrupted job restarts from step 0`);
  }
  const saved = resumeDir ? loadResumeState(resumeDir, model) : null;
  if (saved) {
    const l = saved.loop;
    order.restore({ rng: l.order_rng, perm: saved.order, pos: l.order_pos });
    maskRng.restore(l.mask_rng);
    optimizer.importState(saved.optimizer);
    step = l.step;
    samplesSeen = l.samples_seen;
    trainSeconds = l.train_seconds;
    evalSeconds = l.eval_seconds;
    peakBytes = l.peak_memory_bytes;
    peakRss = l.peak_rss_bytes;
    lastLoss = l.last_loss;
    lastEval = l.last_eval;
  }
  events.onStart?.({ backend: backend.backend, device: backend.device, total_steps: plannedSteps, ...(saved ? { resumed_from_step: step } : {}) });
  if (saved) events.onLog?.(`resumed from the state saved at step ${step} (${resumeDir})`);
  events.onLog?.(`model: ${model.store.count()} parameters; peak lr ${peak}; planned steps ${plannedSteps}`);
  let savedAtSeconds = trainSeconds;
  const saveState = async () => {
    if (!resumeDir) return;
    engine.syncModel();
    const position = order.position();
    const optimizerState = await optimizer.exportState();
    const state: ResumeState = {
      loop: {
        format: 'flip-resume/1',
        step,
        samples_seen: samplesSeen,
        train_seconds: trainSeconds,
        eval_seconds: evalSeconds,
        peak_memory_bytes: peakBytes,
        peak_rss_bytes: peakRss,
        last_loss: lastLoss,
        last_eval: lastEval,
        order_rng: position.rng,
        order_pos: position.pos,
        mask_rng: maskRng.state(),
        optimizer_t: optimizerState.t,
      },
      order: position.perm,
      optimizer: optimizerState,
    };
    await saveResumeState(resumeDir, model, config, tokenizer, state);
    savedAtSeconds = trainSeconds;
  };
  const stateDue = () =>
    (t.checkpoint_every != null && step % t.checkpoint_every === 0) || (t.checkpoint_every_s != null && trainSeconds - savedAtSeconds >= t.checkpoint_every_s);
  const runEval = async () => {
    const t0 = performance.now();
    engine.syncModel();
    lastEval = await evaluate({ engine, dataset, tokenizer, config, rng: makeRng(evalSeed) });
    const seconds = (performance.now() - t0) / 1000;
    evalSeconds += seconds;
    events.onLog?.(`eval at step ${step} took ${seconds.toFixed(1)} s`);
    events.onEval?.(step, lastEval);
  };

  const progress = () =>
    Math.max(
      Number.isFinite(stepLimit) ? step / stepLimit : 0,
      Number.isFinite(sampleLimit) ? samplesSeen / sampleLimit : 0,
      Number.isFinite(timeLimit) ? trainSeconds / timeLimit : 0,
    );

  /** One step of `phase` (its mask ratios) with `opt` at `lr`; reports it and evaluates when due. `profile`: measure
   * the step's peak tensor bytes (the first step of a phase). */
  const runStep = async (phase: TrainConfig, opt: AdamW, lr: number, profile: boolean) => {
    const t0 = performance.now();
    const indices = dataset.stream ? [] : order.next(b);
    const examples = dataset.stream ? await dataset.stream.next(b) : indices.map((i) => dataset.train.get(i));
    const ids = dataset.stream ? examples.map((x) => tokenizer.encode(x.caption, config.model.text.context_length)) : indices.map((i) => captionIds[i]);
    const batch = buildTrainBatch(phase, examples, ids, model, maskRng);
    const { out, bytes } = profile ? await engine.profiledStep(batch, opt, lr) : trainStep(engine, opt, batch, lr);
    peakBytes = Math.max(peakBytes, bytes);
    const [loss, logScale, reconstruction] = await out.data();
    out.dispose();
    step += 1;
    samplesSeen += b;
    const dt = (performance.now() - t0) / 1000;
    trainSeconds += dt;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    if (!Number.isFinite(loss)) throw new Error(`non-finite loss at step ${step}: ${loss}`);
    lastLoss = loss;
    events.onStep?.(step, {
      loss,
      lr,
      logit_scale: Math.exp(logScale),
      pairs_per_second: b / dt,
      elapsed_seconds: trainSeconds,
      samples_seen: samplesSeen,
      ...(model.decoder ? { reconstruction_loss: reconstruction } : {}),
    });
    if (config.eval.every > 0 && step % config.eval.every === 0) await runEval();
  };

  while (step < stepLimit && samplesSeen < sampleLimit && trainSeconds < timeLimit) {
    await runStep(config, optimizer, lrAt(peak, warm, progress()), step === 0);
    const stopping = options.stopSignal !== undefined && (await stopRequested(options.stopSignal));
    if (stateDue() || stopping) await saveState();
    if (stopping) throw new TrainingStopped(step, resumeDir !== null);
  }
  const pretrainSteps = step;
  let trainFlops = pretrainSteps * cost.flops_per_step;
  const artifacts: Record<string, string> = {};
  const tuneSteps = tuneStepCount(config, pretrainSteps);
  // Tuning has no states of its own: an interrupted tuning stage reruns whole from the end of pre-training.
  if (tuneSteps > 0 && resumeDir && pretrainSteps > (saved?.loop.step ?? 0)) await saveState();
  if (options.checkpointDir) {
    const note = tuneSteps > 0 ? undefined : 'no unmasked tuning ran: the final weights are these pre-training weights';
    engine.syncModel();
    artifacts.pretrain = await saveCheckpoint(join(options.checkpointDir, 'pretrain'), model, config, tokenizer, { step, stage: 'pretrain', note });
    if (tuneSteps === 0) {
      artifacts.final = artifacts.pretrain;
      rmSync(join(options.checkpointDir, 'final'), { recursive: true, force: true }); // stale, from an earlier attempt
    }
    events.onLog?.(`checkpoint: pre-training weights at step ${step} saved to ${artifacts.pretrain}${note ? ` (${note})` : ''}`);
  }

  // Unmasked tuning (FLIP Table 1e): mask ratios 0, a fresh optimizer state, its own warm-up + cosine schedule.
  const pretune: Record<string, number> = {};
  if (tuneSteps > 0) {
    // Evaluate the pre-trained weights first (unless an eval.every evaluation just did), for the before/after pair.
    if (!(config.eval.every > 0 && step % config.eval.every === 0 && step > 0)) await runEval();
    for (const [k, v] of Object.entries(lastEval)) pretune[PRETUNE_PREFIX + k] = v;
    pretune[`${PRETUNE_PREFIX}train_seconds`] = trainSeconds;
    pretune[`${PRETUNE_PREFIX}steps`] = pretrainSteps;
    if (tuneSteps > pretrainSteps) events.onLog?.(`warning: ${tuneSteps} tuning steps after only ${pretrainSteps} pre-training steps`);
    if (config.mask.image_ratio === 0 && config.mask.text_ratio === 0) {
      events.onLog?.('note: pre-training was unmasked, so unmasked tuning is only more training at a lower lr (a compute-matched control)');
    }
    const phase: TrainConfig = { ...config, mask: { ...config.mask, image_ratio: 0, text_ratio: 0 } };
    const tunePeak = tunePeakLr(config);
    const tuneWarm = warmupShare(config.tune.warmup, tuneSteps);
    events.onLog?.(`unmasked tuning: ${tuneSteps} steps, peak lr ${tunePeak}, optimizer state reset`);
    const tuneOpt = engine.createOptimizer(adamwOptions(config));
    try {
      for (let i = 0; i < tuneSteps; i++) await runStep(phase, tuneOpt, lrAt(tunePeak, tuneWarm, i / tuneSteps), i === 0);
    } finally {
      tuneOpt.dispose();
    }
    trainFlops += tuneSteps * estimateTrainCost(phase).flops_per_step;
  }
  if (!(config.eval.every > 0 && step % config.eval.every === 0 && step > 0)) await runEval();
  if (options.checkpointDir && tuneSteps > 0) {
    engine.syncModel();
    artifacts.final = await saveCheckpoint(join(options.checkpointDir, 'final'), model, config, tokenizer, { step, stage: 'final' });
    events.onLog?.(`checkpoint: tuned weights at step ${step} saved to ${artifacts.final}`);
  }

  if (resumeDir) clearResumeState(resumeDir); // finished: nothing left to resume
  return {
    backend: backend.backend,
    device: backend.device,
    results: {
      ...lastEval,
      train_seconds: trainSeconds,
      samples_seen: samplesSeen,
      steps: step,
      tune_steps: tuneSteps,
      train_flops: trainFlops,
      peak_memory_bytes: peakBytes,
      peak_rss_bytes: peakRss,
      final_loss: lastLoss,
      eval_seconds: evalSeconds,
      setup_seconds: setupSeconds,
      ...(dataset.stream ? { skipped_samples: dataset.stream.skippedSamples } : {}),
      ...pretune,
    },
    ...(options.checkpointDir ? { artifacts } : {}),
  };
}
