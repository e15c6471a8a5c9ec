/**
 * Blocked 2-D transpose for the wasm backend, written in JS on views of the wasm heap. tfjs-backend-wasm 4.22's
 * Transpose is a plain strided loop that collapses on power-of-two shapes (cache-set conflicts), e.g. CPU time
 * [1024, 512]: 7.3 ms vs [1088, 512]: 1.0 ms; [4096, 128]: 7.2 ms vs [4160, 128]: 0.35 ms. Batches of 64 captions of
 * 16 tokens give exactly such shapes in every linear layer's backward pass. Only rank-2 transposes, and rank-3
 * [G, M, N] -> [G, N, M], of such shapes are handled here; everything else goes to the original kernel.
 */
import * as tf from '@tensorflow/tfjs';

interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

const TILE = 16;

/** out[c * rows + r] = src[r * cols + c] for one [rows, cols] matrix at the given offsets; 16x16 tiles, writes
 * sequential inside a tile (measured fastest of 4/8/16/32 here). */
export function transposeBlock(src: ArrayLike<number>, dst: { [i: number]: number }, rows: number, cols: number, srcOff = 0, dstOff = 0): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let c = c0; c < c1; c++) {
        let d = dstOff + c * rows + r0;
        let s = srcOff + r0 * cols + c;
        for (let r = r0; r < r1; r++) {
          dst[d++] = src[s];
          s += cols;
        }
      }
    }
  }
}

/** The original kernel is faster except on large matrices whose sides are both multiples of 128 (the conflict case):
 * CPU ms original / here: [1024,512] 7.3 / 1.5; [4096,128] 7.2 / 1.4; [1088,512] 1.0 / 1.6; [4160,128] 0.35 / 1.5. */
export function useBlocked(rows: number, cols: number): boolean {
  return rows % 128 === 0 && cols % 128 === 0 && rows * cols >= 65536;
}

let registered = false;

/** Replaces wasm's Transpose (keeping the original for other permutations); returns whether it did. */
export function registerBlockedTranspose(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  if (registered) return true;
  const original = tf.getKernel('Transpose', 'wasm');
  if (!original) return false;
  const kernelFunc: tf.KernelFunc = (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const perm = (args.attrs as unknown as { perm: number[] }).perm;
    const rank = x.shape.length;
    const swapLastTwo = (rank === 2 && perm[0] === 1 && perm[1] === 0) || (rank === 3 && perm[0] === 0 && perm[1] === 2 && perm[2] === 1);
    const [g, m, n] = rank === 2 ? [1, x.shape[0], x.shape[1]] : x.shape;
    if (!swapLastTwo || x.dtype !== 'float32' || !useBlocked(m, n)) return original.kernelFunc(args);
    const be = args.backend as unknown as WasmHeap;
    const outShape = rank === 2 ? [n, m] : [g, n, m];
    const out = be.makeOutput(outShape, 'float32');
    // Views after makeOutput: an allocation may grow the heap and detach older views.
    const src = be.typedArrayFromHeap(x);
    const dst = be.typedArrayFromHeap(out);
    for (let i = 0; i < g; i++) transposeBlock(src, dst, m, n, i * m * n, i * m * n);
    return out;
  };
  tf.unregisterKernel('Transpose', 'wasm');
  tf.registerKernel({ kernelName: 'Transpose', backendName: 'wasm', kernelFunc, setupFunc: original.setupFunc, disposeFunc: original.disposeFunc });
  registered = true;
  return true;
}
