/**
 * The CLIP loss head as one kernel each way on the wasm backend: both embeddings' L2 normalisation, the logits
 * exp(logScale) * u v^T (one OpenBLAS product), and the symmetric cross-entropy (image->text over rows, text->image
 * over columns, mean of the two). The plain version (l2Normalize + contrastiveLoss in models/flip-model.ts) runs ~60
 * small tfjs kernels a step for it, forward and backward, whose bookkeeping cost more than the arithmetic. Compared
 * with the plain version, values and gradients, by test/native-kernels.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { loadNativeAddon, type NativeAddon } from './addon.js';
import { allocate, release, view, type WasmBackendInternals } from './wasm-heap.js';

const FORWARD = 'FlipNativeClipLoss';
const BACKWARD = 'FlipNativeClipLossGrad';
/** Added to the squared norm before the reciprocal square root, as l2Normalize does. */
const NORM_EPS = 1e-12;

/** Where the forward pass's saved values lie in its one saved buffer (floats). */
function layout(b: number, e: number) {
  const u = 0;
  const v = u + b * e;
  const rx = v + b * e;
  const ry = rx + b;
  const p = ry + b; // row softmax of the logits
  const q = p + b * b; // column softmax
  const logits = q + b * b;
  const scale = logits + b * b;
  return { u, v, rx, ry, p, q, logits, scale, total: scale + 1 };
}

/** out rows = x rows / sqrt(|x|^2 + eps); r[i] the reciprocal norm. */
function normalizeRows(x: Float32Array, out: Float32Array, r: Float32Array, b: number, e: number): void {
  for (let i = 0; i < b; i++) {
    let ss = 0;
    for (let j = 0; j < e; j++) ss += x[i * e + j] * x[i * e + j];
    const ri = Math.fround(1 / Math.sqrt(Math.fround(ss) + NORM_EPS));
    r[i] = ri;
    for (let j = 0; j < e; j++) out[i * e + j] = x[i * e + j] * ri;
  }
}

/**
 * Softmax of each of the b lines of logits [b, b] into out (rows: lineStride b, step 1; columns: lineStride 1, step b);
 * returns the lines' summed cross-entropy against their diagonal entry.
 */
function softmaxLines(logits: Float32Array, out: Float32Array, b: number, lineStride: number, step: number): number {
  let loss = 0;
  for (let l = 0; l < b; l++) {
    const at = l * lineStride;
    let max = -Infinity;
    for (let k = 0; k < b; k++) max = Math.max(max, logits[at + k * step]);
    let sum = 0;
    for (let k = 0; k < b; k++) sum += (out[at + k * step] = Math.exp(logits[at + k * step] - max));
    for (let k = 0; k < b; k++) out[at + k * step] /= sum;
    loss -= logits[l * (b + 1)] - max - Math.log(sum);
  }
  return loss;
}

