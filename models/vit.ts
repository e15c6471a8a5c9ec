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
import { applyLayerNorm, makeBlocks, makeLayerNorm, type BlockParams, type LayerNormParams } from './nn/block.js';
import { meanPoolMatrix } from './nn/constants.js';
import type { LayerOps } from './nn/layer-ops.js';
import { constMatMul } from './nn/linear.js';
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
  // The argsort as one numeric sort of exact integer keys, noise x 2^32 x L + index (the noise is a 32-bit integer
  // over 2^32, so the keys are exact and distinct): the order of a stable sort by noise, ties by index, without the
  // ~25,000 comparator calls per batch that sorting indices by a JS comparator made.
  const keys = new Float64Array(numPatches);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < numPatches; i++) keys[i] = rng() * 4294967296 * numPatches + i;
    keys.sort();
    for (let i = 0; i < keep; i++) out[b * keep + i] = keys[i] % numPatches;
  }
  return out;
}

/** Every patch of every sample in order: [B * L] indices, for unmasked encoding. */
export function allIndices(batch: number, numPatches: number): Int32Array {
  const out = new Int32Array(batch * numPatches);
  for (let b = 0; b < batch; b++) for (let i = 0; i < numPatches; i++) out[b * numPatches + i] = i;
  return out;
}

/** Copies patch p of an HWC image into out at `at`, flattened row-major (row, col, channel), scaled to [-1, 1]. */
function copyPatch(img: Float32Array, imageSize: number, patch: number, p: number, out: Float32Array, at: number): void {
  const grid = imageSize / patch;
  const pr = Math.floor(p / grid) * patch;
  const pc = (p % grid) * patch;
  let o = at;
  for (let r = 0; r < patch; r++) {
    let s = ((pr + r) * imageSize + pc) * 3;
    for (let c = 0; c < patch * 3; c++) out[o++] = img[s++] * 2 - 1;
  }
}

function checkImage(img: Float32Array, imageSize: number, b: number): void {
  if (img.length !== imageSize * imageSize * 3) throw new Error(`extractPatches: image ${b} has ${img.length} values, expected ${imageSize}x${imageSize}x3`);
}

/**
 * Host-side patch extraction of the kept patches. images: B HWC images in [0, 1]; keep: [B*K] patch indices.
 * Returns [B*K, P*P*3] values scaled to [-1, 1], each patch flattened row-major (row, col, channel).
 */
export function extractPatches(images: Float32Array[], imageSize: number, patch: number, keep: Int32Array): Float32Array {
  const batch = images.length;
  const k = keep.length / batch;
  if (!Number.isInteger(k)) throw new Error(`extractPatches: ${keep.length} indices do not split over ${batch} images`);
  const ppc = patch * patch * 3;
  const out = new Float32Array(keep.length * ppc);
  for (let b = 0; b < batch; b++) {
    checkImage(images[b], imageSize, b);
    for (let j = 0; j < k; j++) copyPatch(images[b], imageSize, patch, keep[b * k + j], out, (b * k + j) * ppc);
  }
  return out;
}

export interface VitParams {
  patchW: tf.Variable; // [P*P*3, D]
  patchB: tf.Variable; // [D]
  /** The CLS token is cls + patchB (its pixel row is zero and its position zero): a harmless reparametrisation. */
  cls: tf.Variable; // [1, D]
  blocks: BlockParams[];
  lnFinal: LayerNormParams;
}

/**
 * Host-side token rows for one batch with the CLS token first in each sample: sample b's tokens are rows
 * b*(K+1) .. b*(K+1)+K, row 0 the CLS token.
 */
export interface VitTokens {
  /** [B*(K+1), P*P*3] pixel values, zero on CLS rows. */
  pixels: Float32Array;
  /** [B*K] the kept patches' indices (their positions), in the rows' order. */
  keep: Int32Array;
}

export class VisionTransformer {
  readonly params: VitParams;
  readonly numPatches: number;
  readonly patchValues: number;
  /** [L, D] fixed 2-D sin-cos table on the host. */
  readonly positionTable: Float32Array;

