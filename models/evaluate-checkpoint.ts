/**
 * Evaluation-only runs: rebuild a trained model from a checkpoint (see checkpoint.ts) and evaluate it with the
 * caller's config.eval (inference mode, templates, batch size). The dataset is loaded from config.data and
 * config.seed, so the same config gives the same eval split as training; masked / ensemble views use the same eval
 * noise stream as train() (deriveSeed(seed, 'eval')), so a checkpoint evaluated with the training config reproduces
 * the evaluation that train() ran on those weights. Config keys outside eval.* that differ from the checkpoint's
 * training config are logged (masked / ensemble views use this config's mask.image_ratio; another seed or data.*
 * gives another eval split).
 */
import { selectBackend } from './backend.js';
import { loadCheckpoint } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { loadDataset } from './data/load.js';
import { createEngine } from './engine/select.js';
import { evaluate } from './evaluate.js';
import { ConfigError, type TrainEvents, type TrainResult } from './events.js';
import { disposeConstants } from './nn/constants.js';
import { deriveSeed, makeRng } from './random.js';
import { assertConfig } from './train.js';

/** results: the evaluation metrics plus evaluated_step (the checkpoint's step); no training numbers. */
export async function evaluateCheckpoint(config: TrainConfig, checkpointDir: string, events: TrainEvents): Promise<TrainResult> {
  assertConfig(config);
  const log = (msg: string) => events.onLog?.(msg);
  const backend = await selectBackend(config.backend, log);
  const dataset = await loadDataset(config);
  if (dataset.imageSize !== config.data.image_size) {
    throw new ConfigError('data.image_size', `${config.data.image_size} but dataset '${dataset.name}' gives ${dataset.imageSize}`);
  }
  const { meta, tokenizer, model } = await loadCheckpoint(checkpointDir, config);
  try {
    events.onStart?.({ backend: backend.backend, device: backend.device, total_steps: 0 });
    log(`checkpoint ${checkpointDir}: stage '${meta.stage}', step ${meta.step}, ${model.store.count()} parameters; inference '${config.eval.inference}'`);
    const changed = configDifferences(meta.config, config).filter((k) => !k.startsWith('eval.'));
    if (changed.length > 0) log(`note: config differs from the checkpoint's training config in ${changed.join(', ')}`);
    const t0 = performance.now();
    const metrics = await evaluate({ engine: createEngine(model, log), dataset, tokenizer, config, rng: makeRng(deriveSeed(config.seed, 'eval')) });
    log(`eval of step ${meta.step} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    events.onEval?.(meta.step, metrics);
    return { backend: backend.backend, device: backend.device, results: { ...metrics, evaluated_step: meta.step } };
  } finally {
    model.dispose();
    disposeConstants();
  }
}

/** Dotted keys whose values differ between two configs (arrays compared whole). */
export function configDifferences(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(a) || !isObj(b)) return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(root)'];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => configDifferences(a[k], b[k], prefix ? `${prefix}.${k}` : k));
}
