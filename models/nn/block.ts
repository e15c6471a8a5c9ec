/**
 * Parameters of pre-LN transformer blocks (x + attn(ln1(x)), then x + mlp(ln2(x)); tokens flattened as [B*T, D]).
 * The stack itself runs as LayerOps.blocks (models/nn/layer-ops.ts) or inside an engine's own kernels.
 */
import type * as tf from '@tensorflow/tfjs';
import type { TransformerShape } from '../config.js';
import { makeAttention, type AttentionParams } from './attention.js';
import type { LayerOps } from './layer-ops.js';
import { makeMlp, type MlpParams } from './mlp.js';
import type { ParamStore } from './params.js';

export interface LayerNormParams {
  gamma: tf.Variable; // [D]
  beta: tf.Variable; // [D]
}

export function makeLayerNorm(store: ParamStore, prefix: string, width: number): LayerNormParams {
  return { gamma: store.constant(`${prefix}.gamma`, [width], 1, false), beta: store.constant(`${prefix}.beta`, [width], 0, false) };
}

export function applyLayerNorm(ops: LayerOps, p: LayerNormParams, x: tf.Tensor2D): tf.Tensor2D {
  return ops.layerNorm(x, p.gamma as tf.Tensor1D, p.beta as tf.Tensor1D);
}

export interface BlockParams {
  ln1: LayerNormParams;
  attn: AttentionParams;
  ln2: LayerNormParams;
  mlp: MlpParams;
}

export function makeBlocks(store: ParamStore, prefix: string, shape: TransformerShape): BlockParams[] {
  const blocks: BlockParams[] = [];
  for (let i = 0; i < shape.depth; i++) {
    const p = `${prefix}.block${i}`;
    blocks.push({
      ln1: makeLayerNorm(store, `${p}.ln1`, shape.width),
      attn: makeAttention(store, `${p}.attn`, shape.width, shape.heads),
      ln2: makeLayerNorm(store, `${p}.ln2`, shape.width),
      mlp: makeMlp(store, `${p}.mlp`, shape.width, Math.round(shape.width * shape.mlp_ratio)),
    });
  }
  return blocks;
}