  constructor(store: ParamStore, readonly cfg: ImageEncoderConfig, readonly imageSize: number, private readonly ops: LayerOps) {
    if (imageSize % cfg.patch_size !== 0) throw new Error(`vit: patch ${cfg.patch_size} does not divide image size ${imageSize}`);
    const grid = imageSize / cfg.patch_size;
    this.numPatches = grid * grid;
    this.patchValues = cfg.patch_size * cfg.patch_size * 3;
    this.positionTable = sinCos2d(grid, cfg.width);
    this.params = {
      patchW: store.xavier('image.patch.w', this.patchValues, cfg.width),
      patchB: store.constant('image.patch.b', [cfg.width], 0, false),
      cls: store.normal('image.cls', [1, cfg.width], 0.02, false),
      blocks: makeBlocks(store, 'image', cfg),
      lnFinal: makeLayerNorm(store, 'image.ln_final', cfg.width),
    };
  }

  /** images: B HWC images in [0, 1]; keep: [B*K] kept patch indices (see sampleKeepIndices / allIndices). */
  tokens(images: Float32Array[], keep: Int32Array): VitTokens {
    const batch = images.length;
    const k = keep.length / batch;
    if (!Number.isInteger(k)) throw new Error(`vit.tokens: ${keep.length} indices do not split over ${batch} images`);
    const ppc = this.patchValues;
    const pixels = new Float32Array(batch * (k + 1) * ppc);
    for (let b = 0; b < batch; b++) {
      checkImage(images[b], this.imageSize, b);
      for (let j = 0; j < k; j++) copyPatch(images[b], this.imageSize, this.cfg.patch_size, keep[b * k + j], pixels, (b * (k + 1) + 1 + j) * ppc);
    }
    return { pixels, keep };
  }

  /** Token rows from tokens() for `batch` samples of K+1 tokens -> pooled features [B, D] (mean over all tokens). */
  encode(t: VitTokens, batch: number): tf.Tensor2D {
    return this.pool(this.encodeTokens(t, batch), batch); // [B, D]
  }

  /** Output tokens after the final LayerNorm: [B*(K+1), D], CLS first in each sample (the MAE decoder's input). */
  encodeTokens(t: VitTokens, batch: number): tf.Tensor2D {
    const { x, tokens } = this.blockInput(t, batch);
    return this.finishTokens(this.ops.blocks(this.params.blocks, x, batch, tokens, null)); // [B*(K+1), D]
  }

  /** The transformer blocks' input: embedded patches plus positions, CLS rows first ([B*(K+1), D]), and K+1. */
  blockInput(t: VitTokens, batch: number): { x: tf.Tensor2D; tokens: number } {
    const rows = t.pixels.length / this.patchValues;
    const tokens = rows / batch;
    if (!Number.isInteger(tokens) || t.keep.length !== rows - batch) {
      throw new Error(`vit.encode: ${rows} pixel rows and ${t.keep.length} kept patches for batch ${batch}`);
    }
    const p = this.params;
    const pixels = tf.tensor2d(t.pixels, [rows, this.patchValues]);
    const x = this.ops.patchEmbedding(pixels, t.keep, batch, { w: p.patchW, b: p.patchB, cls: p.cls, positionTable: this.positionTable, numPatches: this.numPatches });
    return { x, tokens }; // [B*(K+1), D]
  }

  /** The blocks' output -> the final LayerNorm's output, [B*(K+1), D]. */
  finishTokens(h: tf.Tensor2D): tf.Tensor2D {
    return applyLayerNorm(this.ops, this.params.lnFinal, h);
  }

  /** Final tokens [B*(K+1), D] -> pooled features [B, D] (mean over all tokens). */
  pool(tokens: tf.Tensor2D, batch: number): tf.Tensor2D {
    const pool = meanPoolMatrix(batch, tokens.shape[0] / batch);
    return constMatMul(pool.m, pool.mT, tokens);
  }
}