function registerClipLossKernels(addon: NativeAddon): void {
  if (tf.getKernel(FORWARD, 'wasm')) return;

  // Inputs x, y [B, E] (unnormalised), logScale []; outputs the loss [] and the saved buffer.
  const forward: tf.KernelFunc = ({ inputs, backend }) => {
    const be = backend as unknown as WasmBackendInternals;
    const { x, y, logScale } = inputs as Record<string, tf.TensorInfo>;
    const [b, e] = x.shape;
    const at = layout(b, e);
    const [lossInfo, savedInfo] = allocate(be, [[], [at.total]]);
    const saved = view(be, savedInfo, 'saved');
    const u = saved.subarray(at.u, at.u + b * e);
    const v = saved.subarray(at.v, at.v + b * e);
    normalizeRows(view(be, x, 'x'), u, saved.subarray(at.rx, at.rx + b), b, e);
    normalizeRows(view(be, y, 'y'), v, saved.subarray(at.ry, at.ry + b), b, e);
    const logits = saved.subarray(at.logits, at.logits + b * b);
    addon.gemm(u, v, logits, 1, b, b, e, false, true, 0, 0, 0, false);
    const s = Math.fround(Math.exp(view(be, logScale, 'logScale')[0]));
    saved[at.scale] = s;
    for (let k = 0; k < b * b; k++) logits[k] *= s;
    const p = saved.subarray(at.p, at.p + b * b);
    const q = saved.subarray(at.q, at.q + b * b);
    // Rows: image i against every caption; columns: caption j against every image. The matches are the diagonal.
    const loss = softmaxLines(logits, p, b, b, 1) + softmaxLines(logits, q, b, 1, b);
    view(be, lossInfo, 'loss')[0] = loss / (2 * b);
    return [lossInfo, savedInfo];
  };

  // Inputs dy [], saved; outputs dx, dy [B, E] and dLogScale [].
  const backward: tf.KernelFunc = ({ inputs, attrs, backend }) => {
    const be = backend as unknown as WasmBackendInternals;
    const { b, e } = attrs as unknown as { b: number; e: number };
    const at = layout(b, e);
    const [dxInfo, dyInfo, dsInfo, gInfo, duInfo, dvInfo] = allocate(be, [[b, e], [b, e], [], [b, b], [b, e], [b, e]]);
    const saved = view(be, inputs.saved as tf.TensorInfo, 'saved');
    if (saved.length !== at.total) throw new Error(`clip loss backward: saved has ${saved.length} floats, expected ${at.total}`);
    const upstream = view(be, inputs.dy as tf.TensorInfo, 'dy')[0];
    const [p, q, logits] = [at.p, at.q, at.logits].map((o) => saved.subarray(o, o + b * b));
    const s = saved[at.scale];
    // dLoss/dlogits = upstream / 2B * (P - I + Q - I).
    const g = view(be, gInfo, 'buffer');
    const c = upstream / (2 * b);
    let dLogScale = 0;
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < b; j++) {
        const k = i * b + j;
        g[k] = c * (p[k] + q[k] - (i === j ? 2 : 0));
        dLogScale += g[k] * logits[k]; // logits = exp(logScale) * u v^T
      }
    }
    view(be, dsInfo, 'dLogScale')[0] = dLogScale;
    // Gradients of the unit rows: du = s G v, dv = s G^T u; then through the normalisation.
    const u = saved.subarray(at.u, at.u + b * e);
    const v = saved.subarray(at.v, at.v + b * e);
    const du = view(be, duInfo, 'buffer');
    const dv = view(be, dvInfo, 'buffer');
    addon.gemm(g, v, du, 1, b, e, b, false, false, 0, 0, 0, false);
    addon.gemm(g, u, dv, 1, b, e, b, true, false, 0, 0, 0, false);
    const throughNorm = (d: Float32Array, unit: Float32Array, r: Float32Array, out: Float32Array) => {
      for (let i = 0; i < b; i++) {
        let dot = 0;
        for (let j = 0; j < e; j++) dot += d[i * e + j] * unit[i * e + j];
        for (let j = 0; j < e; j++) out[i * e + j] = s * r[i] * (d[i * e + j] - unit[i * e + j] * dot);
      }
    };
    throughNorm(du, u, saved.subarray(at.rx, at.rx + b), view(be, dxInfo, 'dx'));
    throughNorm(dv, v, saved.subarray(at.ry, at.ry + b), view(be, dyInfo, 'dy'));
    release(be, [gInfo, duInfo, dvInfo]);
    return [dxInfo, dyInfo, dsInfo];
  };

  tf.registerKernel({ kernelName: FORWARD, backendName: 'wasm', kernelFunc: forward });
  tf.registerKernel({ kernelName: BACKWARD, backendName: 'wasm', kernelFunc: backward });
}

/**
 * Symmetric CLIP loss of unnormalised embeddings x (images) and y (captions), [B, E] each, at logit scale
 * exp(logScale): the same value as contrastiveLoss(l2Normalize(x), l2Normalize(y), logScale), in two kernels.
 */
export function nativeClipLoss(x: tf.Tensor2D, y: tf.Tensor2D, logScale: tf.Scalar): tf.Scalar {
  const addon = loadNativeAddon().addon;
  if (!addon) throw new Error('native clip loss: the add-on is not loaded');
  if (x.shape[0] !== y.shape[0] || x.shape[1] !== y.shape[1]) throw new Error(`clip loss: images [${x.shape}] and captions [${y.shape}] differ`);
  registerClipLossKernels(addon);
  const [b, e] = x.shape;
  const op = tf.customGrad((xs, ys, ls, save) => {
    const [loss, saved] = tf.engine().runKernel(FORWARD, { x: xs, y: ys, logScale: ls } as unknown as tf.NamedTensorMap) as tf.Tensor[];
    (save as tf.GradSaveFunc)([saved]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, [kept]: tf.Tensor[]) =>
        tf.engine().runKernel(BACKWARD, { dy, saved: kept } as unknown as tf.NamedTensorMap, { b, e } as unknown as tf.NamedAttrMap) as tf.Tensor[],
    };
  });
  return op(x, y, logScale) as tf.Scalar;
}
