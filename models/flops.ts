/**
 * Analytic training cost. FLOPs count multiply-adds as 2 and cover matMuls only (linear layers, attention products,
 * patch embedding, projections, logits); a training step is counted as 3x the forward pass (backward ~2x forward).
 */
import type { TrainConfig, TransformerShape } from './config.js';
import { DEFAULT_STEPS } from './config.js';

/**
 * Throughput assumed to turn a time budget into a step estimate (FLOP/s, analytic FLOPs per second of training).
 * wasm: this trainer measured 18-20 GFLOP/s at the DEFAULTS config on one core (npm run bench), less for tiny models;
 * cpu: the notes' 27 s for the same 26 GFLOP step, ~1 GFLOP/s; GPUs: a guess. Only the plan (total_steps, the
 * warm-up length in steps) uses it: the schedule itself follows elapsed / time_budget_s.
 */
export const ASSUMED_FLOPS_PER_SECOND: Record<string, number> = { wasm: 1.5e10, cpu: 1e9, auto: 1.5e10, webgpu: 5e11, tensorflow: 5e11 };

/** Forward FLOPs of a transformer stack over `batch` sequences of `tokens` tokens. */
export function transformerForwardFlops(shape: TransformerShape, batch: number, tokens: number): number {
  const d = shape.width;
  const hidden = Math.round(d * shape.mlp_ratio);
  const n = batch * tokens;
  const linear = 2 * n * (3 * d * d + d * d + 2 * d * hidden);
  const attention = 2 * 2 * batch * tokens * tokens * d; // q k^T and p v over all heads
  return shape.depth * (linear + attention);
}

function keepTokens(total: number, ratio: number): number {
  return Math.max(1, Math.floor(total * (1 - ratio) + 1e-9));
}

/** Forward FLOPs of one training batch (masked as configured). */
export function forwardFlops(config: TrainConfig, batch = config.train.batch_size): number {
  const m = config.model;
  const patches = (config.data.image_size / m.image.patch_size) ** 2;
  const kept = keepTokens(patches, config.mask.image_ratio);
  const patchValues = m.image.patch_size ** 2 * 3;
  const textTokens = keepTokens(m.text.context_length, config.mask.text_ratio);
  const image = 2 * batch * kept * patchValues * m.image.width + transformerForwardFlops(m.image, batch, kept + 1);
  const text = transformerForwardFlops(m.text, batch, textTokens);
  const heads = 2 * batch * (m.image.width + m.text.width) * m.embed_dim + 2 * batch * batch * m.embed_dim;
  let decoder = 0;
  if (config.loss.reconstruction_weight > 0) {
    const dd = m.decoder.width;
    decoder = 2 * batch * (kept + 1) * m.image.width * dd + transformerForwardFlops(m.decoder, batch, patches + 1) + 2 * batch * (patches + 1) * dd * patchValues;
  }
  return image + text + heads + decoder;
}

export interface TrainCost {
  /** Pre-training steps and samples (unmasked tuning not included; see tune_steps). */
  steps: number;
  samples: number;
  flops_per_step: number;
  /** Pre-training FLOPs plus unmasked tuning at mask 0. */
  total_flops: number;
  /** Unmasked tuning steps after pre-training (tune.steps, or tune.fraction of the pre-training steps). */
  tune_steps: number;
}

/**
 * Steps the budget allows: the smallest of train.steps, ceil(samples / batch), ceil(epochs x train_size / batch) and,
 * for a time budget, time x ASSUMED_FLOPS_PER_SECOND[backend] / flops_per_step (an estimate). DEFAULT_STEPS when no
 * budget is set.
 */
export function estimateTrainCost(config: TrainConfig): TrainCost {
  const b = config.train.batch_size;
  const flopsPerStep = 3 * forwardFlops(config);
  const t = config.train;
  const candidates: number[] = [];
  if (t.steps != null) candidates.push(t.steps);
  if (t.samples != null) candidates.push(Math.ceil(t.samples / b));
  if (t.epochs != null) candidates.push(Math.ceil((t.epochs * config.data.train_size) / b));
  if (t.time_budget_s != null) {
    const rate = ASSUMED_FLOPS_PER_SECOND[config.backend] ?? ASSUMED_FLOPS_PER_SECOND.wasm;
    candidates.push(Math.max(1, Math.floor((t.time_budget_s * rate) / flopsPerStep)));
  }
  const steps = Math.max(0, candidates.length ? Math.min(...candidates) : DEFAULT_STEPS);
  const tuneSteps = config.tune.steps ?? (config.tune.fraction != null ? Math.round(config.tune.fraction * steps) : 0);
  const tuneFlops = tuneSteps > 0 ? tuneSteps * 3 * forwardFlops({ ...config, mask: { ...config.mask, image_ratio: 0, text_ratio: 0 } }) : 0;
  return { steps, samples: steps * b, flops_per_step: flopsPerStep, total_flops: steps * flopsPerStep + tuneFlops, tune_steps: tuneSteps };
}
