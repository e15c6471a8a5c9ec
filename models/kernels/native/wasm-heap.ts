/** Allocation and zero-copy Float32Array views of tensors on the wasm backend (tfjs-backend-wasm 4.22 internals). */
import * as tf from '@tensorflow/tfjs';

interface WasmBackendInternals {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

export function isWasmHeapBackend(b: unknown): b is WasmBackendInternals {
  const w = b as Partial<WasmBackendInternals>;
  return typeof w.makeOutput === 'function' && typeof w.typedArrayFromHeap === 'function' && typeof w.disposeData === 'function';
}

/**
 * Allocate every output first, then take views: an allocation may grow the wasm memory, which detaches every view
 * taken before it.
 */
export function allocate(backend: WasmBackendInternals, shapes: number[][]): tf.TensorInfo[] {
  return shapes.map((s) => backend.makeOutput(s, 'float32'));
}

export function view(backend: WasmBackendInternals, info: tf.TensorInfo, what: string): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`native kernel: ${what} must be float32, got ${info.dtype}`);
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** A zero-copy view of an int32 tensor (indices). */
export function indexView(backend: WasmBackendInternals, info: tf.TensorInfo, what: string): Int32Array {
  if (info.dtype !== 'int32') throw new Error(`native kernel: ${what} must be int32, got ${info.dtype}`);
  return backend.typedArrayFromHeap(info) as Int32Array;
}

/** Frees a kernel's temporary buffers (allocated with allocate, never returned as outputs). */
export function release(backend: WasmBackendInternals, temps: tf.TensorInfo[]): void {
  for (const t of temps) backend.disposeData(t.dataId, true);
}

export type { WasmBackendInternals };
