/**
 * The 'tensorflow' backend: libtensorflow through @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node (CPU),
 * neither of which this project depends on (their install scripts download libtensorflow). Each is looked up from a
 * resolution base (default: this project; else options.tfjsNodePath or env FLIP_TFJS_NODE_PATH, a directory whose
 * node_modules/ holds the package), so "not installed" and "installed but its native library does not load" give
 * different messages.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

export interface TensorflowOptions {
  /** Directory to resolve the packages from (its node_modules/); default env FLIP_TFJS_NODE_PATH, else this project. */
  tfjsNodePath?: string;
}

export interface TensorflowInfo {
  backend: 'tensorflow';
  device: string;
}

export class TensorflowUnavailable extends Error {
  constructor(readonly reason: string) {
    super(`backend 'tensorflow': ${reason}`);
    this.name = 'TensorflowUnavailable';
  }
}

/** How to get a working install; appended to every failure. */
export const TENSORFLOW_INSTALL_HINT =
  'install @tensorflow/tfjs-node-gpu@4.22.0 (NVIDIA: needs CUDA 11.2 and cuDNN 8.1 libraries on LD_LIBRARY_PATH) or ' +
  '@tensorflow/tfjs-node@4.22.0 (CPU) with `npm install --save-optional`; their install script downloads libtensorflow, ' +
  'so without internet point TFJS_NODE_CDN_STORAGE / TFJS_NODE_BASE_URI at a mirror (or edit the package\'s ' +
  'scripts/custom-binary.json) and run `npm rebuild <package>`; see docs/gpu.md';

type Lookup = { pkg: string; status: 'missing' } | { pkg: string; status: 'found'; file: string };

/** Resolves `pkg` from `base` (a directory) or from this module; 'missing' only when the package itself is absent. */
export function lookupPackage(pkg: string, base: string | undefined): Lookup {
  const req = createRequire(base ? path.join(path.resolve(base), 'noop.js') : import.meta.url);
  try {
    return { pkg, status: 'found', file: req.resolve(pkg) };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && err.message.includes(`'${pkg}'`)) return { pkg, status: 'missing' };
    return { pkg, status: 'found', file: `(unresolvable: ${err.message.split('\n')[0]})` };
  }
}

function isUsingGpu(): boolean | undefined {
  const b = tf.backend() as unknown as { isUsingGpuDevice?: unknown };
  return typeof b.isUsingGpuDevice === 'boolean' ? b.isUsingGpuDevice : undefined;
}

function deviceName(pkg: string): string {
  if (!pkg.endsWith('-gpu')) return 'libtensorflow (cpu)';
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  const gpu = isUsingGpu();
  const where = visible !== undefined ? `, CUDA_VISIBLE_DEVICES=${visible}` : '';
  if (gpu === false) return `libtensorflow gpu build on CPU (no usable CUDA device: check CUDA 11.2 / cuDNN 8.1 and the driver${where})`;
  return `libtensorflow (cuda${where})`;
}

/** Makes 'tensorflow' the tfjs backend with the first package that loads, gpu build first. */
export async function useTensorflow(o: TensorflowOptions = {}): Promise<TensorflowInfo> {
  const base = o.tfjsNodePath ?? (process.env.FLIP_TFJS_NODE_PATH || undefined);
  const problems: string[] = [];
  for (const pkg of TFJS_NODE_PACKAGES) {
    const found = lookupPackage(pkg, base);
    if (found.status === 'missing') {
      problems.push(`${pkg} is not installed${base ? ` under ${base}` : ''}`);
      continue;
    }
    try {
      if (found.file.startsWith('(')) throw new Error(found.file.slice(1, -1));
      // Registers the 'tensorflow' backend and loads the native add-on, which links libtensorflow.
      await import(pathToFileURL(found.file).href);
    } catch (e) {
      problems.push(`${pkg} is installed (${found.file}) but failed to load: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    if (!tf.findBackendFactory('tensorflow')) {
      problems.push(`${pkg} loaded but registered no 'tensorflow' backend with this @tensorflow/tfjs ${tf.version_core} (it carries another copy of tfjs-core; install version 4.22.0 in this project)`);
      continue;
    }
    try {
      if (!(await tf.setBackend('tensorflow'))) throw new Error("tf.setBackend('tensorflow') returned false");
      await tf.ready();
    } catch (e) {
      problems.push(`${pkg} loaded but the backend did not start: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    return { backend: 'tensorflow', device: deviceName(pkg) };
  }
  throw new TensorflowUnavailable(`needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node (with libtensorflow): ${problems.join('; ')}. To fix: ${TENSORFLOW_INSTALL_HINT}`);
}
