/** AdamW against a scalar reference implementation: decoupled decay only where Param.decay, bias correction. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { AdamW, V_FLOOR } from '../models/optimizer.js';
import type { Param } from '../models/nn/params.js';

async function checkAgainstReference(backend: 'wasm' | 'cpu'): Promise<void> {
  await selectBackend(backend);
  const init = [[0.5, -1, 2], [0.25, 3]];
  const params: Param[] = [
    { name: 'w', variable: tf.variable(tf.tensor2d([init[0]], [1, 3])), decay: true },
    { name: 'b', variable: tf.variable(tf.tensor1d(init[1])), decay: false },
  ];
  const o = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.2 };
  const opt = new AdamW(params, o);
  const gradSeq = [[[0.1, -0.2, 0.3], [1, -1]], [[0.0, 0.5, -0.1], [0.2, 0]], [[-0.3, 0.1, 0.2], [0, 0.4]]];
  const ref = init.map((r) => [...r]);
  const m = init.map((r) => r.map(() => 0));
  const v = init.map((r) => r.map(() => 0));
  const lr = 0.01;
  gradSeq.forEach((gs, step) => {
    const t = step + 1;
    opt.step([tf.tensor2d([gs[0]], [1, 3]), tf.tensor1d(gs[1])], lr);
    gs.forEach((g, i) =>
      g.forEach((gj, j) => {
        m[i][j] = o.beta1 * m[i][j] + (1 - o.beta1) * gj;
        v[i][j] = o.beta2 * v[i][j] + (1 - o.beta2) * gj * gj + V_FLOOR;
        const upd = m[i][j] / (1 - o.beta1 ** t) / (Math.sqrt(v[i][j] / (1 - o.beta2 ** t)) + o.eps) + (params[i].decay ? o.weightDecay * ref[i][j] : 0);
        ref[i][j] -= lr * upd;
      }),
    );
  });
  for (let i = 0; i < 2; i++) {
    const got = Array.from(await params[i].variable.data());
    got.forEach((x, j) => assert.ok(Math.abs(x - ref[i][j]) < 1e-5, `${backend}: param ${params[i].name}[${j}]: ${x} vs reference ${ref[i][j]}`));
  }
  opt.dispose();
  params.forEach((p) => p.variable.dispose());
}

test('AdamW (host loop on wasm) matches a scalar reference over 3 steps, with and without decay', () => checkAgainstReference('wasm'));
test('AdamW (tensor ops, other backends) matches the same reference', () => checkAgainstReference('cpu'));
