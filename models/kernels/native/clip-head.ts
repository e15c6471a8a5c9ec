/**
 * The CLIP head as one kernel each way on the wasm backend (native/src/clip_head.cc): from the two towers' last hidden
 * states, packed in one tensor as the stacks kernel returns them, to the loss. Per tower the final LayerNorm, the
 * pooling (the image tower's mean over all tokens, the text tower's first token), the projection and the L2
 * normalisation; then the logits exp(logScale) u v^T and the symmetric cross-entropy. The plain version (split,
 * applyLayerNorm, pooling products, matMul2d, l2Normalize, contrastiveLoss) runs ~40 small tfjs kernels each way, whose
 * bookkeeping cost more than the arithmetic. Compared with the plain version, values and gradients, by
 * test/native-kernels.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { loadNativeAddon, type NativeAddon } from './addon.js';
import { runSavedBufferOp } from './saved-buffer-op.js';
import { allocate, view, type WasmBackendInternals } from './wasm-heap.js';

const FORWARD = 'FlipNativeClipHead';
const BACKWARD = 'FlipNativeClipHeadGrad';

/** One tower's part of the head. */
export interface HeadTower {
  /** Tokens per sample of this tower's rows in the packed hidden states. */
  tokens: number;
  /** Mean over every token (the image tower), or the first token (the text tower). */
  pool: 'mean' | 'first';
  /** The final LayerNorm's gamma and beta [width]. */
  lnFinal: { gamma: tf.Tensor; beta: tf.Tensor };
  /** [width, embed] */
  proj: tf.Tensor;
}

interface HeadAttrs {
  batch: number;
  tokensA: number;
  tokensB: number;
  meanA: boolean;
  meanB: boolean;
  width: number;
  embed: number;
  eps: number;
}

const WEIGHTS = ['lnGammaA', 'lnBetaA', 'projA', 'lnGammaB', 'lnBetaB', 'projB'];

function shapeArgs(a: HeadAttrs): [number, number, number, boolean, boolean, number, number] {
  return [a.batch, a.tokensA, a.tokensB, a.meanA, a.meanB, a.width, a.embed];
}

function registerClipHeadKernels(addon: NativeAddon): void {
  if (tf.getKernel(FORWARD, 'wasm')) return;

  // Inputs h (packed), the six weights, logScale []; outputs the loss [] and the saved buffer.
  const forward: tf.KernelFunc = ({ inputs, attrs, backend }) => {
    const be = backend as unknown as WasmBackendInternals;
    const ins = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as HeadAttrs;
    const [lossInfo, savedInfo] = allocate(be, [[], [addon.clipHeadSavedFloats(...shapeArgs(a))]]);
    const weights = WEIGHTS.map((w) => view(be, ins[w], w));
    const logScale = view(be, ins.logScale, 'logScale')[0];
    view(be, lossInfo, 'loss')[0] = addon.clipHeadForward(view(be, ins.h, 'h'), weights, logScale, view(be, savedInfo, 'saved'), ...shapeArgs(a), a.eps);
    return [lossInfo, savedInfo];
  };

  // Inputs dy [], saved, the six weights; outputs dh (packed), the six weights' gradients, dLogScale [].
  const backward: tf.KernelFunc = ({ inputs, attrs, backend }) => {
    const be = backend as unknown as WasmBackendInternals;
    const ins = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as HeadAttrs;
    const rows = a.batch * (a.tokensA + a.tokensB);
    const outs = allocate(be, [[rows, a.width], ...WEIGHTS.map((w) => ins[w].shape), []]);
    const v = outs.map((o) => view(be, o, 'gradient'));
    const upstream = view(be, ins.dy, 'dy')[0];
    const weights = WEIGHTS.map((w) => view(be, ins[w], w));
    v[7][0] = addon.clipHeadBackward(upstream, weights, view(be, ins.saved, 'saved'), v[0], v.slice(1, 7), ...shapeArgs(a));
    return outs;
  };

  tf.registerKernel({ kernelName: FORWARD, backendName: 'wasm', kernelFunc: forward });
  tf.registerKernel({ kernelName: BACKWARD, backendName: 'wasm', kernelFunc: backward });
}

/**
 * The symmetric CLIP loss from both towers' last hidden states h [batch * (tokensA + tokensB), width] (tower A, the
 * images, first): the same value as the plain head in two kernels.
 */
export function nativeClipHead(h: tf.Tensor2D, batch: number, towers: [HeadTower, HeadTower], logScale: tf.Scalar, eps: number): tf.Scalar {
  const addon = loadNativeAddon().addon;
  if (!addon) throw new Error('native clip head: the add-on is not loaded');
  const [A, B] = towers;
  const width = h.shape[1];
  const embed = A.proj.shape[1] as number;
  if (h.shape[0] !== batch * (A.tokens + B.tokens)) throw new Error(`clip head: h has ${h.shape[0]} rows, expected ${batch} x (${A.tokens} + ${B.tokens})`);
  for (const t of towers) {
    if (t.proj.shape[0] !== width || t.proj.shape[1] !== embed) throw new Error(`clip head: projection [${t.proj.shape}] does not map width ${width} to ${embed}`);
  }
  registerClipHeadKernels(addon);
  const attrs: HeadAttrs = { batch, tokensA: A.tokens, tokensB: B.tokens, meanA: A.pool === 'mean', meanB: B.pool === 'mean', width, embed, eps };
  const weights = towers.flatMap((t) => [t.lnFinal.gamma, t.lnFinal.beta, t.proj]);
  const op = {
    forward: FORWARD,
    backward: BACKWARD,
    attrs: attrs as unknown as tf.NamedAttrMap,
    leading: ['h', 'logScale'],
    weightNames: WEIGHTS,
    weights,
    // The backward kernel returns dh, the weights' gradients, then dLogScale: reordered to the op's arguments.
    gradients: ([dh, ...rest]: tf.Tensor[]) => [dh, rest[rest.length - 1], ...rest.slice(0, -1)],
  };
  return runSavedBufferOp(op, h, logScale) as tf.Scalar;
}
