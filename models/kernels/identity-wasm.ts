/**
 * Zero-copy Identity for the wasm backend. The engine clones (Identity) every tensor it saves for the backward pass;
 * tfjs-backend-wasm 4.22 copies the data for that, which cost ~10% of a training step. Tensors are immutable (a
 * variable's assign swaps data ids), so sharing the data id with a reference count, as the wasm Reshape kernel and
 * the cpu backend's Identity already do, is safe.
 */
import * as tf from '@tensorflow/tfjs';

interface RefCounting {
  incRef(dataId: object): void;
}

const kernelFunc: tf.KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: tf.TensorInfo };
  (backend as unknown as RefCounting).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/** Replaces wasm's Identity when the backend can count references; returns whether it did. */
export function registerZeroCopyIdentity(): boolean {
  if (tf.getBackend() !== 'wasm' || typeof (tf.backend() as unknown as Partial<RefCounting>).incRef !== 'function') return false;
  if (tf.getKernel('Identity', 'wasm')) tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ kernelName: 'Identity', backendName: 'wasm', kernelFunc });
  return true;
}
