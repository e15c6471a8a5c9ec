/**
 * The 'webgpu' backend in Node: Dawn from the optional npm package `webgpu` as `navigator.gpu`, and
 * @tensorflow/tfjs-backend-webgpu (optional too) on top of it.
 *
 * Dawn back ends are tried in order: Vulkan (the route on NVIDIA machines; needs the loader libvulkan.so.1 and a driver
 * ICD), then OpenGL ES through EGL (on a CPU-only machine: Mesa's llvmpipe, with EGL_PLATFORM=surfaceless and the
 * 'compatibility' feature level). FLIP_WEBGPU_BACKEND=vulkan|opengles names one of them instead.
 *
 * tfjs-backend-webgpu's own backend factory asks navigator.gpu for a core-feature-level adapter with no options, which
 * finds nothing on llvmpipe and cannot pick a GPU; so this module registers its own factory under the name 'webgpu'
 * that builds tfjs's WebGPUBackend on the device of the adapter chosen here.
 *
 * Which adapter: FLIP_DEVICE (set per job by the sweep's --gpus slots) is an index into Dawn's adapter list for the
 * back end in use, or else a substring of an adapter's name. Dawn selects adapters by name only, so of several GPUs
 * with the same name only the first can be chosen (see docs/gpu.md).
 *
 * Software adapters (llvmpipe, lavapipe, SwiftShader, ...) are slower than the wasm backend: `requireHardware`
 * (backend auto) refuses them, and an explicit 'webgpu' refuses them unless allowSoftware / FLIP_WEBGPU_SOFTWARE=1.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The parts of Dawn's WebGPU objects used here (the package's full types are optional like the package). */
interface GpuAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapter {
  readonly info: GpuAdapterInfo;
  readonly features: { has(name: string): boolean };
  readonly limits: Record<string, number>;
  readonly isFallbackAdapter?: boolean;
  requestDevice(descriptor?: unknown): Promise<unknown>;
}
interface Gpu {
  requestAdapter(options?: { featureLevel?: string; powerPreference?: string }): Promise<GpuAdapter | null>;
}
interface DawnModule {
  create(flags: string[]): Gpu;
  globals: Record<string, unknown>;
}
type WebGPUBackendClass = new (device: unknown, adapterInfo?: unknown) => tf.KernelBackend;

export type DawnBackend = 'vulkan' | 'opengles';
const DAWN_BACKENDS: readonly DawnBackend[] = ['vulkan', 'opengles'];

export interface WebgpuOptions {
  /** Refuse software adapters (backend auto). */
  requireHardware?: boolean;
  /** Accept a software adapter for an explicit 'webgpu' (default: env FLIP_WEBGPU_SOFTWARE=1). */
  allowSoftware?: boolean;
  /** Dawn back ends to try, in order (default: env FLIP_WEBGPU_BACKEND, else vulkan then opengles). */
  backends?: DawnBackend[];
  /** Adapter index or name substring (default: env FLIP_DEVICE). */
  device?: string;
  log?: (msg: string) => void;
}

export interface WebgpuInfo {
  backend: 'webgpu';
  /** e.g. 'NVIDIA H100 80GB HBM3 (webgpu/vulkan)', 'llvmpipe (LLVM 15.0.6, 256 bits) (webgpu/opengles, software)' */
  device: string;
  software: boolean;
}

/** A failure that says what is missing; `reason` is the text without the "backend 'webgpu'" prefix. */
export class WebgpuUnavailable extends Error {
  constructor(readonly reason: string) {
    super(`backend 'webgpu': ${reason}`);
    this.name = 'WebgpuUnavailable';
  }
}

const SOFTWARE_NAME = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render|\bwarp\b/i;

/** True for CPU-emulated adapters: by name (Mesa llvmpipe/lavapipe, SwiftShader, Microsoft WARP) or Dawn's fallback flag. */
export function isSoftwareAdapter(name: string, info: GpuAdapterInfo = {}, isFallback = false): boolean {
  if (isFallback || info.isFallbackAdapter) return true;
  return [name, info.device, info.description, info.architecture].some((s) => typeof s === 'string' && SOFTWARE_NAME.test(s));
}

