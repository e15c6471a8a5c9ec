/** The wasm Slice and SplitV kernels on heap views (models/kernels/slice-wasm.ts) against element-by-element indexing:
 * every rank from 1 to 4, contiguous and strided selections, float32, int32 and bool, empty slices and -1 sizes. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { makeRng } from '../models/random.js';

before(async () => {
  const info = await selectBackend('wasm');
  assert.equal(info.backend, 'wasm');
});

/** x[begin : begin + size] by index arithmetic on the flat values (size -1: to the end). */
function sliceByIndex(values: ArrayLike<number>, shape: number[], begin: number[], size: number[]): number[] {
  const extent = size.map((s, i) => (s === -1 ? shape[i] - begin[i] : s));
  const out: number[] = [];
  const total = extent.reduce((a, b) => a * b, 1);
  for (let n = 0; n < total; n++) {
    let rest = n;
    let flat = 0;
    let stride = 1;
    const coords = new Array<number>(shape.length);
    for (let i = shape.length - 1; i >= 0; i--) {
      coords[i] = rest % extent[i];
      rest = Math.floor(rest / extent[i]);
    }
    for (let i = shape.length - 1; i >= 0; i--) {
      flat += (begin[i] + coords[i]) * stride;
      stride *= shape[i];
    }
    out.push(values[flat]);
  }
  return out;
}

const cases: Array<[number[], number[], number[]]> = [
  [[10], [3], [4]],
  [[2112, 8], [0, 0], [1088, -1]], // the towers' rows: contiguous
  [[2112, 8], [1088, 0], [-1, -1]],
  [[6, 5], [1, 2], [3, 2]], // strided columns
  [[6, 5], [2, 0], [0, 5]], // empty
  [[4, 3, 5], [1, 0, 0], [2, 3, 5]],
  [[4, 3, 5], [1, 1, 2], [3, 2, 3]],
  [[2, 3, 4, 5], [0, 1, 0, 1], [2, 2, 4, 3]],
  [[2, 3, 4, 5], [1, 0, 0, 0], [1, 3, 4, 5]],
  [[1, 1, 6], [0, 0, 2], [1, 1, 3]],
];

test('Slice on heap views equals indexing, for every rank, contiguous or strided, in float32, int32 and bool', async () => {
  const rng = makeRng(3);
  for (const [shape, begin, size] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const floats = Float32Array.from({ length: n }, () => rng() * 2 - 1);
    const ints = Int32Array.from({ length: n }, (_, i) => i * 7 - 50);
    const bools = Uint8Array.from({ length: n }, (_, i) => (i * 5) % 3 === 0 ? 1 : 0);
    for (const [values, dtype] of [[floats, 'float32'], [ints, 'int32'], [bools, 'bool']] as const) {
      const x = tf.tensor(values, shape, dtype);
      const y = tf.slice(x, begin, size);
      const expected = sliceByIndex(values, shape, begin, size);
      assert.deepEqual(Array.from(await y.data()), expected, `${dtype} [${shape}] begin [${begin}] size [${size}]`);
      tf.dispose([x, y]);
    }
  }
});

test('SplitV on heap views: every part equals the matching slice, along each axis, sizes given or an even count', async () => {
  const shape = [6, 4, 3];
  const values = Float32Array.from({ length: 72 }, (_, i) => i * 0.5 - 7);
  const x = tf.tensor(values, shape);
  const splits: Array<[number[] | number, number]> = [[[2, 4], 0], [[1, 3], 1], [3, 2], [[6, 0], 0]];
  for (const [sizes, axis] of splits) {
    const parts = tf.split(x, sizes, axis);
    const n = typeof sizes === 'number' ? Array(sizes).fill(shape[axis] / sizes) : sizes;
    let at = 0;
    for (let k = 0; k < parts.length; k++) {
      const begin = [0, 0, 0];
      const size = [...shape];
      begin[axis] = at;
      size[axis] = n[k];
      assert.deepEqual(Array.from(await parts[k].data()), sliceByIndex(values, shape, begin, size), `split ${JSON.stringify(sizes)} on axis ${axis}, part ${k}`);
      at += n[k];
    }
    tf.dispose(parts);
  }
  x.dispose();
});

test('Slice gradients still flow (the towers\' outputs are split with it)', async () => {
  const x = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.slice(t, [1, 0], [2, -1]), tf.tensor2d([[1, 2], [3, 4]]))))(x);
  assert.deepEqual(Array.from(await g.data()), [0, 0, 1, 2, 3, 4]);
  tf.dispose([x, g]);
});
