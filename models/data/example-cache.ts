/**
 * Generated examples kept once made. A synthetic source (shapes, glyphs) draws each example from (seed, split, index)
 * on demand, and training on a few thousand pairs for hundreds of epochs drew every one of them hundreds of times:
 * about 0.1 ms for a 32 px glyph, a fifth of the tiny model's whole step on one thread. A split whose images fit in
 * SPLIT_CACHE_BYTES keeps each example the first time it is made; a larger one (shapes with a million pairs) is made
 * on demand as before, so memory stays bounded either way.
 *
 * Cached examples are shared between calls: their consumers read images and never write them (buildTrainBatch and
 * evaluate copy the patches they use into batches of their own).
 */
import type { Example } from './dataset.js';

export const SPLIT_CACHE_BYTES = 256 * 1024 * 1024;

/** `make` memoised by index when `size` images of `imageSize`^2 RGB floats fit in the budget; `make` itself otherwise. */
export function cachedExamples(make: (index: number) => Example, size: number, imageSize: number, budgetBytes = SPLIT_CACHE_BYTES): (index: number) => Example {
  if (size * imageSize * imageSize * 3 * Float32Array.BYTES_PER_ELEMENT > budgetBytes) return make;
  const kept: (Example | undefined)[] = new Array(size);
  return (index) => (kept[index] ??= make(index));
}
