/**
 * Multi-head self-attention on a flattened token matrix. Tokens stay [B*T, D] so that the q/k/v and output
 * projections are plain 2-D matMuls (the fast path on wasm); only the per-head products are batched.
 */
import * as tf from '@tensorflow/tfjs';
import { batchMatMulPlain } from '../kernels/batch-matmul-wasm.js';
import { linear } from './linear.js';
import type { ParamStore } from './params.js';

export interface AttentionParams {
  wq: tf.Variable; // [D, D]
  bq: tf.Variable; // [D]
  wk: tf.Variable; // [D, D]
  bk: tf.Variable; // [D]
  wv: tf.Variable; // [D, D]
  bv: tf.Variable; // [D]
  wo: tf.Variable; // [D, D]
  bo: tf.Variable; // [D]
  heads: number;
}

export function makeAttention(store: ParamStore, prefix: string, width: number, heads: number): AttentionParams {
  if (width % heads !== 0) throw new Error(`attention: heads ${heads} does not divide width ${width}`);
  return {
    wq: store.xavier(`${prefix}.wq`, width, width),
    bq: store.constant(`${prefix}.bq`, [width], 0, false),
    wk: store.xavier(`${prefix}.wk`, width, width),
    bk: store.constant(`${prefix}.bk`, [width], 0, false),
    wv: store.xavier(`${prefix}.wv`, width, width),
    bv: store.constant(`${prefix}.bv`, [width], 0, false),
    wo: store.xavier(`${prefix}.wo`, width, width),
    bo: store.constant(`${prefix}.bo`, [width], 0, false),
    heads,
  };
}

/** Batched a b for [G, M, K] x [G, K, N]; the backward pass transposes explicitly and multiplies plainly. */
const bmm = tf.customGrad((a, b, save) => {
  (save as tf.GradSaveFunc)([a as tf.Tensor, b as tf.Tensor]);
  return {
    value: batchMatMulPlain(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [as, bs] = saved as tf.Tensor3D[];
      const dy3 = dy as tf.Tensor3D;
      return [batchMatMulPlain(dy3, tf.transpose(bs, [0, 2, 1])), batchMatMulPlain(tf.transpose(as, [0, 2, 1]), dy3)];
    },
  };
}) as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/**
 * x [B*T, D] -> [B*T, D]. keyBias: optional [B, 1, 1, T] additive bias (0 for real tokens, a large negative number
 * for padding keys); it is a constant, never differentiated.
 */
export function attention(p: AttentionParams, x: tf.Tensor2D, batch: number, tokens: number, keyBias: tf.Tensor4D | null): tf.Tensor2D {
  const [n, d] = x.shape;
  if (n !== batch * tokens) throw new Error(`attention: x has ${n} rows, expected batch ${batch} x tokens ${tokens}`);
  const h = p.heads;
  const dh = d / h;
  // Three projections rather than one [D, 3D] product: splitting the inner axis afterwards is slow on wasm.
  const q2 = linear(x, p.wq as tf.Tensor2D, p.bq as tf.Tensor1D); // [B*T, D]
  const k2 = linear(x, p.wk as tf.Tensor2D, p.bk as tf.Tensor1D); // [B*T, D]
  const v2 = linear(x, p.wv as tf.Tensor2D, p.bv as tf.Tensor1D); // [B*T, D]
  const q = tf.reshape(tf.transpose(tf.reshape(tf.mul(q2, 1 / Math.sqrt(dh)), [batch, tokens, h, dh]), [0, 2, 1, 3]), [batch * h, tokens, dh]) as tf.Tensor3D; // [B*H, T, dh]
  const kT = tf.reshape(tf.transpose(tf.reshape(k2, [batch, tokens, h, dh]), [0, 2, 3, 1]), [batch * h, dh, tokens]) as tf.Tensor3D; // [B*H, dh, T]
  const v = tf.reshape(tf.transpose(tf.reshape(v2, [batch, tokens, h, dh]), [0, 2, 1, 3]), [batch * h, tokens, dh]) as tf.Tensor3D; // [B*H, T, dh]
  let scores: tf.Tensor3D = bmm(q, kT); // [B*H, T, T]
  if (keyBias) scores = tf.reshape(tf.add(tf.reshape(scores, [batch, h, tokens, tokens]), keyBias), [batch * h, tokens, tokens]) as tf.Tensor3D;
  const probs = tf.softmax(scores); // [B*H, T, T]
  const o = bmm(probs, v); // [B*H, T, dh]
  const merged = tf.reshape(tf.transpose(tf.reshape(o, [batch, h, tokens, dh]), [0, 2, 1, 3]), [n, d]) as tf.Tensor2D; // [B*T, D]
  return linear(merged, p.wo as tf.Tensor2D, p.bo as tf.Tensor1D);
}
