/**
 * The model's layer operations on the native kernels: the same arithmetic as plainLayerOps (models/nn/layer-ops.ts),
 * each half block (LayerNorm + attention or MLP + residual) one kernel each way, the towers' inputs one kernel each.
 * Used by the autodiff engine when the add-on is loaded on the wasm backend (models/engine/select.ts).
 */
import type * as tf from '@tensorflow/tfjs';
import type { LayerOps } from '../../nn/layer-ops.js';
import { constantTable } from '../../nn/constants.js';
import { LN_EPS } from '../../nn/layernorm.js';
import { nativePatchEmbedding, nativeTokenEmbedding } from './embeddings.js';
import { nativeAttentionSublayer, nativeLayerNorm, nativeLinear, nativeMlpSublayer } from './ops.js';

export const nativeLayerOps: LayerOps = {
  name: 'native',
  linear: nativeLinear,
  layerNorm: (x, gamma, beta) => nativeLayerNorm(x, gamma, beta, LN_EPS),
  blocks(blocks, x, batch, tokens, keyBias) {
    let h = x;
    for (const b of blocks) {
      h = nativeAttentionSublayer(h, b.ln1, b.attn, keyBias, batch, tokens, LN_EPS);
      h = nativeMlpSublayer(h, b.ln2, b.mlp, LN_EPS);
    }
    return h;
  },
  patchEmbedding(pixels, keep, batch, p) {
    const d = p.positionTable.length / p.numPatches;
    const table = constantTable(`vit.positions:${p.numPatches}:${d}`, p.positionTable, p.numPatches, d) as tf.Tensor2D;
    return nativePatchEmbedding(pixels, keep, batch, p.w, p.b, p.cls, table);
  },
  tokenEmbedding: (ids, positions, _batch, tokens, positionTable) => nativeTokenEmbedding(ids, positions, tokens, positionTable),
};