/** Parses Dawn-node's "Available adapters:" list (printed when no adapter matches an `adapter=` flag). */
export function parseAdapterList(message: string): { backend: string; name: string }[] {
  const out: { backend: string; name: string }[] = [];
  for (const line of message.split('\n')) {
    const m = /^\s*\*\s*backend:\s*'([^']*)',\s*name:\s*'(.*)'\s*$/.exec(line);
    if (m) out.push({ backend: m[1], name: m[2] });
  }
  return out;
}

/** The list entry Dawn returned (adapter.info.device is the name in lower case with '-' for other characters). */
export function adapterName(list: { name: string }[], info: GpuAdapterInfo): string {
  if (list.length === 1) return list[0].name;
  const norm = (x: string) => x.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  const hit = list.find((a) => a.name === info.description || (info.device && norm(a.name) === norm(info.device)));
  return hit?.name ?? (info.description || info.device || 'unknown adapter');
}

/** Which adapter FLIP_DEVICE names, in Dawn's list for one back end. Pure, for tests. */
export function pickAdapter(
  list: { name: string }[],
  device: string | undefined,
): { name: string; note?: string } | { error: string } | null {
  if (device === undefined || device === '') return null;
  const names = list.map((a, i) => `${i}: '${a.name}'`).join(', ') || 'none';
  if (/^\d+$/.test(device)) {
    const i = Number(device);
    if (i >= list.length) {
      // One visible adapter and a higher index: the driver already restricted what this process sees.
      if (list.length === 1) return { name: list[0].name, note: `FLIP_DEVICE=${device} but only one adapter is visible; using it` };
      return { error: `FLIP_DEVICE=${device} but Dawn lists ${list.length} adapter(s): ${names}` };
    }
    const name = list[i].name;
    const first = list.findIndex((a) => a.name === name);
    if (first !== i) {
      return {
        name,
        note: `FLIP_DEVICE=${device}: adapters ${first} and ${i} share the name '${name}' and Dawn selects by name, so this runs on adapter ${first}`,
      };
    }
    return { name };
  }
  const hit = list.find((a) => a.name.toLowerCase().includes(device.toLowerCase()));
  return hit ? { name: hit.name } : { error: `FLIP_DEVICE='${device}' matches no adapter name: ${names}` };
}

const require = createRequire(import.meta.url);

/** Whether the dynamic loader finds a library; a found library that is not a Node add-on fails differently. */
function libraryLoads(lib: string): boolean {
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, lib);
    return true;
  } catch (e) {
    return !/cannot open shared object file|image not found|no such file/i.test((e as Error).message);
  }
}

let dawn: DawnModule | null = null;
let WebGPUBackend: WebGPUBackendClass | null = null;
/** The adapter behind the registered 'webgpu' factory; one per process (tfjs keeps one backend instance). */
let chosen: Found | null = null;
interface Found {
  gpu: Gpu;
  adapter: GpuAdapter;
  info: WebgpuInfo;
  dawnBackend: DawnBackend;
}

