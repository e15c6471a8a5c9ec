/**
 * A small sweep without the coordinator (bundled by scripts/gpu/prepare.sh; the real `npm run sweep` needs
 * better-sqlite3 and tsx, which a bundle does not carry): the default config at image mask 0 / 0.5 / 0.75, each run
 * through train() in this process on FLIP_BACKEND (default webgpu). One JSON line per run on stdout: the device,
 * median step seconds (the first, compiling step left out), losses and the final results.
 * Env: FLIP_BACKEND, FLIP_SWEEP_STEPS (default 30), FLIP_SWEEP_MASKS (default 0,0.5,0.75).
 */
import { loadTrainer, resolveConfig, type BackendName } from '../../models/index.js';

const backend = (process.env.FLIP_BACKEND ?? 'webgpu') as BackendName;
const steps = Number(process.env.FLIP_SWEEP_STEPS ?? 30);
const masks = (process.env.FLIP_SWEEP_MASKS ?? '0,0.5,0.75').split(',').map(Number);

for (const mask of masks) {
  const config = resolveConfig({ backend, mask: { image_ratio: mask }, train: { steps } });
  const stepSeconds: number[] = [];
  const losses: number[] = [];
  let last = 0;
  const t0 = performance.now();
  try {
    const { train } = await loadTrainer();
    const r = await train(config, {
      onStep: (_s, m) => {
        stepSeconds.push(m.elapsed_seconds - last);
        last = m.elapsed_seconds;
        losses.push(m.loss);
      },
      onLog: (msg) => console.error(msg),
    });
    const sorted = stepSeconds.slice(1).sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        mask,
        backend: r.backend,
        device: r.device,
        steps: stepSeconds.length,
        first_step_s: stepSeconds[0],
        median_step_s: sorted[Math.floor(sorted.length / 2)] ?? null,
        wall_s: (performance.now() - t0) / 1000,
        first_loss: losses[0],
        last_loss: losses[losses.length - 1],
        results: r.results,
      }),
    );
  } catch (e) {
    console.log(JSON.stringify({ mask, backend, error: (e as Error).message }));
  }
}
