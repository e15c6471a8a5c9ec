/**
 * Row gather for the wasm backend: table [V, D] float32, indices int32 of any shape -> [...indices.shape, D], as row
 * copies on views of the wasm heap. tfjs-backend-wasm 4.22's GatherV2 took ~4 ms for the 1,024 token rows of the
 * reference step's captions; this takes well under 1 ms. Other forms (axis != 0, batchDims, other dtypes) go to the
 * original kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { isWasmHeapBackend, type WasmBackendInternals } from './native/wasm-heap.js';

let original: tf.KernelConfig | null = null;

const kernelFunc: tf.KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { x, indices } = inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
  if (x.shape.length !== 2 || axis !== 0 || (batchDims ?? 0) !== 0 || x.dtype !== 'float32' || indices.dtype !== 'int32') {
    return original!.kernelFunc(args);
  }
  const be = backend as unknown as WasmBackendInternals;
  const [rows, d] = x.shape;
  const out = be.makeOutput([...indices.shape, d], 'float32');
  // Views after the allocation (it may grow the heap).
  const table = be.typedArrayFromHeap(x) as Float32Array;
  const ids = be.typedArrayFromHeap(indices) as Int32Array;
  const dst = be.typedArrayFromHeap(out) as Float32Array;
  for (let i = 0; i < ids.length; i++) {
    const r = ids[i];
    if (r < 0 || r >= rows) throw new Error(`gather: index ${r} at position ${i} is outside [0, ${rows})`);
    dst.set(table.subarray(r * d, r * d + d), i * d);
  }
  return out;
};

/** Replaces wasm's GatherV2 (keeping it for the forms above); returns whether it did. */
export function registerRowGather(): boolean {
  if (tf.getBackend() !== 'wasm' || !isWasmHeapBackend(tf.backend())) return false;
  original ??= tf.getKernel('GatherV2', 'wasm') ?? null;
  if (!original) return false;
  tf.unregisterKernel('GatherV2', 'wasm');
  tf.registerKernel({ kernelName: 'GatherV2', backendName: 'wasm', kernelFunc });
  return true;
}
