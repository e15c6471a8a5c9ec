/** Pre-LN transformer block and stack: x + attn(ln1(x)), then x + mlp(ln2(x)); tokens flattened as [B*T, D]. */
import * as tf from '@tensorflow/tfjs';
import type { TransformerShape } from '../config.js';
import { attention, makeAttention, type AttentionParams } from './attention.js';
import { nativeAttentionSublayer, nativeMlpSublayer } from '../kernels/native/ops.js';
import { nativeKernelsActive } from '../kernels/native/register.js';
import { layerNorm, LN_EPS } from './layernorm.js';
import { makeMlp, mlp, type MlpParams } from './mlp.js';
import type { ParamStore } from './params.js';

export interface LayerNormParams {
  gamma: tf.Variable; // [D]
  beta: tf.Variable; // [D]
}

export function makeLayerNorm(store: ParamStore, prefix: string, width: number): LayerNormParams {
  return { gamma: store.constant(`${prefix}.gamma`, [width], 1, false), beta: store.constant(`${prefix}.beta`, [width], 0, false) };
}

export function applyLayerNorm(p: LayerNormParams, x: tf.Tensor2D): tf.Tensor2D {
  return layerNorm(x, p.gamma as tf.Tensor1D, p.beta as tf.Tensor1D);
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

/** x [B*T, D] -> [B*T, D]. */
export function runBlocks(blocks: BlockParams[], x: tf.Tensor2D, batch: number, tokens: number, keyBias: tf.Tensor4D | null): tf.Tensor2D {
  let h = x;
  if (nativeKernelsActive()) {
    // Each half block is one native kernel each way (the same arithmetic as below).
    for (const b of blocks) {
      h = nativeAttentionSublayer(h, b.ln1, b.attn, keyBias, batch, tokens, LN_EPS);
      h = nativeMlpSublayer(h, b.ln2, b.mlp, LN_EPS);
    }
    return h;
  }
  for (const b of blocks) {
    h = tf.add(h, attention(b.attn, applyLayerNorm(b.ln1, h), batch, tokens, keyBias));
    h = tf.add(h, mlp(b.mlp, applyLayerNorm(b.ln2, h)));
  }
  return h;
}
