/**
 * npx tsx framework/cli/bench-memory.ts [--budget-mb N] [--json] [--backend B] [--max-batch N]
 *
 * FLIP's second claim: masking fits a bigger batch in the same memory. For a memory budget (default 256 MB), finds
 * by doubling then bisection the largest batch whose training step fits, at image mask 0, 0.5 and 0.75, for the
 * DEFAULTS config ('small' preset, 32x32 images, 64 patches, text length 16, no text masking), on synthetic data.
 *
 * Memory of a step = what train() reports as peak_memory_bytes (Engine.profiledStep): on the autodiff engine the peak of
 * tf.memory().numBytes over the step's kernels (forward, backward, AdamW update; from tf.profile, so the activations
 * kept for the backward pass are counted at their high point), on the native engine the tensors plus that
 * engine's activation and gradient buffers (all held at once); either way plus the native kernels' scratch buffers and
 * the AdamW moments when they live outside tfjs (the wasm backend keeps them in JS arrays: 2 x 4 bytes per
 * parameter). Peak memory grows monotonically with the batch, so bisection is sound.
 * Each probe runs one step of a fresh model (the peak does not depend on the values, only on the shapes).
 */
import * as tf from '@tensorflow/tfjs';
import { DEFAULTS, deepMerge, loadNativeAddon, loadTrainer, makeRng, type BackendName, type Example, type TrainConfig } from '../../models/index.js';

const RATIOS = [0, 0.5, 0.75];
const { buildModel, buildTrainBatch, createEngine, keepCount, selectBackend } = await loadTrainer();
/** Batches are searched to multiples of this (a finer answer costs a probe per halving). */
const RESOLUTION = 1;
/** Doubling starts here; the contrastive loss needs at least 2 pairs. */
const START_BATCH = 4;
const MIN_BATCH = 2;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function numberArg(name: string, fallback: number): number {
  const raw = arg(name);
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`${name}: expected a number > 0, got "${raw}"`);
    process.exit(2);
  }
  return v;
}

/** Random images and ids (start, 4-12 words, end, padding) for `batch` pairs. */
function syntheticPairs(config: TrainConfig, batch: number, rng: () => number): { examples: Example[]; ids: Int32Array[] } {
  const s = config.data.image_size;
  const ctx = config.model.text.context_length;
  const vocab = config.model.text.vocab_size;
  const examples: Example[] = [];
  const ids: Int32Array[] = [];
  for (let b = 0; b < batch; b++) {
    examples.push({ image: Float32Array.from({ length: s * s * 3 }, () => rng()), caption: '', label: 0 });
    const row = new Int32Array(ctx); // pad 0, start 1, end 2
    const words = Math.min(ctx - 2, 4 + Math.floor(rng() * 9));
    row[0] = 1;
    for (let i = 1; i <= words; i++) row[i] = 3 + Math.floor(rng() * (vocab - 3));
    row[words + 1] = 2;
    ids.push(row);
  }
  return { examples, ids };
}

interface Probe {
  batch: number;
  bytes: number;
  seconds: number;
}

