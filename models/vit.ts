/**
 * Image encoder: patchify, linear patch embedding, fixed 2-D sin-cos positions, per-sample random masking (FLIP),
 * CLS token, pre-LN blocks, final LayerNorm, mean over all output tokens.
 *
 * Masking happens on the host: the kept patches are picked before the patch embedding. Because the embedding is
 * per token and the positions are fixed, embed-then-add-positions-then-drop equals drop-then-embed-then-add-positions;
 * dropped patches cost no compute and the gather needs no gradient.
 */
import * as tf from '@tensorflow/tfjs';
import type { ImageEncoderConfig } from './config.js';
import { applyLayerNorm, makeBlocks, makeLayerNorm, runBlocks, type BlockParams, type LayerNormParams } from './nn/block.js';
import { meanPoolMatrix, onesColumn } from './nn/constants.js';
import { constMatMul, linear, matMul2d } from './nn/linear.js';
import type { ParamStore } from './nn/params.js';
import { sinCos2d } from './nn/positions.js';

/** Tokens kept per sample at mask ratio r: floor(L (1 - r)), at least 1. */
export function keepCount(numPatches: number, ratio: number): number {
  if (!(ratio >= 0 && ratio < 1)) throw new Error(`keepCount: mask ratio ${ratio} is out of range [0, 1)`);
  return Math.max(1, Math.floor(numPatches * (1 - ratio) + 1e-9));
}

/**
 * Per-sample random masking: for each sample, uniform noise over its L patches, argsort, keep the first K.
 * Returns [B * K] patch indices in [0, L) (sample b's indices at b*K .. b*K+K-1, in noise order).
 */
export function sampleKeepIndices(batch: number, numPatches: number, keep: number, rng: () => number): Int32Array {
  if (keep < 1 || keep > numPatches) throw new Error(`sampleKeepIndices: keep ${keep} not in [1, ${numPatches}]`);
  const out = new Int32Array(batch * keep);
  const noise = new Float64Array(numPatches);
  const order = new Array<number>(numPatches);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < numPatches; i++) {
      noise[i] = rng();
      order[i] = i;
    }
    order.sort((x, y) => noise[x] - noise[y]);
    for (let i = 0; i < keep; i++) out[b * keep + i] = order[i];
  }
  return out;
}

/** Every patch of every sample in order: [B * L] indices, for unmasked encoding. */
export function allIndices(batch: number, numPatches: number): Int32Array {
  const out = new Int32Array(batch * numPatches);
  for (let b = 0; b < batch; b++) for (let i = 0; i < numPatches; i++) out[b * numPatches + i] = i;
  return out;
}

/**
 * Host-side patch extraction of the kept patches. images: B HWC images in [0, 1]; keep: [B*K] patch indices.
 * Returns [B*K, P*P*3] values scaled to [-1, 1], each patch flattened row-major (row, col, channel).
 */
export function extractPatches(images: Float32Array[], imageSize: number, patch: number, keep: Int32Array): Float32Array {
  const grid = imageSize / patch;
  const batch = images.length;
  const k = keep.length / batch;
  if (!Number.isInteger(k)) throw new Error(`extractPatches: ${keep.length} indices do not split over ${batch} images`);
  const ppc = patch * patch * 3;
  const out = new Float32Array(keep.length * ppc);
  for (let b = 0; b < batch; b++) {
    const img = images[b];
    if (img.length !== imageSize * imageSize * 3) throw new Error(`extractPatches: image ${b} has ${img.length} values, expected ${imageSize}x${imageSize}x3`);
    for (let j = 0; j < k; j++) {
      const p = keep[b * k + j];
      const pr = Math.floor(p / grid) * patch;
      const pc = (p % grid) * patch;
      let o = (b * k + j) * ppc;
      for (let r = 0; r < patch; r++) {
        let s = ((pr + r) * imageSize + pc) * 3;
        for (let c = 0; c < patch * 3; c++) out[o++] = img[s++] * 2 - 1;
      }
    }
  }
  return out;
}

export interface VitParams {
  patchW: tf.Variable; // [P*P*3, D]
  patchB: tf.Variable; // [D]
  cls: tf.Variable; // [1, D]
  blocks: BlockParams[];
  lnFinal: LayerNormParams;
  /** Fixed, not trained: [L, D]. */
  positions: tf.Tensor2D;
}

export class VisionTransformer {
  readonly params: VitParams;
  readonly numPatches: number;
  readonly patchValues: number;

  constructor(store: ParamStore, readonly cfg: ImageEncoderConfig, readonly imageSize: number) {
    if (imageSize % cfg.patch_size !== 0) throw new Error(`vit: patch ${cfg.patch_size} does not divide image size ${imageSize}`);
    const grid = imageSize / cfg.patch_size;
    this.numPatches = grid * grid;
    this.patchValues = cfg.patch_size * cfg.patch_size * 3;
    this.params = {
      patchW: store.xavier('image.patch.w', this.patchValues, cfg.width),
      patchB: store.constant('image.patch.b', [cfg.width], 0, false),
      cls: store.normal('image.cls', [1, cfg.width], 0.02, false),
      blocks: makeBlocks(store, 'image', cfg),
      lnFinal: makeLayerNorm(store, 'image.ln_final', cfg.width),
      positions: tf.tensor2d(sinCos2d(grid, cfg.width), [this.numPatches, cfg.width]),
    };
  }

  /**
   * patches [B*K, P*P*3] (from extractPatches), keep [B*K] the same patch indices -> pooled features [B, D].
   * Every sample keeps the same number K of tokens (K = L when unmasked).
   */
  encode(patches: tf.Tensor2D, keep: Int32Array, batch: number): tf.Tensor2D {
    const k = keep.length / batch;
    const d = this.cfg.width;
    if (patches.shape[0] !== keep.length || patches.shape[1] !== this.patchValues) {
      throw new Error(`vit.encode: patches [${patches.shape}] do not match ${keep.length} kept tokens of ${this.patchValues} values`);
    }
    const p = this.params;
    const pos = tf.gather(p.positions, tf.tensor1d(keep, 'int32')); // [B*K, D], constant
    const x = tf.add(linear(patches, p.patchW as tf.Tensor2D, p.patchB as tf.Tensor1D), pos); // [B*K, D]
    const ones = onesColumn(batch);
    const clsRows = matMul2d(ones.m, p.cls as tf.Tensor2D); // [B, D]
    const tokens = k + 1;
    const seq = tf.reshape(tf.concat([tf.reshape(clsRows, [batch, 1, d]), tf.reshape(x, [batch, k, d])], 1), [batch * tokens, d]) as tf.Tensor2D; // [B*(K+1), D]
    const h = applyLayerNorm(p.lnFinal, runBlocks(p.blocks, seq, batch, tokens, null)); // [B*(K+1), D]
    const pool = meanPoolMatrix(batch, tokens);
    return constMatMul(pool.m, pool.mT, h); // [B, D]
  }
}
