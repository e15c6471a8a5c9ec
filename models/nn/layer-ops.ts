/**
 * The layer operations the model's forward pass is written in, as one object chosen when the model is built
 * (models/engine/select.ts): the plain tfjs ops below, or the same arithmetic on the native kernels
 * (models/kernels/native/layer-ops.ts). The model code calls `ops.x(...)` and never asks which set it has.
 * Both sets are differentiable under tfjs's autodiff; they compute the same values (test/native-kernels.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { attention } from './attention.js';
import type { BlockParams } from './block.js';
import { clsIndicator } from './constants.js';
import { layerNorm } from './layernorm.js';
import { addPerSample, linear, matMul2d } from './linear.js';
import { mlp } from './mlp.js';

/** The image tower's patch embedding parameters and its fixed position table. */
export interface PatchEmbeddingArgs {
  w: tf.Tensor; // [P*P*3, D]
  b: tf.Tensor; // [D]
  cls: tf.Tensor; // [1, D]
  /** [L, D] fixed sin-cos positions on the host. */
  positionTable: Float32Array;
  numPatches: number;
}

export interface LayerOps {
  readonly name: 'plain' | 'native';
  /** x [N, Din] w [Din, Dout] (+ b [Dout]) -> [N, Dout]. */
  linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D;
  /** x [N, D] -> [N, D]. */
  layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D): tf.Tensor2D;
  /** Pre-LN blocks, x + attn(ln1(x)) then x + mlp(ln2(x)): [B*T, D] -> [B*T, D]; keyBias [B, 1, 1, T] or null. */
  blocks(blocks: BlockParams[], x: tf.Tensor2D, batch: number, tokens: number, keyBias: tf.Tensor4D | null): tf.Tensor2D;
  /**
   * pixels [B*(K+1), P*P*3] (CLS rows zero), keep [B*K] kept patch indices -> the blocks' input [B*(K+1), D]:
   * embedded patches plus their positions, the CLS parameter on CLS rows.
   */
  patchEmbedding(pixels: tf.Tensor2D, keep: Int32Array, batch: number, p: PatchEmbeddingArgs): tf.Tensor2D;
  /** ids, positions [B*T] (T tokens per sample) -> token + position embeddings [B*T, D]. */
  tokenEmbedding(ids: Int32Array, positions: Int32Array, batch: number, tokens: tf.Variable, positionTable: tf.Variable): tf.Tensor2D;
}

export const plainLayerOps: LayerOps = {
  name: 'plain',
  linear,
  layerNorm,
  blocks(blocks, x, batch, tokens, keyBias) {
    let h = x;
    for (const b of blocks) {
      h = tf.add(h, attention(b.attn, layerNorm(h, b.ln1.gamma as tf.Tensor1D, b.ln1.beta as tf.Tensor1D), batch, tokens, keyBias));
      h = tf.add(h, mlp(b.mlp, layerNorm(h, b.ln2.gamma as tf.Tensor1D, b.ln2.beta as tf.Tensor1D)));
    }
    return h;
  },
  patchEmbedding(pixels, keep, batch, p) {
    const rows = pixels.shape[0];
    const tokens = rows / batch;
    const d = p.positionTable.length / p.numPatches;
    const pos = tf.tensor2d(gatherPositions(p.positionTable, d, keep, batch), [rows, d]); // constant
    const isCls = clsIndicator(batch, tokens); // [B*(K+1), 1] constant
    return tf.add(tf.add(linear(pixels, p.w as tf.Tensor2D, p.b as tf.Tensor1D), pos), matMul2d(isCls.m, p.cls as tf.Tensor2D)) as tf.Tensor2D;
  },
  tokenEmbedding(ids, positions, batch, tokens, positionTable) {
    const t = ids.length / batch;
    const width = tokens.shape[1] as number;
    // Every sample's positions 0..T-1 (no masking, or truncation): the table's first T rows add per sample, whose
    // gradient is one product instead of a scatter.
    if (positions.every((v, i) => v === i % t)) {
      const tok = tf.gather(tokens, tf.tensor1d(ids, 'int32')) as tf.Tensor2D; // [B*T, D]
      return addPerSample(tok, tf.slice(positionTable as tf.Tensor2D, [0, 0], [t, width])); // [B*T, D]
    }
    const tok = tf.gather(tokens, tf.tensor1d(ids, 'int32')); // [B*T', D]
    return tf.add(tok, tf.gather(positionTable, tf.tensor1d(positions, 'int32'))) as tf.Tensor2D; // text masking
  },
};

/** [B*(K+1), D] the kept patches' fixed positions, zero on CLS rows. */
function gatherPositions(table: Float32Array, d: number, keep: Int32Array, batch: number): Float32Array {
  const k = keep.length / batch;
  const positions = new Float32Array(batch * (k + 1) * d);
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < k; j++) {
      const p = keep[b * k + j];
      positions.set(table.subarray(p * d, (p + 1) * d), (b * (k + 1) + 1 + j) * d);
    }
  }
  return positions;
}
