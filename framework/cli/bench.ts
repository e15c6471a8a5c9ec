/**
 * npm run bench [-- options]: median training-step time of the DEFAULTS config (the reference step; --preset, --batch
 * and --set change it) on a synthetic batch at image mask 0, 0.5 and 0.75, the ratio to mask 0, analytic FLOPs per
 * step, achieved GFLOP/s, the GFLOP/s of one large plain 2-D matMul on the same backend, and the sweep overhead per job
 * (real one-step jobs in child processes: wall time minus training and evaluation). Needs no dataset.
 */
import * as tf from '@tensorflow/tfjs';
import { DEFAULTS, PRESET_NAMES, deepMerge, estimateTrainCost, loadTrainer, makeRng, resolveConfig, type AdamW, type BackendName, type Engine, type Example, type TrainConfig } from '../../models/index.js';
import { measureOverhead } from '../run/measure-overhead.js';
import { SpecError } from '../spec/spec-error.js';
import { configFromSetFlags } from '../spec/load-spec.js';
import { EXIT, fail, intFlag, parseCli } from './common.js';

const USAGE = `usage: npm run bench [-- options]

  --preset P          model preset (default ${DEFAULTS.model.preset}; ${PRESET_NAMES.join(', ')})
  --batch N           batch size (default ${DEFAULTS.train.batch_size})
  --set PATH=VALUE    any other config field, as in sweep, e.g. --set model.image.patch_size=8 (repeatable)
  --backend B         backend (default ${DEFAULTS.backend})
  --steps N           timed steps per mask ratio (default 7)
  --warmup N          untimed steps per ratio first (default 2)
  --block K           consecutive steps per turn of a ratio, the first untimed (default 4; 1: single interleaved steps)
  --no-overhead       skip the sweep-overhead measurement (three one-step jobs)
  --json              one JSON object instead of lines`;

const args = parseCli('bench', USAGE, {
  preset: { type: 'string' }, batch: { type: 'string' }, set: { type: 'string', multiple: true }, backend: { type: 'string' },
  steps: { type: 'string' }, warmup: { type: 'string' }, block: { type: 'string' }, 'no-overhead': { type: 'boolean' }, json: { type: 'boolean' },
});
if (args.values.help) {
  console.log(USAGE);
  process.exit(EXIT.ok);
}
if (args.positionals.length > 0) fail(`bench: unexpected argument "${args.positionals[0]}"\n\n${USAGE}`, EXIT.invalid);

const RATIOS = [0, 0.5, 0.75];
const { buildModel, buildTrainBatch, countGpuCalls, createEngine, selectBackend, trainStep } = await loadTrainer();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Random images and token ids (start, 4-12 words, end, padding), as a dataset would give. */
function syntheticBatch(config: TrainConfig, vocab: number, rng: () => number): { examples: Example[]; ids: Int32Array[] } {
  const s = config.data.image_size;
  const ctx = config.model.text.context_length;
  const examples: Example[] = [];
  const ids: Int32Array[] = [];
  for (let b = 0; b < config.train.batch_size; b++) {
    const image = new Float32Array(s * s * 3);
    for (let i = 0; i < image.length; i++) image[i] = rng();
    examples.push({ image, caption: '', label: 0 });
    const row = new Int32Array(ctx); // pad id 0, start 1, end 2
    const words = 4 + Math.floor(rng() * 9);
    row[0] = 1;
    for (let i = 1; i <= words && i < ctx - 1; i++) row[i] = 3 + Math.floor(rng() * (vocab - 3));
    row[Math.min(words + 1, ctx - 1)] = 2;
    ids.push(row);
  }
  return { examples, ids };
}

/** One model, its optimizer and its synthetic batch at one mask ratio; step() times one training step. */
class Runner {
  readonly wall: number[] = [];
  readonly cpu: number[] = [];
  /** Seconds until trainStep returns: on an asynchronous backend (webgpu) the work is then queued, not done. */
  readonly enqueue: number[] = [];
  readonly engine: Engine;
  private readonly optimizer: AdamW;
  private readonly rng = makeRng(1);
  private readonly data: ReturnType<typeof syntheticBatch>;

