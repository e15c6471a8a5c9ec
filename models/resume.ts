/**
 * Mid-training resume state: everything a training run needs to continue exactly where it was, so that a job that
 * was interrupted, killed or failed goes on from its last saved step and ends with the same numbers as a run that
 * was never stopped.
 *
 *   <dir>/latest.json        {"state": "step-000120"}: the last complete state (written aside, fsynced, renamed)
 *   <dir>/step-000120/       weights.bin + checkpoint.json (models/checkpoint.ts), optimizer.bin (AdamW's m then v,
 *                            float32, params order), order.bin (the data order's current permutation, int32) and
 *                            loop.json (LoopState)
 *
 * A state is complete before latest.json names it, and latest.json is replaced by a rename, so a crash at any moment
 * leaves the previous state or the new one, never a torn one. Older states are removed once the new one is named.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadWeightsInto, readCheckpointMeta, saveCheckpoint } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import type { Tokenizer } from './data/tokenizer.js';
import type { FlipModel } from './flip-model.js';
import type { AdamWState } from './optimizer.js';

export const RESUME_FORMAT = 'flip-resume/1';
const LATEST = 'latest.json';

/** The training loop's own state at a step boundary of pre-training. */
export interface LoopState {
  format: typeof RESUME_FORMAT;
  step: number;
  samples_seen: number;
  train_seconds: number;
  eval_seconds: number;
  peak_memory_bytes: number;
  peak_rss_bytes: number;
  last_loss: number;
  last_eval: Record<string, number>;
  /** Position of the data order: its RNG state and the index into its current permutation (order.bin). */
  order_rng: number;
  order_pos: number;
  mask_rng: number;
  /** AdamW's step count. */
  optimizer_t: number;
}

export interface ResumeState {
  loop: LoopState;
  order: Int32Array;
  optimizer: AdamWState;
}

/** Writes bytes to path and makes them durable before returning. */
function writeDurably(path: string, data: Uint8Array | string): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const bytesOf = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Saves a complete state under dir and names it in latest.json; removes the states it replaces. */
export async function saveResumeState(dir: string, model: FlipModel, config: TrainConfig, tokenizer: Tokenizer, state: ResumeState): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const name = `step-${String(state.loop.step).padStart(6, '0')}`;
  const target = join(dir, name);
  rmSync(target, { recursive: true, force: true }); // a torn one from a crash at this very step
  await saveCheckpoint(target, model, config, tokenizer, { step: state.loop.step, stage: 'resume' });
  for (const f of readdirSync(target)) fsyncPath(join(target, f));
  writeDurably(join(target, 'optimizer.bin'), bytesOf(concat([...state.optimizer.m, ...state.optimizer.v])));
  writeDurably(join(target, 'order.bin'), bytesOf(state.order));
  writeDurably(join(target, 'loop.json'), JSON.stringify(state.loop, null, 1) + '\n');
  fsyncPath(target);
  writeDurably(join(dir, LATEST + '.tmp'), JSON.stringify({ state: name }) + '\n');
  renameSync(join(dir, LATEST + '.tmp'), join(dir, LATEST));
  fsyncPath(dir);
  for (const old of readdirSync(dir)) if (old.startsWith('step-') && old !== name) rmSync(join(dir, old), { recursive: true, force: true });
}

/** The step of the state latest.json names, or null when there is none. */
export function resumeStep(dir: string): number | null {
  if (!existsSync(join(dir, LATEST))) return null;
  const { state } = JSON.parse(readFileSync(join(dir, LATEST), 'utf8')) as { state: string };
  return (JSON.parse(readFileSync(join(dir, state, 'loop.json'), 'utf8')) as LoopState).step;
}

/**
 * Loads the state latest.json names into model (weights) and returns the rest; null when there is none. The caller's
 * model must be the one the state was saved from (same config): its parameter table is checked.
 */
export function loadResumeState(dir: string, model: FlipModel): ResumeState | null {
  if (!existsSync(join(dir, LATEST))) return null;
  const { state: name } = JSON.parse(readFileSync(join(dir, LATEST), 'utf8')) as { state: string };
  const at = join(dir, name);
  const loop = JSON.parse(readFileSync(join(at, 'loop.json'), 'utf8')) as LoopState;
  if (loop.format !== RESUME_FORMAT) throw new Error(`resume state ${at}: format "${loop.format}", expected "${RESUME_FORMAT}"`);
  loadWeightsInto(at, readCheckpointMeta(at), model);
  const sizes = model.store.params.map((p) => p.variable.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  const raw = readFileSync(join(at, 'optimizer.bin'));
  if (raw.byteLength !== 2 * total * 4) throw new Error(`resume state ${at}: optimizer.bin has ${raw.byteLength} bytes, the model's moments need ${2 * total * 4}`);
  const flat = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const split = (from: number) => {
    let offset = from;
    return sizes.map((n) => {
      const part = flat.slice(offset, offset + n);
      offset += n;
      return part;
    });
  };
  const orderRaw = readFileSync(join(at, 'order.bin'));
  const order = new Int32Array(orderRaw.buffer.slice(orderRaw.byteOffset, orderRaw.byteOffset + orderRaw.byteLength));
  return { loop, order, optimizer: { t: loop.optimizer_t, m: split(0), v: split(total) } };
}

/** Removes every saved state (the run finished: nothing is left to resume). */
export function clearResumeState(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
