/**
 * MAE decoder (FLIP Table 1f): the encoder's output tokens are embedded to the decoder width, the removed patches
 * are filled with a learned mask token, fixed 2-D sin-cos positions are added, a small pre-LN transformer runs over
 * CLS + all L patches, and a linear head predicts each patch's pixels. The loss is the MSE against pixels normalised
 * per patch (mean 0, variance 1), on removed patches only.
 */
import * as tf from '@tensorflow/tfjs';
import type { TransformerShape } from '../config.js';
import { applyLayerNorm, makeBlocks, makeLayerNorm, type BlockParams, type LayerNormParams } from './block.js';
import type { LayerOps } from './layer-ops.js';
import type { ParamStore } from './params.js';
import { sinCos2d } from './positions.js';

/** Host-side inputs of the reconstruction loss for one batch. */
export interface MaeTargets {
  /** [B*(L+1)] row of the decoder input for each output token: encoder rows, or the index of the mask-token row. */
  sourceRows: Int32Array;
  /** [B*(L+1), P*P*3] per-patch normalised pixels (CLS rows zero). */
  target: Float32Array;
  /** [B*(L+1)] 1 for removed patches, 0 for kept patches and CLS rows. */
  weight: Float32Array;
}

/**
 * patchesAll: [B*L, P*P*3] every patch in order; keep: [B*K] kept patch indices (sample b at b*K ..). Encoder rows are
 * b*(K+1) (CLS) and b*(K+1)+1+j (the j-th kept patch); the mask token is row B*(K+1).
 */
export function maeTargets(patchesAll: Float32Array, keep: Int32Array, batch: number, numPatches: number, patchValues: number): MaeTargets {
  const k = keep.length / batch;
  const rows = batch * (numPatches + 1);
  const maskRow = batch * (k + 1);
  const sourceRows = new Int32Array(rows).fill(maskRow);
  const target = new Float32Array(rows * patchValues);
  const weight = new Float32Array(rows).fill(1);
  for (let b = 0; b < batch; b++) {
    const base = b * (numPatches + 1);
    sourceRows[base] = b * (k + 1);
    weight[base] = 0;
    for (let j = 0; j < k; j++) {
      const p = keep[b * k + j];
      sourceRows[base + 1 + p] = b * (k + 1) + 1 + j;
      weight[base + 1 + p] = 0;
    }
    for (let p = 0; p < numPatches; p++) {
      const src = (b * numPatches + p) * patchValues;
      let mean = 0;
      for (let i = 0; i < patchValues; i++) mean += patchesAll[src + i];
      mean /= patchValues;
      let variance = 0;
      for (let i = 0; i < patchValues; i++) variance += (patchesAll[src + i] - mean) ** 2;
      const inv = 1 / Math.sqrt(variance / patchValues + 1e-6);
      const dst = (base + 1 + p) * patchValues;
      for (let i = 0; i < patchValues; i++) target[dst + i] = (patchesAll[src + i] - mean) * inv;
    }
  }
  return { sourceRows, target, weight };
}

export class MaeDecoder {
  readonly embedW: tf.Variable; // [D, Dd]
  readonly embedB: tf.Variable; // [Dd]
  readonly maskToken: tf.Variable; // [1, Dd]
  readonly blocks: BlockParams[];
  readonly ln: LayerNormParams;
  readonly predW: tf.Variable; // [Dd, P*P*3]
  readonly predB: tf.Variable; // [P*P*3]
  /** [L+1, Dd] host table: zero for CLS, then the sin-cos rows. */
  private readonly positionRows: Float32Array;

  constructor(store: ParamStore, readonly cfg: TransformerShape, encoderWidth: number, readonly gridSize: number, readonly patchValues: number, private readonly ops: LayerOps) {
    this.embedW = store.xavier('decoder.embed.w', encoderWidth, cfg.width);
    this.embedB = store.constant('decoder.embed.b', [cfg.width], 0, false);
    this.maskToken = store.normal('decoder.mask_token', [1, cfg.width], 0.02, false);
    this.blocks = makeBlocks(store, 'decoder', cfg);
    this.ln = makeLayerNorm(store, 'decoder.ln', cfg.width);
    this.predW = store.xavier('decoder.pred.w', cfg.width, patchValues);
    this.predB = store.constant('decoder.pred.b', [patchValues], 0, false);
    const l = gridSize * gridSize;
    this.positionRows = new Float32Array((l + 1) * cfg.width);
    this.positionRows.set(sinCos2d(gridSize, cfg.width), cfg.width);
  }

  /** encoded [B*(K+1), D] encoder output tokens -> scalar MSE on removed patches (0 when nothing is removed). */
  loss(encoded: tf.Tensor2D, t: MaeTargets, batch: number): tf.Scalar {
    const l = this.gridSize * this.gridSize;
    const dd = this.cfg.width;
    const removed = t.weight.reduce((a, w) => a + w, 0);
    if (removed === 0) return tf.scalar(0);
    const z = this.ops.linear(encoded, this.embedW as tf.Tensor2D, this.embedB as tf.Tensor1D); // [B*(K+1), Dd]
    const withMask = tf.concat([z, this.maskToken], 0); // [B*(K+1)+1, Dd]
    const full = tf.gather(withMask, tf.tensor1d(t.sourceRows, 'int32')) as tf.Tensor2D; // [B*(L+1), Dd]
    const pos = new Float32Array(batch * (l + 1) * dd);
    for (let b = 0; b < batch; b++) pos.set(this.positionRows, b * (l + 1) * dd);
    const x = tf.add(full, tf.tensor2d(pos, [batch * (l + 1), dd])) as tf.Tensor2D;
    const h = applyLayerNorm(this.ops, this.ln, this.ops.blocks(this.blocks, x, batch, l + 1, null)); // [B*(L+1), Dd]
    const pred = this.ops.linear(h, this.predW as tf.Tensor2D, this.predB as tf.Tensor1D); // [B*(L+1), P*P*3]
    return maskedPatchLoss(pred, t);
  }
}

/**
 * pred [B*(L+1), P*P*3] -> scalar: per-row MSE against t.target, averaged over the rows with weight 1 (removed
 * patches). Kept patches and CLS rows (weight 0) do not enter the loss or its gradient. 0 when nothing is removed.
 */
export function maskedPatchLoss(pred: tf.Tensor2D, t: MaeTargets): tf.Scalar {
  const rows = t.weight.length;
  if (pred.shape[0] !== rows || t.target.length !== pred.size) {
    throw new Error(`maskedPatchLoss: pred [${pred.shape}] for ${rows} weight rows and ${t.target.length / Math.max(1, pred.shape[1])} target rows`);
  }
  const removed = t.weight.reduce((a, w) => a + w, 0);
  if (removed === 0) return tf.scalar(0);
  const err = tf.mean(tf.square(tf.sub(pred, tf.tensor2d(t.target, pred.shape))), -1, true); // [B*(L+1), 1]
  return tf.div(tf.sum(tf.mul(err, tf.tensor2d(t.weight, [rows, 1]))), removed) as tf.Scalar;
}