  constructor(readonly config: TrainConfig) {
    const vocab = config.model.text.vocab_size;
    this.engine = createEngine(buildModel(config, vocab, 0));
    this.optimizer = this.engine.createOptimizer({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.2 });
    this.data = syntheticBatch(config, vocab, this.rng);
  }

  /** Wall-clock and process CPU seconds (user + system); record=false for warm-up steps. */
  async step(record: boolean): Promise<void> {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const batch = buildTrainBatch(this.config, this.data.examples, this.data.ids, this.engine.model, this.rng);
    const { out } = trainStep(this.engine, this.optimizer, batch, 1e-4);
    const queued = performance.now();
    await out.data();
    out.dispose();
    if (record) {
      this.enqueue.push((queued - t0) / 1000);
      this.wall.push((performance.now() - t0) / 1000);
      const c = process.cpuUsage(c0);
      this.cpu.push((c.user + c.system) / 1e6);
    }
  }

  dispose(): void {
    this.optimizer.dispose();
    this.engine.dispose();
    this.engine.model.dispose();
  }
}

async function matmulGflops(): Promise<number> {
  const a = tf.randomNormal([1024, 768]) as tf.Tensor2D;
  const b = tf.randomNormal([768, 768]) as tf.Tensor2D;
  const flops = 2 * 1024 * 768 * 768;
  // Waits for the product through a one-number readback: reading the whole [1024, 768] result back from wasm took
  // longer (~12 ms) than the product itself on the native kernels.
  const run = async () => {
    const c = tf.matMul(a, b);
    const s = tf.sum(c);
    await s.data();
    tf.dispose([c, s]);
  };
  await run();
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await run();
    times.push((performance.now() - t0) / 1000);
  }
  a.dispose();
  b.dispose();
  return flops / median(times) / 1e9;
}

