/** Seeded pseudo-random numbers: the same seed gives the same data order, weights and masks on every machine. */

/** A stream of floats in [0, 1) whose position can be saved and restored (mid-training resume). */
export interface Rng {
  (): number;
  /** The 32-bit state: restore(state()) later continues the stream exactly where it was. */
  state(): number;
  restore(state: number): void;
}

/** mulberry32: 32-bit state, good enough for shuffles and masking noise. Returns floats in [0, 1). */
export function makeRng(seed: number): Rng {
  let a = (seed >>> 0) ^ 0x9e3779b9;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Object.assign(next, {
    state: () => a,
    restore: (s: number) => {
      if (!Number.isInteger(s) || s < 0 || s > 0xffffffff) throw new Error(`Rng.restore: ${s} is not a 32-bit state`);
      a = s;
    },
  });
}

/** A child seed for a named stream (data order, init, masking), so streams do not share numbers. */
export function deriveSeed(seed: number, stream: string): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Fisher-Yates shuffle of 0..n-1. */
export function permutation(n: number, rng: () => number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}
