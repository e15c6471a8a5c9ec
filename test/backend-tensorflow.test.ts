/**
 * backend 'tensorflow' when @tensorflow/tfjs-node is installed but its native library does not load (simulated: a fake
 * package in a temp dir, found through FLIP_TFJS_NODE_PATH / options.tfjsNodePath), and backend 'auto' on a machine
 * without tfjs-node and without a hardware GPU adapter: wasm, with one log line per backend skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '../models/backend.js';
import { lookupPackage } from '../models/backends/tensorflow.js';
import { tempDir } from './helpers.js';

/** A node_modules/@tensorflow/tfjs-node whose main file fails as a real install without libtensorflow does. */
function fakeBrokenTfjsNode(): string {
  const root = tempDir('flip-fake-tfjs-node-');
  const pkg = join(root, 'node_modules', '@tensorflow', 'tfjs-node');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', version: '4.22.0', main: 'index.js' }));
  writeFileSync(
    join(pkg, 'index.js'),
    [
      "const e = new Error(`${__dirname}/lib/napi-v8/libtensorflow.so.2: cannot open shared object file: No such file or directory`);",
      "e.code = 'ERR_DLOPEN_FAILED';",
      'throw e;',
    ].join('\n'),
  );
  return root;
}

test('tensorflow: a tfjs-node whose native library does not load gives what failed and how to install', async () => {
  const root = fakeBrokenTfjsNode();
  try {
    assert.equal(lookupPackage('@tensorflow/tfjs-node', root).status, 'found');
    assert.equal(lookupPackage('@tensorflow/tfjs-node-gpu', root).status, 'missing');
    const err = await selectBackend('tensorflow', () => {}, { tfjsNodePath: root }).then(
      () => assert.fail('expected a failure'),
      (e: Error) => e,
    );
    const m = err.message;
    assert.match(m, /^backend 'tensorflow': needs @tensorflow\/tfjs-node-gpu or @tensorflow\/tfjs-node/);
    assert.match(m, /@tensorflow\/tfjs-node-gpu is not installed under /);
    assert.match(m, /@tensorflow\/tfjs-node is installed \(.*\) but failed to load: .*libtensorflow\.so\.2: cannot open shared object file/);
    for (const hint of [/CUDA 11\.2/, /cuDNN 8\.1/, /TFJS_NODE_CDN_STORAGE/, /TFJS_NODE_BASE_URI/, /docs\/gpu\.md/]) assert.match(m, hint);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('auto with a broken tfjs-node (FLIP_TFJS_NODE_PATH) and no GPU adapter falls back to wasm, logging each skip', async () => {
  const root = fakeBrokenTfjsNode();
  const prev = process.env.FLIP_TFJS_NODE_PATH;
  process.env.FLIP_TFJS_NODE_PATH = root;
  try {
    const logs: string[] = [];
    const info = await selectBackend('auto', (msg) => logs.push(msg));
    const tfLog = logs.find((l) => l.startsWith('backend auto: tensorflow unavailable, falling back'));
    assert.ok(tfLog, `logs: ${JSON.stringify(logs)}`);
    assert.match(tfLog, /failed to load: .*libtensorflow\.so\.2/);
    if (info.backend === 'webgpu') {
      // A machine with a hardware adapter: auto may stop at webgpu; never on a software one.
      assert.doesNotMatch(info.device, /software/);
      return;
    }
    assert.equal(info.backend, 'wasm');
    assert.equal(logs.length, 2, `one line per skipped backend: ${JSON.stringify(logs)}`);
    assert.match(logs[1], /^backend auto: webgpu unavailable, falling back \(backend 'webgpu': (needs|no GPU adapter)/);
  } finally {
    if (prev === undefined) delete process.env.FLIP_TFJS_NODE_PATH;
    else process.env.FLIP_TFJS_NODE_PATH = prev;
    rmSync(root, { recursive: true, force: true });
  }
});
