/**
 * backend 'auto' in a clean process: tensorflow > webgpu on a hardware adapter > wasm. On a CPU-only machine (this
 * project's developer and CI machines) it resolves to wasm with one log line for each backend skipped, and never
 * takes a software webgpu adapter (llvmpipe, SwiftShader), which is slower than wasm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';

test('auto picks the best backend present; on a CPU-only machine wasm, logging why tensorflow and webgpu were skipped', async (t) => {
  delete process.env.FLIP_TFJS_NODE_PATH;
  delete process.env.FLIP_WEBGPU_BACKEND;
  const logs: string[] = [];
  const info = await selectBackend('auto', (msg) => logs.push(msg));
  t.diagnostic(`auto -> ${info.backend} (${info.device}); ${logs.join(' | ')}`);
  assert.equal(tf.getBackend(), info.backend);
  if (info.backend !== 'wasm') {
    // A GPU machine: a hardware adapter or libtensorflow.
    assert.ok(['tensorflow', 'webgpu'].includes(info.backend));
    assert.doesNotMatch(info.device, /software/);
    return;
  }
  assert.equal(logs.length, 2, JSON.stringify(logs));
  assert.match(logs[0], /^backend auto: tensorflow unavailable, falling back \(backend 'tensorflow': needs /);
  assert.match(logs[1], /^backend auto: webgpu unavailable, falling back \(backend 'webgpu': /);
  // The project's wasm kernels are registered for wasm only.
  assert.ok(tf.getKernel('UnsortedSegmentSum', 'wasm'));
});