async function loadPackages(): Promise<{ dawn: DawnModule; WebGPUBackend: WebGPUBackendClass }> {
  if (!dawn) {
    try {
      // Literal specifiers, so that a bundler (scripts/gpu/prepare.sh) sees them; ts-ignore keeps the typecheck green
      // where the optional package is absent.
      // @ts-ignore
      dawn = (await import('webgpu')) as unknown as DawnModule;
    } catch (e) {
      throw new WebgpuUnavailable(`needs the npm package "webgpu" (Dawn for Node), which is not installed: ${(e as Error).message.split('\n')[0]}`);
    }
    // GPUBufferUsage, GPUMapMode, ... are globals in a browser; tfjs-backend-webgpu reads them from globalThis.
    for (const [k, v] of Object.entries(dawn.globals ?? {})) if (!(k in globalThis)) Object.defineProperty(globalThis, k, { value: v, configurable: true, writable: true });
  }
  if (!WebGPUBackend) {
    // tfjs-backend-webgpu registers its kernels on import, and its own factory only when navigator.gpu exists then;
    // a placeholder navigator.gpu lets it load, and that factory is replaced below.
    ensureNavigatorGpu();
    try {
      // @ts-ignore (optional package, see above)
      const mod = (await import('@tensorflow/tfjs-backend-webgpu')) as Record<string, unknown>;
      WebGPUBackend = (mod.WebGPUBackend ?? (mod.default as Record<string, unknown> | undefined)?.WebGPUBackend) as WebGPUBackendClass;
      if (typeof WebGPUBackend !== 'function') throw new Error('the package exports no WebGPUBackend');
    } catch (e) {
      WebGPUBackend = null;
      throw new WebgpuUnavailable(`needs @tensorflow/tfjs-backend-webgpu 4.22.0 (optional dependency): ${(e as Error).message.split('\n')[0]}`);
    }
    checkSameCore();
    // Its own factory (priority 3) would win tfjs's default choice and ask the placeholder for an adapter.
    if (!chosen && tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  }
  return { dawn, WebGPUBackend };
}

/** tfjs-backend-webgpu must register its kernels on the same tfjs-core as @tensorflow/tfjs. */
function checkSameCore(): void {
  if (!tf.getKernel('UnsortedSegmentSum', 'webgpu')) {
    let where = '';
    try {
      where = ` (found at ${path.dirname(require.resolve('@tensorflow/tfjs-backend-webgpu'))})`;
    } catch {}
    throw new WebgpuUnavailable(`@tensorflow/tfjs-backend-webgpu${where} registered no kernels with this @tensorflow/tfjs; its version must match @tensorflow/tfjs ${tf.version_core}`);
  }
}

/** navigator.gpu, where tfjs-backend-webgpu looks for WebGPU (Node 20 has no navigator; Node 21+ has one without gpu). */
function setNavigatorGpu(gpu: unknown, onlyIfMissing: boolean): void {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (onlyIfMissing && g.navigator?.gpu) return;
  if (g.navigator) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
}

function ensureNavigatorGpu(): void {
  setNavigatorGpu({ requestAdapter: async () => chosen?.adapter ?? null }, true);
}

/** Dawn's adapters for one back end, by the list Dawn-node prints when an `adapter=` flag matches nothing. */
async function listAdapters(d: DawnModule, backend: DawnBackend): Promise<{ backend: string; name: string }[]> {
  try {
    const gpu = d.create([`backend=${backend}`, 'adapter=#flip-no-such-adapter#']);
    await gpu.requestAdapter({ featureLevel: 'compatibility', powerPreference: 'high-performance' });
  } catch (e) {
    return parseAdapterList((e as Error).message);
  }
  return [];
}

/** First adapter of `backend`: core feature level, else 'compatibility' (which OpenGL ES needs). */
async function requestAdapter(d: DawnModule, backend: DawnBackend, name: string | undefined): Promise<{ gpu: Gpu; adapter: GpuAdapter | null }> {
  const gpu = d.create([`backend=${backend}`, ...(name ? [`adapter=${name}`] : [])]);
  const adapter =
    (await gpu.requestAdapter({ powerPreference: 'high-performance' })) ??
    (await gpu.requestAdapter({ featureLevel: 'compatibility', powerPreference: 'high-performance' }));
  return { gpu, adapter };
}

function backendsFromEnv(): DawnBackend[] | undefined {
  const v = process.env.FLIP_WEBGPU_BACKEND;
  if (!v) return undefined;
  if (!(DAWN_BACKENDS as readonly string[]).includes(v)) throw new WebgpuUnavailable(`FLIP_WEBGPU_BACKEND='${v}'; allowed: ${DAWN_BACKENDS.join(', ')}`);
  return [v as DawnBackend];
}

/** Finds an adapter per the options, without touching tfjs. Throws WebgpuUnavailable with every reason. */
async function findAdapter(d: DawnModule, o: WebgpuOptions): Promise<Found> {
  const log = o.log ?? (() => {});
  const backends = o.backends ?? backendsFromEnv() ?? [...DAWN_BACKENDS];
  const device = o.device ?? process.env.FLIP_DEVICE;
  const allowSoftware = !o.requireHardware && (o.allowSoftware ?? process.env.FLIP_WEBGPU_SOFTWARE === '1');
  const reasons: string[] = [];
  let software: string | null = null;
  for (const b of backends) {
    if (b === 'vulkan' && !libraryLoads('libvulkan.so.1')) {
      reasons.push('vulkan: the Vulkan loader libvulkan.so.1 is not installed (Debian: libvulkan1)');
      continue;
    }
    if (b === 'opengles') {
      if (o.requireHardware && !o.backends && !process.env.FLIP_WEBGPU_BACKEND) {
        // On the machines this project meets, OpenGL ES without a GPU is llvmpipe; GPUs are reached through Vulkan.
        reasons.push('opengles: not probed for auto (GPUs are reached through Vulkan; set FLIP_WEBGPU_BACKEND=opengles to probe it)');
        continue;
      }
      // Without a display, Mesa's EGL needs the surfaceless platform; read when Dawn opens EGL, so set it first.
      process.env.EGL_PLATFORM ??= 'surfaceless';
    }
    const list = await listAdapters(d, b);
    if (list.length === 0 && device) log(`webgpu: Dawn listed no ${b} adapters, so FLIP_DEVICE=${device} cannot pick one; taking the first found`);
    const pick = list.length > 0 ? pickAdapter(list, device) : null;
    if (pick && 'error' in pick) {
      reasons.push(`${b}: ${pick.error}`);
      continue;
    }
    if (pick?.note) log(`webgpu: ${pick.note}`);
    let gpu: Gpu;
    let adapter: GpuAdapter | null;
    try {
      ({ gpu, adapter } = await requestAdapter(d, b, pick?.name));
    } catch (e) {
      reasons.push(`${b}: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    if (!adapter) {
      reasons.push(
        b === 'vulkan'
          ? 'vulkan: no adapter (the loader is there but no GPU driver registers with it: NVIDIA needs its ICD, see VK_DRIVER_FILES in docs/gpu.md)'
          : `${b}: no adapter (a CPU-only Debian machine needs libegl1 libegl-mesa0 libgl1-mesa-dri for llvmpipe)`,
      );
      continue;
    }
    const name = pick?.name ?? adapterName(list, adapter.info);
    const isSoftware = isSoftwareAdapter(name, adapter.info, adapter.isFallbackAdapter === true);
    const info: WebgpuInfo = { backend: 'webgpu', device: `${name} (webgpu/${b}${isSoftware ? ', software' : ''})`, software: isSoftware };
    if (isSoftware && !allowSoftware) {
      software = `'${name}' (${b})`;
      reasons.push(`${b}: only the software adapter '${name}'`);
      continue;
    }
    return { gpu, adapter, info, dawnBackend: b };
  }
  if (software) {
    const hint = o.requireHardware
      ? 'auto uses hardware adapters only'
      : 'set FLIP_WEBGPU_SOFTWARE=1 to use it anyway (it exercises the code path; it is slower than wasm)';
    throw new WebgpuUnavailable(`no GPU adapter found, only the software adapter ${software}; ${hint} [${reasons.join('; ')}]`);
  }
  throw new WebgpuUnavailable(`no GPU adapter found [${reasons.join('; ')}]; see docs/gpu.md`);
}

/** tfjs-backend-webgpu's device request, on our adapter: the optional features it uses and the adapter's limits. */
async function makeBackend(Backend: WebGPUBackendClass, adapter: GpuAdapter): Promise<tf.KernelBackend> {
  const requiredFeatures = ['timestamp-query', 'bgra8unorm-storage'].filter((f) => adapter.features.has(f));
  const l = adapter.limits;
  const requiredLimits = {
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
  };
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  return new Backend(device, adapter.info);
}

/**
 * Makes 'webgpu' the tfjs backend. The first successful call fixes the adapter for the process; later calls reuse it
 * (and still refuse a software one where asked to).
 */
export async function useWebgpu(o: WebgpuOptions = {}): Promise<WebgpuInfo> {
  const { dawn: d, WebGPUBackend: Backend } = await loadPackages();
  if (!chosen) {
    const found = await findAdapter(d, o);
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => makeBackend(Backend, found.adapter), 0);
    chosen = found;
    setNavigatorGpu(found.gpu, false);
  } else if (chosen.info.software && (o.requireHardware || !(o.allowSoftware ?? process.env.FLIP_WEBGPU_SOFTWARE === '1'))) {
    const hint = o.requireHardware ? 'auto uses hardware adapters only' : 'set FLIP_WEBGPU_SOFTWARE=1 to use it anyway';
    throw new WebgpuUnavailable(`no GPU adapter found, only the software adapter this process already uses (${chosen.info.device}); ${hint}`);
  }
  let ok = false;
  try {
    ok = await tf.setBackend('webgpu');
  } catch (e) {
    throw new WebgpuUnavailable(`could not create a device on ${chosen.info.device}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!ok) throw new WebgpuUnavailable(`could not create a device on ${chosen.info.device} (tf.setBackend('webgpu') returned false)`);
  await tf.ready();
  return { ...chosen.info };
}
