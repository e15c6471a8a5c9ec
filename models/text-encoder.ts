/**
 * Text encoder: token embeddings + learned positions, bidirectional pre-LN blocks with padding keys masked out,
 * final LayerNorm, pooled at position 0 (the start token).
 */
import * as tf from '@tensorflow/tfjs';
import type { TextEncoderConfig } from './config.js';
import { applyLayerNorm, makeBlocks, makeLayerNorm, type BlockParams, type LayerNormParams } from './nn/block.js';
import { selectMatrix } from './nn/constants.js';
import type { LayerOps } from './nn/layer-ops.js';
import { constMatMul } from './nn/linear.js';
import type { ParamStore } from './nn/params.js';

/** Added to attention scores of padding keys; large enough that softmax gives them ~0 weight, finite to avoid NaN. */
export const PAD_BIAS = -1e9;

/** The attention key bias of token rows: PAD_BIAS on padding tokens, else 0; null when there is no padding. */
export function padKeyBias(ids: Int32Array, padId: number): Float32Array | null {
  let bias: Float32Array | null = null;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === padId) {
      bias ??= new Float32Array(ids.length);
      bias[i] = PAD_BIAS;
    }
  }
  return bias;
}

export interface TextParams {
  tokens: tf.Variable; // [V, D]
  positions: tf.Variable; // [T, D]
  blocks: BlockParams[];
  lnFinal: LayerNormParams;
}

export class TextEncoder {
  readonly params: TextParams;

  constructor(store: ParamStore, readonly cfg: TextEncoderConfig, readonly vocabSize: number, private readonly ops: LayerOps) {
    this.params = {
      tokens: store.normal('text.tokens', [vocabSize, cfg.width], 0.02, true),
      positions: store.normal('text.positions', [cfg.context_length, cfg.width], 0.01, false),
      blocks: makeBlocks(store, 'text', cfg),
      lnFinal: makeLayerNorm(store, 'text.ln_final', cfg.width),
    };
  }

  /**
   * ids [B*T] token ids, positions [B*T] position index of each token (0..context_length-1; after text masking the
   * kept tokens keep their original positions), padId for the key mask -> pooled features [B, D] (token 0 of each
   * sample, which must be the start token).
   */
  encode(ids: Int32Array, positions: Int32Array, batch: number, padId: number): tf.Tensor2D {
    const { x, tokens, keyBias } = this.blockInput(ids, positions, batch, padId);
    return this.finish(this.ops.blocks(this.params.blocks, x, batch, tokens, keyBias), batch, tokens); // [B, D]
  }

  /** The transformer blocks' input [B*T, D] (token + position embeddings), T, and the padding key bias (or null). */
  blockInput(ids: Int32Array, positions: Int32Array, batch: number, padId: number): { x: tf.Tensor2D; tokens: number; keyBias: tf.Tensor4D | null } {
    const tokens = ids.length / batch;
    if (!Number.isInteger(tokens) || positions.length !== ids.length) {
      throw new Error(`text.encode: ${ids.length} ids / ${positions.length} positions do not split over batch ${batch}`);
    }
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= this.vocabSize) throw new Error(`text.encode: token id ${ids[i]} at ${i} outside vocabulary [0, ${this.vocabSize})`);
    }
    const p = this.params;
    const x = this.ops.tokenEmbedding(ids, positions, batch, p.tokens, p.positions); // [B*T, D]
    const bias = padKeyBias(ids, padId);
    const keyBias = bias ? tf.tensor4d(bias, [batch, 1, 1, tokens]) : null; // [B, 1, 1, T]
    return { x, tokens, keyBias };
  }

  /** The blocks' output [B*T, D] -> pooled features [B, D]: token 0 of each sample, after the final LayerNorm. */
  finish(h: tf.Tensor2D, batch: number, tokens: number): tf.Tensor2D {
    const sel = selectMatrix(batch, tokens, 0);
    return applyLayerNorm(this.ops, this.params.lnFinal, constMatMul(sel.m, sel.mT, h)); // [B, D]
  }
}
