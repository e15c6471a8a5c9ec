/**
 * AdamW (decoupled weight decay) and the learning-rate schedule: linear warm-up, then cosine to 0.
 *
 * Decay applies to matrices of linear layers, the patch embedding, the projections and the token embedding table;
 * not to biases, LayerNorm scales/shifts, position embeddings, the CLS token or the logit scale (Param.decay).
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from './config.js';
import type { Param } from './nn/params.js';

/** Peak learning rate: train.lr when set, else base_lr x batch_size / 256. */
export function peakLr(config: TrainConfig): number {
  return config.train.lr ?? (config.train.base_lr * config.train.batch_size) / 256;
}

/** Unmasked-tuning peak lr: tune.base_lr x batch / 256 when set, else the pre-training peak / 100 (the paper's
 * 4e-8 against 4e-6). */
export function tunePeakLr(config: TrainConfig): number {
  return config.tune.base_lr != null ? (config.tune.base_lr * config.train.batch_size) / 256 : peakLr(config) / 100;
}

/** Unmasked-tuning steps: tune.steps, else round(tune.fraction x the pre-training steps run), else 0. */
export function tuneStepCount(config: TrainConfig, pretrainSteps: number): number {
  if (config.tune.steps != null) return config.tune.steps;
  if (config.tune.fraction != null) return Math.round(config.tune.fraction * pretrainSteps);
  return 0;
}

/** Warm-up length as a share of the run: train.warmup steps when >= 1 (over totalSteps), else the share itself. */
export function warmupShare(warmup: number, totalSteps: number): number {
  if (warmup >= 1) return Math.min(1, warmup / Math.max(1, totalSteps));
  return Math.max(0, warmup);
}

/** lr at progress in [0, 1] (steps done / total, or elapsed / time budget): linear warm-up then cosine to 0. */
export function lrAt(peak: number, warmShare: number, progress: number): number {
  const p = Math.min(Math.max(progress, 0), 1);
  if (warmShare > 0 && p < warmShare) return (peak * p) / warmShare;
  const rest = 1 - warmShare;
  const q = rest > 0 ? (p - warmShare) / rest : 1;
  return peak * 0.5 * (1 + Math.cos(Math.PI * q));
}

/** Added to the second moment each step; sqrt(1e-30) = 1e-15 is far below any eps in use. */
export const V_FLOOR = 1e-30;

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** AdamW with one set of element-wise ops per parameter tensor. (A flat [P] variant was tried: tf.split back into
 * 150 tensors took ~1.5 s per step on wasm, against ~40 ms for this.) */
export class AdamW {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private t = 0;

  constructor(readonly params: Param[], readonly opts: AdamWOptions) {
    const zeros = (p: Param) => tf.tidy(() => tf.variable(tf.zerosLike(p.variable), false));
    this.m = params.map(zeros);
    this.v = params.map(zeros);
  }

  /**
   * grads in the order of params (null: not on this step's path, skipped).
   * p <- p - lr (mhat / (sqrt(vhat) + eps) + wd p), decay only where Param.decay.
   */
  step(grads: (tf.Tensor | null)[], lr: number): void {
    if (grads.length !== this.params.length) throw new Error(`AdamW.step: ${grads.length} gradients for ${this.params.length} params`);
    this.t += 1;
    const { beta1, beta2, eps, weightDecay } = this.opts;
    const c1 = 1 / (1 - Math.pow(beta1, this.t));
    const c2 = 1 / (1 - Math.pow(beta2, this.t));
    tf.tidy(() => {
      for (let i = 0; i < this.params.length; i++) {
        const p = this.params[i];
        const g = grads[i];
        if (g === null) continue;
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        // + V_FLOOR keeps v a normal float: entries with zero gradients (unused token rows) would otherwise decay into
        // subnormals, which make wasm's sqrt/mul ~100x slower (measured 9 ms for a [128, 512] sqrt).
        const v = tf.add(tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2)), V_FLOOR);
        this.m[i].assign(m);
        this.v[i].assign(v);
        let update = tf.div(tf.mul(m, c1), tf.add(tf.sqrt(tf.mul(v, c2)), eps));
        if (p.decay && weightDecay > 0) update = tf.add(update, tf.mul(p.variable, weightDecay));
        p.variable.assign(tf.sub(p.variable, tf.mul(update, lr)));
      }
    });
  }

  get stepCount(): number {
    return this.t;
  }

  dispose(): void {
    for (const x of [...this.m, ...this.v]) x.dispose();
  }
}
