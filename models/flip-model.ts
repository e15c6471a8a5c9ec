/**
 * The FLIP model: image and text towers, bias-free projections to the shared embedding, L2 normalisation, a learnable
 * logit scale (init log(1/0.07), clipped to [0, log 100] after each update) and the symmetric contrastive loss.
 * The forward pass is written in the layer ops the model was built with (models/nn/layer-ops.ts); an engine
 * (models/engine/) computes its gradients and updates it.
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from './config.js';
import type { LayerOps } from './nn/layer-ops.js';
import { constMatMul, matMul2d } from './nn/linear.js';
import { meanPoolMatrix } from './nn/constants.js';
import { MaeDecoder, type MaeTargets } from './nn/mae-decoder.js';
import { ParamStore } from './nn/params.js';
import { deriveSeed } from './random.js';
import { TextEncoder } from './text-encoder.js';
import { VisionTransformer, type VitTokens } from './vit.js';

export const LOGIT_SCALE_INIT = Math.log(1 / 0.07);
export const LOGIT_SCALE_MAX = Math.log(100);

/** One batch as the model consumes it; built on the host by the trainer. */
export interface ModelBatch {
  size: number;
  /** Kept patches and their positions, CLS rows included (see VisionTransformer.tokens). */
  image: VitTokens;
  /** Reconstruction targets, only when the MAE decoder is on. */
  mae?: MaeTargets;
  /** [B*T'] token ids and their positions (T' = context length, or fewer after text masking). */
  ids: Int32Array;
  positions: Int32Array;
}

/** x [N, E] -> rows of unit length. */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.square(x), -1, true), 1e-12)));
}

export class FlipModel {
  readonly store: ParamStore;
  readonly image: VisionTransformer;
  readonly text: TextEncoder;
  readonly imageProj: tf.Variable; // [Dimg, E]
  readonly textProj: tf.Variable; // [Dtxt, E]
  readonly logitScale: tf.Variable; // [] (log of the scale)
  /** Built only when loss.reconstruction_weight > 0. */
  readonly decoder: MaeDecoder | null;
  readonly reconstructionWeight: number;
  /** The last loss() call's reconstruction loss, kept out of tf.tidy; the caller reads and disposes it. */
  lastReconstruction: tf.Scalar | null = null;

  /** ops: the layer operations the forward pass runs on (plain tfjs or native kernels), chosen by the caller once. */
  constructor(config: TrainConfig, vocabSize: number, readonly padId: number, readonly ops: LayerOps) {
    const m = config.model;
    this.store = new ParamStore(deriveSeed(config.seed, 'init'));
    this.image = new VisionTransformer(this.store, m.image, config.data.image_size, ops);
    this.text = new TextEncoder(this.store, m.text, vocabSize, ops);
    this.imageProj = this.store.normal('image.proj', [m.image.width, m.embed_dim], 1 / Math.sqrt(m.image.width), true);
    this.textProj = this.store.normal('text.proj', [m.text.width, m.embed_dim], 1 / Math.sqrt(m.text.width), true);
    this.logitScale = this.store.constant('logit_scale', [], LOGIT_SCALE_INIT, false);
    this.reconstructionWeight = config.loss.reconstruction_weight;
    this.decoder =
      this.reconstructionWeight > 0
        ? new MaeDecoder(this.store, m.decoder, m.image.width, config.data.image_size / m.image.patch_size, this.image.patchValues, ops)
        : null;
  }

  /** -> [B, E], unit rows. */
  embedImages(tokens: VitTokens, size: number): tf.Tensor2D {
    return l2Normalize(matMul2d(this.image.encode(tokens, size), this.imageProj as tf.Tensor2D));
  }

  /** -> [B, E], unit rows. */
  embedTexts(ids: Int32Array, positions: Int32Array, size: number): tf.Tensor2D {
    return l2Normalize(matMul2d(this.text.encode(ids, positions, size, this.padId), this.textProj as tf.Tensor2D));
  }

