/**
 * The engine seam (models/engine/select.ts): which engine a model gets and why, FLIP_ENGINE's override and its
 * errors, and every engine's loss and gradients against the reference (the autodiff engine on the plain layer ops)
 * on the same batch, with and without an MAE decoder and text masking.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { DEFAULTS, deepMerge, type TrainConfig } from '../models/config.js';
import { AutodiffEngine } from '../models/engine/autodiff.js';
import type { Engine } from '../models/engine/engine.js';
import { buildModel, createEngine, requestedEngine } from '../models/engine/select.js';
import { FlipModel } from '../models/flip-model.js';
import { loadNativeAddon } from '../models/kernels/native/addon.js';
import { registerNativeKernels, unregisterNativeKernels } from '../models/kernels/native/register.js';
import { plainLayerOps } from '../models/nn/layer-ops.js';
import { makeRng } from '../models/random.js';
import { buildTrainBatch } from '../models/train.js';

let native = false;
before(async () => {
  const info = await selectBackend('wasm');
  native = info.native === true;
  if (!native && process.env.FLIP_TEST_REQUIRE_NATIVE === '1') throw new Error(`FLIP_TEST_REQUIRE_NATIVE=1 but ${loadNativeAddon().reason}`);
});
after(() => {
  delete process.env.FLIP_ENGINE;
  if (native) registerNativeKernels();
});

const tiny = (over: object = {}): TrainConfig => deepMerge(DEFAULTS, deepMerge({ model: { preset: 'tiny' }, train: { batch_size: 5 } }, over));

function batchFor(config: TrainConfig, model: FlipModel) {
  const rng = makeRng(3);
  const s = config.data.image_size;
  const ctx = config.model.text.context_length;
  const examples = Array.from({ length: config.train.batch_size }, () => ({ image: Float32Array.from({ length: s * s * 3 }, () => rng()), caption: '', label: 0 }));
  const ids = Array.from({ length: config.train.batch_size }, (_, b) => {
    const row = new Int32Array(ctx); // pad 0, start 1, end 2
    row[0] = 1;
    for (let i = 1; i <= 2 + b; i++) row[i] = 3 + Math.floor(rng() * 40);
    row[3 + b] = 2;
    return row;
  });
  return buildTrainBatch(config, examples, ids, model, makeRng(4));
}

/** Loss and gradients by parameter name (without tfjs's per-model #id) of one engine on one batch. */
function lossAndGrads(engine: Engine, config: TrainConfig): { loss: number; grads: Map<string, Float32Array> } {
  const batch = batchFor(config, engine.model);
  engine.lossAndGradients(batch);
  const grads = engine.readGradients() as Float32Array[]; // the CPU engines answer synchronously
  const opt = engine.createOptimizer({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
  const { out } = engine.update(opt, 0);
  const loss = out.dataSync()[0];
  out.dispose();
  opt.dispose();
  return { loss, grads: new Map(engine.model.store.params.map((p, i) => [p.name, grads[i]])) };
}

/** The reference: the autodiff engine on the plain layer ops, the native kernels unregistered. */
function reference(config: TrainConfig): { loss: number; grads: Map<string, Float32Array> } {
  if (native) unregisterNativeKernels();
  try {
    const model = new FlipModel(config, 50, 0, plainLayerOps);
    try {
      return lossAndGrads(new AutodiffEngine(model, null), config);
    } finally {
      model.dispose();
    }
  } finally {
    if (native) registerNativeKernels();
  }
}

function assertClose(what: string, got: { loss: number; grads: Map<string, Float32Array> }, want: { loss: number; grads: Map<string, Float32Array> }): void {
  assert.ok(Number.isFinite(want.loss) && want.loss > 0, `${what}: reference loss ${want.loss}`);
  assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * want.loss, `${what}: loss ${got.loss}, reference ${want.loss}`);
  assert.deepEqual([...got.grads.keys()], [...want.grads.keys()], `${what}: the same parameters`);
  for (const [name, g] of got.grads) {
    const w = want.grads.get(name)!;
    let diff = 0;
    let scale = 1e-3; // gradients near zero are compared absolutely
    for (let i = 0; i < g.length; i++) {
      diff = Math.max(diff, Math.abs(g[i] - w[i]));
      scale = Math.max(scale, Math.abs(w[i]));
    }
    assert.ok(diff / scale <= 1e-4, `${what}: gradient of ${name} differs from the reference by ${diff / scale}`);
  }
}

const CASES: [string, object][] = [
  ['image mask 0.5', { mask: { image_ratio: 0.5 } }],
  ['image mask 0.75, text mask 0.5', { mask: { image_ratio: 0.75, text_ratio: 0.5 } }],
  ['MAE decoder at mask 0.75', { mask: { image_ratio: 0.75 }, loss: { reconstruction_weight: 1 } }],
  ['towers of different widths', { model: { text: { width: 32, heads: 1 } } }],
];

test('every engine the seam picks matches the reference engine on the same batch, and logs which it picked and why', async () => {
  for (const [what, over] of CASES) {
    const config = tiny(over);
    const want = reference(config);
    const logs: string[] = [];
    const model = buildModel(config, 50, 0);
    try {
      const engine = createEngine(model, (m) => logs.push(m));
      assert.equal(logs.length, 1, `${what}: one line saying which engine`);
      const nativeCase = native && !('loss' in over) && !('model' in over);
      assert.equal(engine.name, nativeCase ? 'native' : 'autodiff', `${what}: ${logs[0]}`);
      assert.match(logs[0], nativeCase ? /^engine: native/ : native ? /^engine: autodiff on native layer ops \((the MAE decoder is on|the towers' widths differ)/ : /^engine: autodiff on plain layer ops \(the native kernels are not loaded\)/);
      assertClose(`${what} (${engine.name} engine, ${model.ops.name} ops)`, lossAndGrads(engine, config), want);
    } finally {
      model.dispose();
    }
  }
});

test('FLIP_ENGINE overrides the choice, and a request the model or the value cannot meet is an error saying why', async (t) => {
  if (!native) return t.skip('the native kernels are not loaded');
  const config = tiny({ mask: { image_ratio: 0.5 } });
  const model = buildModel(config, 50, 0);
  const mae = buildModel(tiny({ loss: { reconstruction_weight: 1 } }), 50, 0);
  try {
    process.env.FLIP_ENGINE = 'autodiff';
    const logs: string[] = [];
    assert.equal(createEngine(model, (m) => logs.push(m)).name, 'autodiff');
    assert.deepEqual(logs, ['engine: autodiff on native layer ops (FLIP_ENGINE=autodiff)']);
    assertClose('FLIP_ENGINE=autodiff', lossAndGrads(createEngine(model), config), reference(config));
    process.env.FLIP_ENGINE = 'native';
    assert.equal(createEngine(model).name, 'native');
    assert.throws(() => createEngine(mae), /FLIP_ENGINE=native: the native engine cannot train this model: the MAE decoder is on/);
    process.env.FLIP_ENGINE = 'gpu';
    assert.throws(() => createEngine(model), /FLIP_ENGINE="gpu" is not an engine; use one of: auto, autodiff, native/);
    assert.equal(requestedEngine({ FLIP_ENGINE: 'auto' }), null);
    assert.equal(requestedEngine({}), null);
  } finally {
    delete process.env.FLIP_ENGINE;
    model.dispose();
    mae.dispose();
  }
});

test('readGradients and update refuse to run before lossAndGradients, naming the call to make first', () => {
  const model = buildModel(tiny(), 50, 0);
  try {
    const engine = createEngine(model);
    const opt = engine.createOptimizer({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
    assert.throws(() => engine.readGradients(), /call lossAndGradients\(batch\) first/);
    assert.throws(() => engine.update(opt, 0.1), /call lossAndGradients\(batch\) first/);
    opt.dispose();
  } finally {
    model.dispose();
  }
});
