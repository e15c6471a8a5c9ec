/** LayerNorm over the last axis of a 2-D tensor with a hand-written gradient (all reductions along the inner axis;
 * gamma/beta gradients as ones-vector products). */
import * as tf from '@tensorflow/tfjs';

export const LN_EPS = 1e-5;

const layerNormOp = tf.customGrad((x, gamma, beta, save) => {
  const x2 = x as tf.Tensor2D;
  const d = x2.shape[1];
  const mu = tf.mean(x2, -1, true); // [N, 1]
  const xc = tf.sub(x2, mu); // [N, D]
  const variance = tf.mean(tf.square(xc), -1, true); // [N, 1]
  const rstd = tf.rsqrt(tf.add(variance, LN_EPS)); // [N, 1]
  const xhat = tf.mul(xc, rstd); // [N, D]
  (save as tf.GradSaveFunc)([xhat, rstd, gamma as tf.Tensor]);
  return {
    value: tf.add(tf.mul(xhat, gamma as tf.Tensor), beta as tf.Tensor),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xh, rs, g] = saved;
      const n = xh.shape[0];
      const ones = tf.ones([1, n]);
      const dxhat = tf.mul(dy, g); // [N, D]
      const m1 = tf.mean(dxhat, -1, true); // [N, 1]
      const m2 = tf.mean(tf.mul(dxhat, xh), -1, true); // [N, 1]
      const dx = tf.mul(rs, tf.sub(tf.sub(dxhat, m1), tf.mul(xh, m2)));
      const dgamma = tf.reshape(tf.matMul(ones, tf.mul(dy, xh) as tf.Tensor2D), [d]);
      const dbeta = tf.reshape(tf.matMul(ones, dy as tf.Tensor2D), [d]);
      return [dx, dgamma, dbeta];
    },
  };
});

/** x [N, D], gamma [D], beta [D] -> [N, D]. */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D): tf.Tensor2D {
  if (x.rank !== 2 || x.shape[1] !== gamma.shape[0]) throw new Error(`layerNorm: expected x [N, ${gamma.shape[0]}], got [${x.shape}]`);
  return layerNormOp(x, gamma, beta) as tf.Tensor2D;
}
