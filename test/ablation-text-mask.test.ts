/** FLIP Table 1c, text masking: each strategy drops what it claims and nothing else, the start token always stays,
 * and dropped tokens cost no compute (the text encoder runs on [B*K] tokens, K < T). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { resolveConfig, type TextMaskStrategy } from '../models/config.js';
import { concatIds, fullPositions, maskText } from '../models/flip-model.js';
import { buildModel } from '../models/engine/select.js';
import { makeRng } from '../models/random.js';

const PAD = 0;
const START = 1;
const END = 2;
const T = 16;

/** B captions of T ids: start, `words[b]` word ids (3..), end, padding. Returns [B*T] and the real length of each. */
function captions(words: number[]): { ids: Int32Array; real: number[] } {
  const rows = words.map((n, b) => {
    const row = new Int32Array(T).fill(PAD);
    row[0] = START;
    for (let i = 1; i <= n; i++) row[i] = 3 + ((b * 7 + i) % 40);
    row[n + 1] = END;
    return row;
  });
  return { ids: concatIds(rows), real: words.map((n) => n + 2) };
}

/** Per sample: the original positions kept, as a set. */
function keptPositions(positions: Int32Array, batch: number): Set<number>[] {
  const k = positions.length / batch;
  return Array.from({ length: batch }, (_, b) => new Set(positions.subarray(b * k, (b + 1) * k)));
}

test('prioritized: with enough padding only padding is dropped; real tokens go only when padding runs out', () => {
  const words = Array.from({ length: 64 }, (_, b) => 1 + (b % 6)); // 3..8 real tokens of 16; K = 8 at ratio 0.5
  const { ids, real } = captions(words);
  const r = maskText(ids, 64, 0.5, 'prioritized', PAD, makeRng(3));
  assert.equal(r.tokens, 8);
  keptPositions(r.positions, 64).forEach((kept, b) => {
    for (let i = 0; i < real[b]; i++) assert.ok(kept.has(i), `sample ${b} (${real[b]} real tokens): real token at ${i} dropped; kept ${[...kept]}`);
  });
  // Kept ids are the original ids at the kept positions (nothing rewritten).
  for (let j = 0; j < r.ids.length; j++) assert.equal(r.ids[j], ids[Math.floor(j / 8) * T + r.positions[j]]);

  // 12 real tokens of 16 and K = 8: no padding can be kept, and 4 real tokens must go.
  const long = captions([10, 10, 10, 10]);
  const l = maskText(long.ids, 4, 0.5, 'prioritized', PAD, makeRng(4));
  assert.ok(Array.from(l.ids).every((id) => id !== PAD), `padding kept while real tokens were dropped: ${Array.from(l.ids)}`);
});

test('random: drops real tokens too, and keeps padding while it does', () => {
  const { ids, real } = captions(Array.from({ length: 64 }, () => 4)); // 6 real tokens of 16, K = 8
  const r = maskText(ids, 64, 0.5, 'random', PAD, makeRng(3));
  const kept = keptPositions(r.positions, 64);
  const droppedReal = kept.filter((s, b) => Array.from({ length: real[b] }, (_, i) => i).some((i) => !s.has(i))).length;
  assert.ok(droppedReal > 32, `random masking dropped a real token in only ${droppedReal} of 64 captions`);
  const keptPad = Array.from(r.ids).filter((id) => id === PAD).length;
  assert.ok(keptPad > 0, 'random masking never kept a padding token');
});

test('truncate keeps exactly the first K tokens', () => {
  const { ids } = captions([3, 9, 14]);
  for (const ratio of [0.25, 0.5, 0.75]) {
    const r = maskText(ids, 3, ratio, 'truncate', PAD, makeRng(1));
    const k = Math.floor(T * (1 - ratio));
    assert.equal(r.tokens, k);
    for (let b = 0; b < 3; b++) {
      assert.deepEqual(Array.from(r.positions.subarray(b * k, (b + 1) * k)), Array.from({ length: k }, (_, i) => i), `ratio ${ratio} sample ${b}`);
      assert.deepEqual(Array.from(r.ids.subarray(b * k, (b + 1) * k)), Array.from(ids.subarray(b * T, b * T + k)));
    }
  }
});

test('every strategy keeps the start token at position 0 of every sample, positions increasing', () => {
  const { ids } = captions(Array.from({ length: 32 }, (_, b) => b % 14));
  for (const strategy of ['random', 'prioritized', 'truncate'] as TextMaskStrategy[]) {
    for (const ratio of [0.1, 0.5, 0.75, 0.875]) {
      const r = maskText(ids, 32, ratio, strategy, PAD, makeRng(9));
      const k = r.tokens;
      assert.ok(k >= 2, `${strategy} ${ratio}: K = ${k}`);
      for (let b = 0; b < 32; b++) {
        assert.equal(r.positions[b * k], 0, `${strategy} ${ratio} sample ${b}: first kept position ${r.positions[b * k]}`);
        assert.equal(r.ids[b * k], START);
        for (let j = 1; j < k; j++) assert.ok(r.positions[b * k + j] > r.positions[b * k + j - 1], `${strategy} ${ratio} sample ${b}: positions not increasing`);
      }
    }
  }
});

test('dropped tokens cost no compute: every text-encoder kernel runs on B*K tokens, none on B*T', async () => {
  await selectBackend('wasm');
  const b = 3; // B*T = 48, B*K = 24 at ratio 0.5; the widths (64, 256) and vocabulary (50) differ from both
  const config = resolveConfig({ model: { preset: 'tiny', text: { context_length: T } }, data: { image_size: 16 } });
  const model = buildModel(config, 50, PAD);
  const { ids } = captions([2, 5, 9]);
  try {
    const shapesOf = async (run: () => tf.Tensor) => {
      const profile = await tf.profile(() => {
        const out = run();
        return out;
      });
      (profile.result as tf.Tensor).dispose();
      return profile.kernels.flatMap((k) => k.outputShapes as number[][]);
    };
    const full = await shapesOf(() => model.embedTexts(ids, fullPositions(b, T), b));
    const heads = config.model.text.heads;
    assert.ok(full.some((s) => s[0] === b * T), 'unmasked: some kernel on B*T rows');
    // Attention probabilities: [B*H, L, L] from the plain ops, [B, H, L, L] from the native kernel.
    const isScores = (s: number[], len: number) => s.length >= 3 && s.slice(-2).join() === `${len},${len}` && s.slice(0, -2).reduce((x, y) => x * y, 1) === b * heads;
    assert.ok(full.some((s) => isScores(s, T)), 'unmasked: [B*H, T, T] attention scores');

    const m = maskText(ids, b, 0.5, 'prioritized', PAD, makeRng(1));
    assert.equal(m.ids.length, b * 8);
    const masked = await shapesOf(() => model.embedTexts(m.ids, m.positions, b));
    const bad = masked.filter((s) => s[0] === b * T || s.join().endsWith(`${T},${T}`));
    assert.deepEqual(bad, [], `kernels still on the full length: ${JSON.stringify(bad.slice(0, 5))}`);
    assert.ok(masked.some((s) => s[0] === b * 8), 'masked: kernels on B*K rows');
    assert.ok(masked.some((s) => isScores(s, 8)), 'masked: [B*H, K, K] attention scores');
    const out = model.embedTexts(m.ids, m.positions, b);
    assert.deepEqual(out.shape, [b, config.model.embed_dim]);
    out.dispose();
  } finally {
    model.dispose();
  }
});