  /**
   * Symmetric InfoNCE over the batch (mean of image->text and text->image cross-entropy), plus
   * reconstruction_weight x the MAE loss when the decoder is on. Returns a scalar.
   */
  loss(batch: ModelBatch): tf.Scalar {
    const txt = this.embedTexts(batch.ids, batch.positions, batch.size); // [B, E]
    if (!this.decoder) {
      const img = this.embedImages(batch.image, batch.size); // [B, E]
      return contrastiveLoss(img, txt, this.logitScale as tf.Scalar);
    }
    if (!batch.mae) throw new Error('FlipModel.loss: the MAE decoder is on but the batch has no reconstruction targets');
    const tokens = this.image.encodeTokens(batch.image, batch.size); // [B*(K+1), D]
    const pool = meanPoolMatrix(batch.size, tokens.shape[0] / batch.size);
    const img = l2Normalize(matMul2d(constMatMul(pool.m, pool.mT, tokens), this.imageProj as tf.Tensor2D)); // [B, E]
    const rec = this.decoder.loss(tokens, batch.mae, batch.size);
    this.lastReconstruction?.dispose();
    this.lastReconstruction = tf.keep(tf.clone(rec));
    return tf.add(contrastiveLoss(img, txt, this.logitScale as tf.Scalar), tf.mul(rec, this.reconstructionWeight)) as tf.Scalar;
  }

  /** Keeps the logit scale inside [0, log 100], as the official implementation clamps it after each step. */
  clampLogitScale(): void {
    tf.tidy(() => this.logitScale.assign(tf.clipByValue(this.logitScale, 0, LOGIT_SCALE_MAX)));
  }

  dispose(): void {
    this.lastReconstruction?.dispose();
    this.store.dispose();
  }
}

/** img, txt [B, E] unit rows; logScale scalar. */
export function contrastiveLoss(img: tf.Tensor2D, txt: tf.Tensor2D, logScale: tf.Scalar): tf.Scalar {
  const b = img.shape[0];
  if (txt.shape[0] !== b) throw new Error(`contrastiveLoss: ${b} images but ${txt.shape[0]} texts`);
  const logits = tf.mul(tf.exp(logScale), tf.matMul(img, tf.transpose(txt))) as tf.Tensor2D; // [B, B]
  const eye = tf.eye(b); // [B, B]
  const i2t = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), eye))); // sum over the batch
  const t2i = tf.neg(tf.sum(tf.mul(tf.logSoftmax(tf.transpose(logits)), eye)));
  return tf.div(tf.add(i2t, t2i), 2 * b) as tf.Scalar;
}

/**
 * Text masking on the host (FLIP Table 1c). ids [B*T] -> kept ids and their original positions [B*K], K =
 * max(1, floor(T (1 - ratio))). Position 0 (the start token, where the encoder pools) is always kept. 'random': the
 * other kept tokens by uniform noise; 'prioritized': padding tokens are dropped first; 'truncate': the first K tokens.
 */
export function maskText(
  ids: Int32Array,
  batch: number,
  ratio: number,
  strategy: 'random' | 'prioritized' | 'truncate',
  padId: number,
  rng: () => number,
): { ids: Int32Array; positions: Int32Array; tokens: number } {
  const t = ids.length / batch;
  const k = Math.max(1, Math.floor(t * (1 - ratio) + 1e-9));
  const outIds = new Int32Array(batch * k);
  const outPos = new Int32Array(batch * k);
  const noise = new Float64Array(t);
  const order: number[] = [];
  for (let b = 0; b < batch; b++) {
    order.length = 0;
    for (let i = 1; i < t; i++) {
      order.push(i);
      noise[i] = strategy === 'truncate' ? i : rng() + (strategy === 'prioritized' && ids[b * t + i] === padId ? 1 : 0);
    }
    order.sort((x, y) => noise[x] - noise[y]);
    const kept = [0, ...order.slice(0, k - 1)].sort((x, y) => x - y);
    for (let j = 0; j < k; j++) {
      outIds[b * k + j] = ids[b * t + kept[j]];
      outPos[b * k + j] = kept[j];
    }
  }
  return { ids: outIds, positions: outPos, tokens: k };
}

/** Positions 0..T-1 for every sample: [B*T]. */
export function fullPositions(batch: number, tokens: number): Int32Array {
  const out = new Int32Array(batch * tokens);
  for (let i = 0; i < out.length; i++) out[i] = i % tokens;
  return out;
}

/** Concatenates per-caption id arrays into one [B*T] array. */
export function concatIds(rows: Int32Array[]): Int32Array {
  const t = rows.length ? rows[0].length : 0;
  const out = new Int32Array(rows.length * t);
  rows.forEach((r, i) => {
    if (r.length !== t) throw new Error(`concatIds: caption ${i} has ${r.length} ids, expected ${t}`);
    out.set(r, i * t);
  });
  return out;
}
