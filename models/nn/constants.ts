/** Constant helper matrices (pooling, row selection, row broadcast) and tables, cached per shape and kept outside tf.tidy. */
import * as tf from '@tensorflow/tfjs';

export interface ConstPair {
  m: tf.Tensor2D; // [R, N]
  mT: tf.Tensor2D; // [N, R]
}

const cache = new Map<string, ConstPair>();

function pair(key: string, rows: number, cols: number, fill: (m: Float32Array) => void): ConstPair {
  const hit = cache.get(key);
  if (hit && !hit.m.isDisposed) return hit;
  const values = new Float32Array(rows * cols);
  fill(values);
  const made = tf.tidy(() => {
    const m = tf.tensor2d(values, [rows, cols]);
    return { m: tf.keep(m), mT: tf.keep(tf.transpose(m)) };
  });
  cache.set(key, made);
  return made;
}

/** [B, B*T]: row b averages tokens b*T .. b*T+T-1. */
export function meanPoolMatrix(batch: number, tokens: number): ConstPair {
  return pair(`mean:${batch}:${tokens}`, batch, batch * tokens, (m) => {
    for (let b = 0; b < batch; b++) for (let t = 0; t < tokens; t++) m[b * batch * tokens + b * tokens + t] = 1 / tokens;
  });
}

/** [B, B*T]: row b picks token b*T + index. */
export function selectMatrix(batch: number, tokens: number, index: number): ConstPair {
  return pair(`select:${batch}:${tokens}:${index}`, batch, batch * tokens, (m) => {
    for (let b = 0; b < batch; b++) m[b * batch * tokens + b * tokens + index] = 1;
  });
}

/** [B*T, 1]: 1 on the first token of each sample (where the CLS token sits). */
export function clsIndicator(batch: number, tokens: number): ConstPair {
  return pair(`cls:${batch}:${tokens}`, batch * tokens, 1, (m) => {
    for (let b = 0; b < batch; b++) m[b * tokens] = 1;
  });
}

/** [B, 1] of ones: broadcasts a [1, D] row to [B, D] with a gradient that is one plain matMul. */
export function onesColumn(batch: number): ConstPair {
  return pair(`ones:${batch}`, batch, 1, (m) => m.fill(1));
}

const tables = new Map<string, tf.Tensor2D>();

/** A constant table [rows, cols] (e.g. fixed positions) as a tensor, made once per key. */
export function constantTable(key: string, values: Float32Array, rows: number, cols: number): tf.Tensor2D {
  const hit = tables.get(key);
  if (hit && !hit.isDisposed) return hit;
  const made = tf.tidy(() => tf.keep(tf.tensor2d(values, [rows, cols])));
  tables.set(key, made);
  return made;
}

export function disposeConstants(): void {
  for (const p of cache.values()) {
    p.m.dispose();
    p.mT.dispose();
  }
  cache.clear();
  for (const t of tables.values()) t.dispose();
  tables.clear();
}
