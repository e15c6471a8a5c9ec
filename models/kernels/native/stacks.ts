/**
 * The arguments of the two-stack kernels (native/src/stacks.cc), which the native engine (models/engine/native.ts)
 * calls directly: the image and the text tower's blocks in one call each way, split between two threads, each running
 * whole products on its own: when the stacks are about the same size (image mask 0.75: 1,088 rows against the
 * captions' 1,024) each stack goes to one thread; otherwise each stack's samples are cut in two halves, one thread
 * taking the first half of both stacks (equal work whatever the sizes). The forward pass writes both outputs packed in
 * one buffer (the CLIP head reads it as it is) plus every sublayer's saved tensors in one buffer (savedLayout); the
 * backward pass adds the halves' weight gradients in a fixed order, so the result is the same bit for bit with one
 * thread or two (test/native-kernels.test.ts).
 */
import type * as tf from '@tensorflow/tfjs';
import type { BlockParams } from '../../nn/block.js';
import { ATTENTION_SAVED, ATTENTION_WEIGHTS, attentionSavedShapes, mlpSavedShapes } from './register.js';

export interface StackSpec {
  batch: number;
  tokens: number;
  heads: number;
  width: number;
  eps: number;
  hidden: number[];
  hasKeyBias: boolean;
}

/** The weights of one block, in the add-on's order: attention sublayer, then MLP sublayer. */
export function blockWeights(b: BlockParams): tf.Tensor[] {
  const a = b.attn;
  return [b.ln1.gamma, b.ln1.beta, a.wq, a.bq, a.wk, a.bk, a.wv, a.bv, a.wo, a.bo, b.ln2.gamma, b.ln2.beta, b.mlp.w1, b.mlp.b1, b.mlp.w2, b.mlp.b2];
}

function savedShapes(sp: StackSpec, hidden: number): number[][] {
  return [...attentionSavedShapes(sp.batch, sp.tokens, sp.heads, sp.width), ...mlpSavedShapes(sp.batch * sp.tokens, sp.width, hidden)];
}

/**
 * Where each layer's saved tensors lie in the one saved buffer (floats from its start, each at a multiple of 16): one
 * tensor instead of ~90 saves the engine a tensor, a clone and a gradient input for each.
 */
function savedLayout(specs: StackSpec[]): { offsets: number[][][]; sizes: number[][][]; total: number } {
  let total = 0;
  const sizes = specs.map((sp) => sp.hidden.map((m) => savedShapes(sp, m).map((shape) => shape.reduce((a, b) => a * b, 1))));
  const offsets = sizes.map((stack) =>
    stack.map((layer) =>
      layer.map((n) => {
        const at = total;
        total += Math.ceil(n / 16) * 16;
        return at;
      }),
    ),
  );
  return { offsets, sizes, total };
}

function savedViews(all: Float32Array, layout: ReturnType<typeof savedLayout>, stack: number, layer: number): Float32Array[] {
  return layout.offsets[stack][layer].map((at, k) => all.subarray(at, at + layout.sizes[stack][layer][k]));
}

/** Row offset of stack s in the packed [rowsA + rowsB, width] output (and its gradient). */
function rowOffset(specs: StackSpec[], s: number): number {
  return specs.slice(0, s).reduce((n, sp) => n + sp.batch * sp.tokens, 0);
}

/** Rows of all stacks together: the packed output's first dimension. */
export function packedRows(specs: StackSpec[]): number {
  return rowOffset(specs, specs.length);
}

/** Floats of the one buffer that holds every layer's saved tensors. */
export function savedFloats(specs: StackSpec[]): number {
  return savedLayout(specs).total;
}

/** The forward call's temporaries: the residual stream between sublayers (the last one is the packed output). */
export function forwardTempShapes(specs: StackSpec[]): number[][] {
  return specs.flatMap((s) => s.hidden.flatMap((_, l) => (l + 1 < s.hidden.length ? [[s.batch * s.tokens, s.width], [s.batch * s.tokens, s.width]] : [[s.batch * s.tokens, s.width]])));
}

/** The backward call's temporaries: the gradients between sublayers (the first layer's is the stack's input gradient). */
export function backwardTempShapes(specs: StackSpec[]): number[][] {
  return specs.flatMap((s) => s.hidden.flatMap((_, l) => (l > 0 ? [[s.batch * s.tokens, s.width], [s.batch * s.tokens, s.width]] : [[s.batch * s.tokens, s.width]])));
}

/** A layer's 16 weights (or their gradients), in the add-on's order: stack s, layer l. */
export type LayerArrays = (stack: number, layer: number) => Float32Array[];

