/**
 * UnsortedSegmentSum in plain JS, registered for the wasm backend (which has no kernel for it) and for cpu (whose own
 * kernel is O(segments x size), unusably slow for embedding tables). The gradient of tf.gather needs it: token
 * embeddings and any gather on a trainable tensor.
 */
import * as tf from '@tensorflow/tfjs';

interface WasmLike {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput?(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): tf.TensorInfo;
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
  typedArrayFromHeap?(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** out[s, j] = sum of x[i, j] over every i with segmentIds[i] = s; ids outside [0, numSegments) are skipped. `out`,
 * when given, must hold numSegments * inner zeros. */
export function segmentSumJs(x: ArrayLike<number>, ids: ArrayLike<number>, numSegments: number, inner: number, out: Float32Array<ArrayBufferLike> = new Float32Array(numSegments * inner)): Float32Array<ArrayBufferLike> {
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += x[src + j];
  }
  return out;
}

const kernelFunc: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
  const idRank = segmentIds.shape.length;
  for (let d = 0; d < idRank; d++) {
    if (segmentIds.shape[d] !== x.shape[d]) {
      throw new Error(`UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] is not a prefix of x shape [${x.shape}]`);
    }
  }
  if (x.dtype !== 'float32') throw new Error(`UnsortedSegmentSum: only float32 is supported, got ${x.dtype}`);
  const innerShape = x.shape.slice(idRank);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  const b = backend as unknown as WasmLike;
  const shape = [numSegments, ...innerShape];
  if (b.makeOutput && b.typedArrayFromHeap) {
    // wasm: straight on views of the heap (views after the allocation, which may grow it), no copies in or out.
    const info = b.makeOutput(shape, 'float32');
    const out = b.typedArrayFromHeap(info) as Float32Array;
    out.fill(0);
    segmentSumJs(b.typedArrayFromHeap(x), b.typedArrayFromHeap(segmentIds), numSegments, inner, out);
    return info;
  }
  const out = segmentSumJs(b.readSync(x.dataId), b.readSync(segmentIds.dataId), numSegments, inner);
  if (b.makeOutput) return b.makeOutput(shape, 'float32', undefined, out);
  if (b.makeTensorInfo) return b.makeTensorInfo(shape, 'float32', out);
  throw new Error('UnsortedSegmentSum: backend can neither makeOutput nor makeTensorInfo');
};

/** Registers (or replaces) the kernel for `backendName`. Safe to call more than once. */
export function registerUnsortedSegmentSum(backendName: string): void {
  if (tf.getKernel('UnsortedSegmentSum', backendName)) tf.unregisterKernel('UnsortedSegmentSum', backendName);
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName, kernelFunc });
}
