/**
 * Linear layers on 2-D tensors with hand-written gradients. On wasm only plain (non-transposed) 2-D matMul reaches
 * the fast XNNPACK path, so the backward pass transposes explicitly and then multiplies plainly, and the bias
 * gradient is a ones-vector product instead of a sum over the outer axis.
 */
import * as tf from '@tensorflow/tfjs';

function onesRow(n: number): tf.Tensor2D {
  return tf.ones([1, n]);
}

/** y = x w + b. x [N, Din], w [Din, Dout], b [Dout] -> [N, Dout]. */
const linearWithBias = tf.customGrad((x, w, b, save) => {
  const [x2, w2, b1] = [x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D];
  (save as tf.GradSaveFunc)([x2, w2]);
  return {
    value: tf.add(tf.matMul(x2, w2), b1),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      const dy2 = dy as tf.Tensor2D;
      return [
        tf.matMul(dy2, tf.transpose(ws)), // [N, Din]
        tf.matMul(tf.transpose(xs), dy2), // [Din, Dout]
        tf.reshape(tf.matMul(onesRow(xs.shape[0]), dy2), [ws.shape[1]]), // [Dout]
      ];
    },
  };
});

/** y = x w. x [N, Din], w [Din, Dout] -> [N, Dout]; both may be trainable. */
export const matMul2d = tf.customGrad((x, w, save) => {
  const [x2, w2] = [x as tf.Tensor2D, w as tf.Tensor2D];
  (save as tf.GradSaveFunc)([x2, w2]);
  return {
    value: tf.matMul(x2, w2),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      const dy2 = dy as tf.Tensor2D;
      return [tf.matMul(dy2, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy2)];
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  if (x.rank !== 2 || x.shape[1] !== w.shape[0]) {
    throw new Error(`linear: expected x [N, ${w.shape[0]}], got [${x.shape}]`);
  }
  return (b ? linearWithBias(x, w, b) : matMul2d(x, w)) as tf.Tensor2D;
}

/**
 * y = m x for a constant matrix m [R, N] (token pooling, row selection, broadcasting a row): x [N, D] -> [R, D].
 * mT must be m transposed [N, R]; only x gets a gradient, dx = mT dy.
 */
export function constMatMul(m: tf.Tensor2D, mT: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor2D {
  if (m.shape[1] !== x.shape[0] || mT.shape[0] !== m.shape[1] || mT.shape[1] !== m.shape[0]) {
    throw new Error(`constMatMul: m [${m.shape}], mT [${mT.shape}] and x [${x.shape}] do not fit`);
  }
  const op = tf.customGrad((xi, save) => {
    (save as tf.GradSaveFunc)([]);
    return {
      value: tf.matMul(m, xi as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor) => [tf.matMul(mT, dy as tf.Tensor2D)],
    };
  });
  return op(x) as tf.Tensor2D;
}

/**
 * x [B*T, D] + table [T, D] repeated over the B samples. The table's gradient sums over samples as one ones-vector
 * product ([1, B] x [B, T*D]) instead of a sum over an outer axis.
 */
export const addPerSample = tf.customGrad((x, table, save) => {
  const [x2, t2] = [x as tf.Tensor2D, table as tf.Tensor2D];
  const [n, d] = x2.shape;
  const t = t2.shape[0];
  if (n % t !== 0 || t2.shape[1] !== d) throw new Error(`addPerSample: x [${x2.shape}] is not a whole number of [${t2.shape}] blocks`);
  (save as tf.GradSaveFunc)([]);
  const b = n / t;
  return {
    value: tf.reshape(tf.add(tf.reshape(x2, [b, t * d]), tf.reshape(t2, [1, t * d])), [n, d]),
    gradFunc: (dy: tf.Tensor) => [dy, tf.reshape(tf.matMul(tf.ones([1, b]), tf.reshape(dy, [b, t * d]) as tf.Tensor2D), [t, d])],
  };
}) as (x: tf.Tensor2D, table: tf.Tensor2D) => tf.Tensor2D;