/**
 * The add-on's stacksForward argument: stack i reads h[i] (and keyBias[i]), writes its rows of `packed` and its
 * layers' saved tensors into `saved` (savedFloats long); temps as forwardTempShapes.
 */
export function stacksForwardArg(specs: StackSpec[], weights: LayerArrays, h: Float32Array[], keyBias: (Float32Array | null)[], packed: Float32Array, saved: Float32Array, temps: Float32Array[]): object[] {
  const layout = savedLayout(specs);
  let ti = 0;
  return specs.map((s, si) => {
    const n = s.batch * s.tokens;
    const at = rowOffset(specs, si) * s.width;
    const layers = s.hidden.map((hidden, l) => {
      const w = weights(si, l);
      const sv = savedViews(saved, layout, si, l);
      const attnOut = temps[ti++];
      const mlpOut = l + 1 < s.hidden.length ? temps[ti++] : packed.subarray(at, at + n * s.width);
      return { hidden, attnWeights: w.slice(0, ATTENTION_WEIGHTS.length), attnOut, attnSaved: sv.slice(0, ATTENTION_SAVED.length), mlpWeights: w.slice(ATTENTION_WEIGHTS.length), mlpOut, mlpSaved: sv.slice(ATTENTION_SAVED.length) };
    });
    return { ...s, h: h[si], keyBias: s.hasKeyBias ? keyBias[si] : null, layers };
  });
}

/**
 * The add-on's stacksBackward argument: from dy (the packed output's gradient) and the saved tensors, stack i writes its
 * input gradient dh[i] and its layers' weight gradients `grads`; temps as backwardTempShapes.
 */
export function stacksBackwardArg(specs: StackSpec[], weights: LayerArrays, dy: Float32Array, saved: Float32Array, dh: Float32Array[], grads: LayerArrays, temps: Float32Array[]): object[] {
  const layout = savedLayout(specs);
  if (saved.length !== layout.total) throw new Error(`stacks backward: saved has ${saved.length} floats, expected ${layout.total}`);
  let ti = 0;
  return specs.map((s, si) => {
    const n = s.batch * s.tokens;
    const layers = s.hidden.map((hidden, l) => {
      const w = weights(si, l);
      const sv = savedViews(saved, layout, si, l);
      const g = grads(si, l);
      // The first layer's attention dh is the stack's input gradient (an output); the others are temporaries.
      const attnDh = l === 0 ? dh[si] : temps[ti++];
      const mlpDh = temps[ti++];
      return { hidden, attnWeights: w.slice(0, ATTENTION_WEIGHTS.length), attnSaved: sv.slice(0, ATTENTION_SAVED.length), attnGrads: [attnDh, ...g.slice(0, ATTENTION_WEIGHTS.length)], mlpWeights: w.slice(ATTENTION_WEIGHTS.length), mlpSaved: sv.slice(ATTENTION_SAVED.length), mlpGrads: [mlpDh, ...g.slice(ATTENTION_WEIGHTS.length)] };
    });
    const off = rowOffset(specs, si) * s.width;
    // The backward pass reads the saved probabilities, not the key bias.
    return { ...s, dy: dy.subarray(off, off + n * s.width), keyBias: null, layers };
  });
}

/**
 * Whether each stack can have a thread to itself: work (rows x depth) within 1.5x. On the reference step (single
 * `npm run bench` runs here): at mask 0.75 (1,088 vs 1,024 rows) a thread per tower gave 2.4-2.6x the speed of mask 0,
 * halves 2.3x; at 0.5 (2,112 vs 1,024) a thread per tower leaves one idle (0.18 s a step against 0.145 s). Shapes
 * only: the choice changes the arithmetic, so it must not depend on the thread count.
 */
function closeInSize(specs: StackSpec[]): boolean {
  const work = specs.map((s) => s.batch * s.tokens * s.hidden.length);
  return Math.max(...work) <= 1.5 * Math.min(...work);
}

/** Whether the add-on splits every stack into halves (else a stack per thread): by shapes only. */
export function runsInHalves(specs: StackSpec[]): boolean {
  return !closeInSize(specs);
}

/** The shape of a stack of these blocks over batch samples of `tokens` rows of `width`. */
export function stackSpec(blocks: BlockParams[], batch: number, tokens: number, width: number, eps: number, hasKeyBias: boolean): StackSpec {
  return { batch, tokens, heads: blocks[0]?.attn.heads ?? 1, width, eps, hidden: blocks.map((b) => b.mlp.w1.shape[1] as number), hasKeyBias };
}
