/**
 * Slice for the wasm backend on views of the wasm heap. tfjs-backend-wasm 4.22's Slice first copies its whole input
 * out of the heap (readSync) into a new ArrayBuffer: for the two towers' outputs of the reference step that is ~2 MB a
 * step at mask 0.75 (5 MB at mask 0) of copying, and the fresh buffers made V8 collect garbage for "external memory
 * pressure" every couple of steps. This copies only the selected elements, a contiguous run at a time. Strings go to
 * the original kernel. SplitV is replaced too: wasm's calls its own Slice, copies included.
 */
import * as tf from '@tensorflow/tfjs';
import { isWasmHeapBackend, type WasmBackendInternals } from './native/wasm-heap.js';

let original: tf.KernelConfig | null = null;
let originalSplit: tf.KernelConfig | null = null;

const kernelFunc: tf.KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { x } = inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return original!.kernelFunc(args);
  const { begin, size } = attrs as unknown as { begin: number[]; size: number[] };
  const [start, extent] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size);
  const be = backend as unknown as WasmBackendInternals;
  const out = be.makeOutput(extent, x.dtype);
  // Views after the allocation (it may grow the heap).
  const src = be.typedArrayFromHeap(x);
  const dst = be.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const strides = tf.util.computeStrides(x.shape); // rank - 1 entries: the last axis has stride 1
  const stride = (i: number) => (i < rank - 1 ? strides[i] : 1);
  const total = extent.reduce((a, b) => a * b, 1);
  if (total === 0) return out;
  // The innermost axes that are taken whole, merged with the first partial one, form a contiguous run.
  let run = 1;
  let axis = rank - 1;
  while (axis >= 0) {
    run *= extent[axis];
    if (extent[axis] !== x.shape[axis]) break;
    axis--;
  }
  if (axis < 0 || total === run) {
    const from = start.reduce((at, s, i) => at + s * stride(i), 0);
    dst.set(src.subarray(from, from + total));
    return out;
  }
  // Odometer over the outer axes [0, axis): one contiguous run of `run` elements each.
  const outer = axis;
  const index = new Array<number>(outer).fill(0);
  for (let written = 0; written < total; written += run) {
    let from = 0;
    for (let i = 0; i < outer; i++) from += (start[i] + index[i]) * stride(i);
    for (let i = outer; i < rank; i++) from += start[i] * stride(i);
    dst.set(src.subarray(from, from + run), written);
    for (let i = outer - 1; i >= 0; i--) {
      if (++index[i] < extent[i]) break;
      index[i] = 0;
    }
  }
  return out;
};

/** SplitV as one heap slice per part. */
const splitFunc: tf.KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { x } = inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return originalSplit!.kernelFunc(args);
  const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
  const at = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, at);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((n) => {
    const size = [...x.shape];
    size[at] = n;
    const part = kernelFunc({ inputs: { x }, attrs: { begin: [...begin], size } as unknown as tf.NamedAttrMap, backend }) as tf.TensorInfo;
    begin[at] += n;
    return part;
  });
};

/** Replaces wasm's Slice and SplitV (keeping them for strings); returns whether it did. */
export function registerHeapSlice(): boolean {
  if (tf.getBackend() !== 'wasm' || !isWasmHeapBackend(tf.backend())) return false;
  original ??= tf.getKernel('Slice', 'wasm') ?? null;
  originalSplit ??= tf.getKernel('SplitV', 'wasm') ?? null;
  if (!original || !originalSplit) return false;
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({ kernelName: 'Slice', backendName: 'wasm', kernelFunc });
  tf.unregisterKernel('SplitV', 'wasm');
  tf.registerKernel({ kernelName: 'SplitV', backendName: 'wasm', kernelFunc: splitFunc });
  return true;
}
