/** Transformer MLP: linear -> GELU (sigmoid approximation x * sigmoid(1.702 x), as OpenAI CLIP) -> linear. */
import * as tf from '@tensorflow/tfjs';
import { linear } from './linear.js';
import type { ParamStore } from './params.js';

export interface MlpParams {
  w1: tf.Variable; // [D, M]
  b1: tf.Variable; // [M]
  w2: tf.Variable; // [M, D]
  b2: tf.Variable; // [D]
}

export function makeMlp(store: ParamStore, prefix: string, width: number, hidden: number): MlpParams {
  return {
    w1: store.xavier(`${prefix}.w1`, width, hidden),
    b1: store.constant(`${prefix}.b1`, [hidden], 0, false),
    w2: store.xavier(`${prefix}.w2`, hidden, width),
    b2: store.constant(`${prefix}.b2`, [width], 0, false),
  };
}

/** gelu(x) ~ x s, s = sigmoid(1.702 x); d/dx = s + 1.702 x s (1 - s). One fused-ish op pair each way. */
export const quickGelu = tf.customGrad((x, save) => {
  const s = tf.sigmoid(tf.mul(x as tf.Tensor, 1.702));
  (save as tf.GradSaveFunc)([x as tf.Tensor, s]);
  return {
    value: tf.mul(x as tf.Tensor, s),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ss] = saved;
      const ds = tf.add(ss, tf.mul(tf.mul(xs, 1.702), tf.mul(ss, tf.sub(1, ss))));
      return [tf.mul(dy, ds)];
    },
  };
}) as (x: tf.Tensor2D) => tf.Tensor2D;

/** x [N, D] -> [N, D]. */
export function mlp(p: MlpParams, x: tf.Tensor2D): tf.Tensor2D {
  const pre = linear(x, p.w1 as tf.Tensor2D, p.b1 as tf.Tensor1D); // [N, M]
  const hdn = quickGelu(pre);
  return linear(hdn, p.w2 as tf.Tensor2D, p.b2 as tf.Tensor1D); // [N, D]
}
