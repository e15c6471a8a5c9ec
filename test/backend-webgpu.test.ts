/**
 * backend 'webgpu' through Dawn (npm `webgpu`) and @tensorflow/tfjs-backend-webgpu: adapter-list parsing and choice
 * (pure), and a few training steps of a tiny config on whatever adapter this machine has (on a CPU-only machine:
 * Mesa's llvmpipe through OpenGL ES, allowed with FLIP_WEBGPU_SOFTWARE=1).
 *
 * Skips with the reason when the package or an adapter is missing. llvmpipe needs the Debian packages libegl1,
 * libegl-mesa0 and libgl1-mesa-dri (not installed by .ci/run), so CI skips too unless FLIP_TEST_REQUIRE_WEBGPU=1
 * makes a missing adapter a failure. The `webgpu` package itself is an optional dependency that npm install brings
 * (prebuilt, no download), so under CI its absence fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adapterName, isSoftwareAdapter, parseAdapterList, pickAdapter } from '../models/backends/webgpu.js';
import { resolveConfig } from '../models/config.js';
import { train } from '../models/train.js';

test('Dawn adapter list: parsed from the message, FLIP_DEVICE as index or name, software adapters recognised', () => {
  const message = [
    "no adapter with backend 'vulkan' and name '#x#' found",
    'Available adapters:',
    " * backend: 'vulkan', name: 'NVIDIA H100 80GB HBM3'",
    " * backend: 'vulkan', name: 'NVIDIA H100 80GB HBM3'",
    " * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'",
  ].join('\n');
  const list = parseAdapterList(message);
  assert.deepEqual(list.map((a) => a.name), ['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3', 'llvmpipe (LLVM 15.0.6, 256 bits)']);
  assert.equal(pickAdapter(list, undefined), null);
  assert.deepEqual(pickAdapter(list, '0'), { name: 'NVIDIA H100 80GB HBM3' });
  // Dawn selects by name: the second of two identical GPUs cannot be chosen, and the note says so.
  const second = pickAdapter(list, '1');
  assert.ok(second && 'note' in second && /share the name/.test(second.note ?? ''), JSON.stringify(second));
  assert.deepEqual(pickAdapter(list, 'llvm'), { name: 'llvmpipe (LLVM 15.0.6, 256 bits)' });
  assert.match((pickAdapter(list, '7') as { error: string }).error, /FLIP_DEVICE=7 but Dawn lists 3 adapter/);
  assert.match((pickAdapter(list, 'A100') as { error: string }).error, /matches no adapter name/);
  // One visible adapter (the driver already restricted the process to its GPU): any index uses it.
  assert.equal((pickAdapter(list.slice(0, 1), '3') as { name: string }).name, 'NVIDIA H100 80GB HBM3');
  // The adapter Dawn returned, found in the list by its normalised name (adapter.info.device).
  assert.equal(adapterName(list, { device: 'llvmpipe-llvm-15-0-6-256-bits-' }), 'llvmpipe (LLVM 15.0.6, 256 bits)');
  assert.equal(adapterName(list, { description: 'NVIDIA H100 80GB HBM3' }), 'NVIDIA H100 80GB HBM3');
  assert.ok(isSoftwareAdapter('llvmpipe (LLVM 15.0.6, 256 bits)'));
  assert.ok(isSoftwareAdapter('SwiftShader Device (Subzero)'));
  assert.ok(isSoftwareAdapter('x', { device: 'llvmpipe-llvm-15-0-6-256-bits-' }));
  assert.ok(isSoftwareAdapter('x', {}, true));
  assert.ok(!isSoftwareAdapter('NVIDIA H100 80GB HBM3', { vendor: 'nvidia', description: 'NVIDIA H100 80GB HBM3' }));
});

/** Why webgpu cannot run here, or null when it can. */
async function webgpuUnavailable(): Promise<string | null> {
  try {
    await import('webgpu' as string);
  } catch (e) {
    if (process.env.CI) throw new Error(`CI installs the optional dependency "webgpu", yet it does not load: ${(e as Error).message}`);
    return `the optional package "webgpu" is not installed (${(e as Error).message.split('\n')[0]})`;
  }
  const { useWebgpu } = await import('../models/backends/webgpu.js');
  try {
    await useWebgpu({ allowSoftware: true });
    return null;
  } catch (e) {
    if (process.env.FLIP_TEST_REQUIRE_WEBGPU === '1') throw e;
    return (e as Error).message;
  }
}

test('webgpu trains a tiny config through train() and reports the adapter as the device', { timeout: 120_000 }, async (t) => {
  const previous = process.env.FLIP_WEBGPU_SOFTWARE;
  process.env.FLIP_WEBGPU_SOFTWARE = '1';
  try {
    const why = await webgpuUnavailable();
    if (why) {
      t.skip(`webgpu unavailable: ${why}`);
      return;
    }
    const config = resolveConfig({
      backend: 'webgpu',
      model: { preset: 'tiny' },
      data: { train_size: 64, eval_size: 16, image_size: 16 },
      train: { steps: 2, batch_size: 16, warmup: 0 },
    });
    const losses: number[] = [];
    const stepSeconds: number[] = [];
    let last = 0;
    let started: { backend: string; device: string } | undefined;
    const result = await train(config, {
      onStart: (info) => (started = info),
      onStep: (_step, m) => {
        losses.push(m.loss);
        stepSeconds.push(m.elapsed_seconds - last);
        last = m.elapsed_seconds;
      },
    });
    assert.equal(result.backend, 'webgpu');
    assert.equal(started?.backend, 'webgpu');
    assert.ok(result.device.length > 0 && /webgpu\//.test(result.device), `device: ${result.device}`);
    assert.equal(losses.length, 2);
    for (const l of losses) assert.ok(Number.isFinite(l), `loss ${l}`);
    assert.ok(Number.isFinite(result.results.zero_shot_top1), JSON.stringify(result.results));
    t.diagnostic(`device ${result.device}; losses ${losses.map((l) => l.toFixed(4)).join(', ')}; step seconds ${stepSeconds.map((s) => s.toFixed(2)).join(', ')}`);
  } finally {
    if (previous === undefined) delete process.env.FLIP_WEBGPU_SOFTWARE;
    else process.env.FLIP_WEBGPU_SOFTWARE = previous;
  }
});

test('an explicit webgpu refuses a software-only machine without FLIP_WEBGPU_SOFTWARE=1, naming the adapter', async (t) => {
  const { useWebgpu } = await import('../models/backends/webgpu.js');
  const prev = process.env.FLIP_WEBGPU_SOFTWARE;
  delete process.env.FLIP_WEBGPU_SOFTWARE;
  try {
    let info;
    try {
      info = await useWebgpu();
    } catch (e) {
      assert.match((e as Error).message, /^backend 'webgpu': (needs|no GPU adapter)/);
      if (/software adapter/.test((e as Error).message)) assert.match((e as Error).message, /FLIP_WEBGPU_SOFTWARE=1/);
      return;
    }
    // A machine with a GPU: a hardware adapter is used without the opt-in.
    assert.doesNotMatch(info.device, /software/);
    t.diagnostic(`hardware adapter: ${info.device}`);
  } finally {
    if (prev !== undefined) process.env.FLIP_WEBGPU_SOFTWARE = prev;
  }
});
