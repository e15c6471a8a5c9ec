/**
 * GPU-machine probe (bundled by scripts/gpu/prepare.sh): what `auto` picks and why, the webgpu adapter, and one
 * plain matMul on webgpu checked against the cpu backend (a wrong result from a driver shows here, not in a sweep).
 * Prints one JSON object.
 */
import * as tf from '@tensorflow/tfjs';
import { loadTrainer } from '../../models/index.js';

const { selectBackend } = await loadTrainer();

const out: Record<string, unknown> = { node: process.version, flip_device: process.env.FLIP_DEVICE ?? null };
const autoLog: string[] = [];
try {
  out.auto = await selectBackend('auto', (m) => autoLog.push(m));
} catch (e) {
  out.auto = { error: (e as Error).message };
}
out.auto_log = autoLog;

try {
  const info = await selectBackend('webgpu', (m) => autoLog.push(m));
  out.webgpu = info;
  const [m, k, n] = [1024, 768, 768];
  const aVals = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i));
  const bVals = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i));
  const run = async () => {
    const c = tf.tidy(() => tf.matMul(tf.tensor2d(aVals, [m, k]), tf.tensor2d(bVals, [k, n])));
    const v = (await c.data()) as Float32Array;
    c.dispose();
    return v;
  };
  const gpu = await run();
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await run();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((x, y) => x - y);
  out.webgpu_matmul_gflops = (2 * m * k * n) / times[2] / 1e9;
  // The round trip of a one-number result: the least a step that reads its loss back can wait on this backend.
  // (A 4096-element input: tfjs-webgpu runs ops on tiny tensors on the CPU.)
  const trips: number[] = [];
  const one = tf.ones([4096]);
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    const r = tf.tidy(() => tf.sum(tf.add(one, i)));
    await r.data();
    r.dispose();
    trips.push(performance.now() - t0);
  }
  one.dispose();
  trips.sort((x, y) => x - y);
  out.webgpu_readback_ms_median = trips[10];
  await selectBackend('cpu');
  const c = tf.matMul(tf.tensor2d(aVals, [m, k]), tf.tensor2d(bVals, [k, n]));
  const ref = (await c.data()) as Float32Array;
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(ref[i] - gpu[i]) / (1 + Math.abs(ref[i])));
  out.webgpu_matmul_max_rel_err_vs_cpu = maxErr;
} catch (e) {
  out.webgpu = { error: (e as Error).message };
}
console.log(JSON.stringify(out, null, 2));