/** Peak bytes of one training step of a fresh DEFAULTS model at `ratio` and `batch`. */
async function probe(base: TrainConfig, ratio: number, batch: number): Promise<Probe> {
  const config = deepMerge<TrainConfig>(base, { mask: { image_ratio: ratio }, train: { batch_size: batch } });
  const model = buildModel(config, config.model.text.vocab_size, 0);
  const engine = createEngine(model);
  const optimizer = engine.createOptimizer({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.2 });
  const rng = makeRng(batch * 31 + Math.round(ratio * 100));
  const t0 = performance.now();
  try {
    const { examples, ids } = syntheticPairs(config, batch, rng);
    const data = buildTrainBatch(config, examples, ids, model, rng);
    // The native kernels' scratch buffers only grow: start each probe from none, so a larger batch tried earlier does
    // not count against this one.
    loadNativeAddon().addon?.releaseScratch();
    // The step's peak as train() reports it (tensor peak or the native path's buffers, plus the kernels' scratch).
    const { out, bytes } = await engine.profiledStep(data, optimizer, 1e-4);
    out.dispose();
    const hostMoments = tf.getBackend() === 'wasm' ? 2 * 4 * model.store.count() : 0;
    return { batch, bytes: bytes + hostMoments, seconds: (performance.now() - t0) / 1000 };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

interface RatioResult {
  mask_ratio: number;
  kept_patches: number;
  /** Largest batch (multiple of RESOLUTION) whose step fits the budget; 0 when not even MIN_BATCH fits. */
  max_batch: number;
  /** Peak bytes at max_batch. */
  peak_bytes: number;
  /** Straight line through the smallest and largest probe: peak = fixed_bytes + marginal_bytes_per_pair x batch. */
  fixed_bytes: number;
  marginal_bytes_per_pair: number;
  probes: Probe[];
}

async function search(base: TrainConfig, ratio: number, budget: number, maxBatch: number, log: (s: string) => void): Promise<RatioResult> {
  const probes: Probe[] = [];
  const fits = async (batch: number) => {
    const p = await probe(base, ratio, batch);
    probes.push(p);
    log(`  mask ${ratio}: batch ${batch} -> ${(p.bytes / 2 ** 20).toFixed(1)} MiB (${p.bytes <= budget ? 'fits' : 'over'}, ${p.seconds.toFixed(1)} s)`);
    return p.bytes <= budget;
  };
  // Doubling: lo fits (or is 0), hi does not (or is the cap + RESOLUTION).
  let lo = 0;
  let hi = 0;
  for (let b = START_BATCH; ; b *= 2) {
    if (b > maxBatch) {
      hi = maxBatch + RESOLUTION;
      break;
    }
    if (await fits(b)) lo = b;
    else {
      hi = b;
      break;
    }
  }
  if (lo === 0) {
    // START_BATCH is over: search below it, from MIN_BATCH.
    if (await fits(MIN_BATCH)) lo = MIN_BATCH;
    else hi = lo; // nothing fits: max_batch 0
  }
  while (hi - lo > RESOLUTION) {
    const mid = Math.floor((lo + hi) / 2 / RESOLUTION) * RESOLUTION;
    if (mid <= lo || mid >= hi) break;
    if (await fits(mid)) lo = mid;
    else hi = mid;
  }
  const at = probes.find((p) => p.batch === lo);
  // Peak memory is affine in the batch: fixed (weights, gradients, moments) + per pair (activations, their gradients).
  const sorted = [...probes].sort((x, y) => x.batch - y.batch);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  const perPair = last.batch > first.batch ? (last.bytes - first.bytes) / (last.batch - first.batch) : 0;
  const patches = (base.data.image_size / base.model.image.patch_size) ** 2;
  return {
    mask_ratio: ratio,
    kept_patches: keepCount(patches, ratio),
    max_batch: lo,
    peak_bytes: at?.bytes ?? 0,
    fixed_bytes: first.bytes - perPair * first.batch,
    marginal_bytes_per_pair: perPair,
    probes,
  };
}

async function main(): Promise<void> {
  const budgetMb = numberArg('--budget-mb', 256);
  const maxBatch = numberArg('--max-batch', 2048);
  const json = process.argv.includes('--json');
  const backendName = (arg('--backend') ?? 'wasm') as BackendName;
  const log = (s: string) => (json ? process.stderr.write(s + '\n') : console.log(s));
  const info = await selectBackend(backendName, log);
  // Profiling otherwise reads back every kernel output to look for NaNs: time, not memory.
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  const budget = budgetMb * 2 ** 20;
  const base = DEFAULTS;
  log(`memory budget ${budgetMb} MiB; '${base.model.preset}' model, ${base.data.image_size}x${base.data.image_size} images, ${info.device}`);
  const t0 = performance.now();
  const results: RatioResult[] = [];
  for (const ratio of RATIOS) results.push(await search(base, ratio, budget, maxBatch, log));
  const seconds = (performance.now() - t0) / 1000;
  const baseline = results[0].max_batch;
  if (json) {
    console.log(
      JSON.stringify({
        budget_mb: budgetMb,
        backend: info.backend,
        device: info.device,
        preset: base.model.preset,
        image_size: base.data.image_size,
        resolution: RESOLUTION,
        measure: 'peak tf.memory().numBytes over one training step (tf.profile) + host AdamW moments on wasm',
        results: results.map((r) => ({ ...r, batch_vs_mask0: baseline > 0 ? r.max_batch / baseline : null })),
        seconds,
      }),
    );
    return;
  }
  console.log('');
  const mib = (b: number, digits: number) => (b / 2 ** 20).toFixed(digits);
  console.log('mask  kept patches  max batch  vs mask 0  peak MiB  fixed MiB  MiB per pair');
  for (const r of results) {
    console.log(
      `${r.mask_ratio.toFixed(2).padEnd(6)}${String(r.kept_patches).padStart(12)}${String(r.max_batch).padStart(11)}` +
        `${(baseline > 0 ? (r.max_batch / baseline).toFixed(2) + 'x' : '-').padStart(11)}` +
        `${mib(r.peak_bytes, 1).padStart(10)}${mib(r.fixed_bytes, 1).padStart(11)}${mib(r.marginal_bytes_per_pair, 2).padStart(14)}`,
    );
  }
  console.log(`(batch resolution ${RESOLUTION}; ${results.reduce((a, r) => a + r.probes.length, 0)} probes in ${seconds.toFixed(0)} s)`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