async function main(): Promise<void> {
  const json = args.values.json ?? false;
  const steps = intFlag('steps', args.values.steps, 7, 1);
  const warmup = intFlag('warmup', args.values.warmup, 2, 0);
  const block = intFlag('block', args.values.block, 4, 1);
  const backendName = (args.values.backend ?? DEFAULTS.backend) as BackendName;
  if (args.values.preset !== undefined && !PRESET_NAMES.includes(args.values.preset)) {
    fail(`--preset: found "${args.values.preset}"; allowed: ${PRESET_NAMES.join(', ')}`, EXIT.invalid);
  }
  let overrides;
  try {
    overrides = configFromSetFlags(args.values.set ?? []);
  } catch (err) {
    if (err instanceof SpecError) fail(`bench: ${err.message}`, EXIT.invalid);
    throw err;
  }
  // --preset and --batch, where given, win over --set; the mask ratio is the benchmark's own.
  const shared = deepMerge(overrides, {
    backend: backendName,
    ...(args.values.preset !== undefined ? { model: { preset: args.values.preset } } : {}),
    ...(args.values.batch !== undefined ? { train: { batch_size: intFlag('batch', args.values.batch, 0, 2) } } : {}),
  });
  const reference = resolveConfig(shared);
  const preset = reference.model.preset;
  const batchSize = reference.train.batch_size;
  const info = await selectBackend(backendName, (m) => console.error(m));
  const stepSecondsByRatio: Record<string, number> = {};
  const cpuSecondsByRatio: Record<string, number> = {};
  const enqueueSecondsByRatio: Record<string, number> = {};
  const flopsPerStep: Record<string, number> = {};
  const gflops: Record<string, number> = {};
  // The three ratios take turns, round after round, so that load from other processes on a shared machine hits them
  // alike and the ratios stay comparable. Each turn is a block of consecutive steps of one ratio whose first step is
  // not timed: a sweep job runs its steps back to back with its own model in the caches, while the first step after
  // another ratio's starts cold (at mask 0.75 ~4 ms of an ~85 ms step here). --block 1 times single interleaved steps.
  const runners = RATIOS.map(
    (r) => new Runner(resolveConfig(deepMerge(shared, { mask: { image_ratio: r } }))),
  );
  for (let i = 0; i < warmup; i++) for (const runner of runners) await runner.step(false);
  // On webgpu: what one step after the first asks of the device (dispatches, submits, buffers created), its read-back
  // included; counted on an untimed step, since the counting wraps the device's methods.
  const gpuCalls = await countGpuCalls(() => runners[0].step(false));
  const tensorsAfterWarmup = tf.memory().numTensors;
  while (runners.some((r) => r.wall.length < steps)) {
    for (const runner of runners) {
      if (block > 1) await runner.step(false);
      for (let j = block > 1 ? 1 : 0; j < block && runner.wall.length < steps; j++) await runner.step(true);
    }
  }
  const leaked = tf.memory().numTensors - tensorsAfterWarmup;
  if (leaked !== 0) console.error(`warning: ${leaked} tensors leaked over ${steps} timed steps per ratio`);
  RATIOS.forEach((r, i) => {
    const { wall: times, cpu, config } = runners[i];
    stepSecondsByRatio[String(r)] = median(times);
    cpuSecondsByRatio[String(r)] = median(cpu);
    enqueueSecondsByRatio[String(r)] = median(runners[i].enqueue);
    flopsPerStep[String(r)] = estimateTrainCost(config).flops_per_step;
    gflops[String(r)] = flopsPerStep[String(r)] / median(times) / 1e9;
    if (!json) {
      console.log(
        `mask ${r.toFixed(2)}: median ${median(times).toFixed(3)} s/step over ${steps} steps ` +
          `(min ${Math.min(...times).toFixed(3)}, max ${Math.max(...times).toFixed(3)}), ` +
          `ratio to mask 0 ${(median(times) / stepSecondsByRatio['0']).toFixed(2)}; ` +
          `CPU ${median(cpu).toFixed(3)} s/step, ratio ${(median(cpu) / cpuSecondsByRatio['0']).toFixed(2)}; ` +
          `${(flopsPerStep[String(r)] / 1e9).toFixed(2)} GFLOP/step, ${gflops[String(r)].toFixed(1)} GFLOP/s`,
      );
    }
  });
  const engine = runners[0].engine.name;
  runners.forEach((runner) => runner.dispose());
  const mm = await matmulGflops();
  const ratios = Object.fromEntries(RATIOS.map((r) => [String(r), stepSecondsByRatio[String(r)] / stepSecondsByRatio['0']]));
  const cpuRatios = Object.fromEntries(RATIOS.map((r) => [String(r), cpuSecondsByRatio[String(r)] / cpuSecondsByRatio['0']]));
  // Sweep overhead: what a job costs outside training and evaluation (process, backend, data, model, result writing).
  const overhead = args.values['no-overhead'] ? [] : await measureOverhead(3);
  const overheadMedian = overhead.length ? median(overhead.map((o) => o.overhead_seconds)) : null;
  if (json) {
    console.log(JSON.stringify({ backend: info.backend, device: info.device, engine, preset, batch_size: batchSize, step_seconds: stepSecondsByRatio, enqueue_seconds: enqueueSecondsByRatio, ratio_to_mask0: ratios, cpu_step_seconds: cpuSecondsByRatio, cpu_ratio_to_mask0: cpuRatios, flops_per_step: flopsPerStep, achieved_gflops: gflops, matmul_gflops: mm, ...(gpuCalls ? { gpu_calls_per_step: gpuCalls } : {}), steps, warmup, block, job_overhead_seconds: overheadMedian, job_overhead_samples: overhead }));
  } else {
    console.log(`model preset ${preset}, batch ${batchSize}; backend ${info.backend} (${info.device}), engine ${engine}; plain matMul [1024x768]x[768x768]: ${mm.toFixed(1)} GFLOP/s`);
    if (gpuCalls) console.log(`GPU calls per step at mask 0: ${gpuCalls.dispatches} dispatches, ${gpuCalls.submits} submits, ${gpuCalls.buffers_created} buffers created`);
    for (const o of overhead) {
      console.log(`sweep job overhead: ${o.overhead_seconds.toFixed(2)} s (wall ${o.wall_seconds.toFixed(2)} s - train ${o.train_seconds.toFixed(2)} s - eval ${o.eval_seconds.toFixed(2)} s; of which setup in the job ${o.setup_seconds.toFixed(2)} s)`);
    }
    if (overheadMedian !== null) console.log(`median sweep job overhead: ${overheadMedian.toFixed(2)} s per job`);
  }
}

await main();
