/**
 * The layers' ops on the native kernels (register.ts), each with its gradient: linear, LayerNorm, and whole pre-LN
 * sublayers (LayerNorm + attention or MLP + residual) as one kernel each way. nativeLayerOps (layer-ops.ts) builds the
 * model's layers from them; they compute what the plain ops compute (test/native-kernels.test.ts compares both).
 */
import * as tf from '@tensorflow/tfjs';
import { ATTENTION_SAVED, ATTENTION_WEIGHTS, KERNELS, MLP_SAVED, MLP_WEIGHTS } from './register.js';

function run(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(kernel, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
}

/** dx = dy w^T and dw = x^T dy as BLAS products with transposes (no transpose copies). */
function linearGrads(dy: tf.Tensor2D, x: tf.Tensor2D, w: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] {
  return [tf.matMul(dy, w, false, true), tf.matMul(x, dy, true, false)];
}

const linearWithBias = tf.customGrad((x, w, b, save) => {
  (save as tf.GradSaveFunc)([x as tf.Tensor, w as tf.Tensor]);
  return {
    value: run(KERNELS.linear, { x: x as tf.Tensor, w: w as tf.Tensor, bias: b as tf.Tensor }) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      return [...linearGrads(dy as tf.Tensor2D, xs, ws), run(KERNELS.columnSums, { x: dy }) as tf.Tensor1D];
    },
  };
});

const linearNoBias = tf.customGrad((x, w, save) => {
  (save as tf.GradSaveFunc)([x as tf.Tensor, w as tf.Tensor]);
  return {
    value: run(KERNELS.linear, { x: x as tf.Tensor, w: w as tf.Tensor }) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => linearGrads(dy as tf.Tensor2D, saved[0] as tf.Tensor2D, saved[1] as tf.Tensor2D),
  };
});

/** x [N, Din] w [Din, Dout] (+ b [Dout]) -> [N, Dout]. */
export function nativeLinear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  return (b ? linearWithBias(x, w, b) : linearNoBias(x, w)) as tf.Tensor2D;
}

/** LayerNorm over the last axis of x [N, D]. */
export function nativeLayerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  const op = tf.customGrad((xi, g, b, save) => {
    const [y, xhat, rstd] = run(KERNELS.layerNorm, { x: xi as tf.Tensor, gamma: g as tf.Tensor, beta: b as tf.Tensor }, { eps }) as tf.Tensor[];
    (save as tf.GradSaveFunc)([xhat, rstd, g as tf.Tensor]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, gs] = saved;
        return run(KERNELS.layerNormGrad, { dy, xhat: xh, rstd: rs, gamma: gs }) as tf.Tensor[];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor2D;
}

/** keyBias, when given, must hold one value per token row (batch * tokens, e.g. [B, 1, 1, T]). */
export function checkKeyBias(keyBias: tf.Tensor | null, batch: number, tokens: number): void {
  if (keyBias && keyBias.size !== batch * tokens) throw new Error(`attention: keyBias has ${keyBias.size} values, expected batch ${batch} x tokens ${tokens}`);
}

function named(names: readonly string[], tensors: tf.Tensor[]): Record<string, tf.Tensor> {
  return Object.fromEntries(names.map((n, i) => [n, tensors[i]]));
}

/**
 * One fused sublayer: forward kernel -> [out, ...saved], backward kernel -> [dh, ...one gradient per weight]. `extra`
 * inputs (the key bias) are constants without gradients. The kernel's saved tensors go through save() (the engine
 * keeps them for the backward pass); weights that are variables, which outlive any gradient computation, are used
 * directly rather than saved: each saved tensor costs a kernel call of its own (a clone) on every step.
 */
function sublayer(kernel: string, gradKernel: string, weightNames: readonly string[], savedNames: readonly string[], attrs: Record<string, number>, extra: Record<string, tf.Tensor>) {
  return tf.customGrad((...args) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [h, ...weights] = args as tf.Tensor[];
    const [out, ...saved] = run(kernel, { h, ...named(weightNames, weights), ...extra }, attrs) as tf.Tensor[];
    const weightsAreVariables = weights.every((w) => w instanceof tf.Variable);
    save(weightsAreVariables ? saved : [...saved, ...weights]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, kept: tf.Tensor[]) => {
        const s = kept.slice(0, savedNames.length);
        const w = weightsAreVariables ? weights : kept.slice(savedNames.length);
        return run(gradKernel, { dy, ...named(weightNames, w), ...named(savedNames, s) }, attrs) as tf.Tensor[];
      },
    };
  });
}

export interface SublayerNorm {
  gamma: tf.Tensor;
  beta: tf.Tensor;
}

/** h + attention(LN(h)) wo + bo on h [B*T, D]; keyBias (B*T values, e.g. [B, 1, 1, T]) is a constant: no gradient. */
export function nativeAttentionSublayer(
  h: tf.Tensor2D,
  ln: SublayerNorm,
  p: { wq: tf.Tensor; bq: tf.Tensor; wk: tf.Tensor; bk: tf.Tensor; wv: tf.Tensor; bv: tf.Tensor; wo: tf.Tensor; bo: tf.Tensor; heads: number },
  keyBias: tf.Tensor | null,
  batch: number,
  tokens: number,
  eps: number,
): tf.Tensor2D {
  checkKeyBias(keyBias, batch, tokens);
  if (h.shape[0] !== batch * tokens) throw new Error(`attention: h has ${h.shape[0]} rows, expected batch ${batch} x tokens ${tokens}`);
  const attrs = { batch, tokens, heads: p.heads, scale: 1 / Math.sqrt(h.shape[1] / p.heads), eps };
  const op = sublayer(KERNELS.attentionSublayer, KERNELS.attentionSublayerGrad, ATTENTION_WEIGHTS, ATTENTION_SAVED, attrs, keyBias ? { keyBias } : {});
  return op(h, ln.gamma, ln.beta, p.wq, p.bq, p.wk, p.bk, p.wv, p.bv, p.wo, p.bo) as tf.Tensor2D;
}

/** h + QuickGELU(LN(h) w1 + b1) w2 + b2 on h [N, D]. */
export function nativeMlpSublayer(h: tf.Tensor2D, ln: SublayerNorm, p: { w1: tf.Tensor; b1: tf.Tensor; w2: tf.Tensor; b2: tf.Tensor }, eps: number): tf.Tensor2D {
  const op = sublayer(KERNELS.mlpSublayer, KERNELS.mlpSublayerGrad, MLP_WEIGHTS, MLP_SAVED, { eps }, {});
  return op(h, ln.gamma, ln.beta, p.w1, p.b1, p.w2, p.b2) as tf.Tensor2D;
}
