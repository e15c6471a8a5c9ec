/** Checks of data.* shared by every dataset, and the seeded train/eval split of a finite source. */
import { allowedText, fieldProblem } from '../config-field-kinds.js';
import { CONFIG_FIELDS } from '../config-fields.js';
import { ConfigError } from '../events.js';
import { deriveSeed, makeRng, permutation } from '../random.js';

/** The declared range of data.image_size, checked again here for loaders called without a checked config. */
export function checkImageSize(imageSize: number): void {
  const field = CONFIG_FIELDS.fields.data.fields.image_size;
  if (fieldProblem('data.image_size', field, imageSize)) throw new ConfigError('data.image_size', `expected ${allowedText(field)}, got ${imageSize}`);
}

export function checkSplitSizes(trainSize: number, evalSize: number): void {
  if (!Number.isInteger(trainSize) || trainSize < 1) {
    throw new ConfigError('data.train_size', `expected an integer >= 1, got ${trainSize}`);
  }
  if (!Number.isInteger(evalSize) || evalSize < 0) {
    throw new ConfigError('data.eval_size', `expected an integer >= 0, got ${evalSize}`);
  }
}

/**
 * Seeded disjoint selection from `available` items: eval = the first evalSize of a permutation, train = the next
 * trainSize. The permutation depends on (seed, stream) only, so the eval set stays the same when train_size changes
 * (the data-scaling axis) and a smaller train set is a prefix of a bigger one.
 */
export function splitIndices(
  available: number,
  trainSize: number,
  evalSize: number,
  seed: number,
  stream: string,
  what = stream,
): { train: Int32Array; eval: Int32Array } {
  checkSplitSizes(trainSize, evalSize);
  if (trainSize + evalSize > available) {
    throw new ConfigError(
      'data.train_size',
      `${what}: train_size ${trainSize} + eval_size ${evalSize} = ${trainSize + evalSize} exceeds the ${available} examples available`,
    );
  }
  const perm = permutation(available, makeRng(deriveSeed(seed, `${stream}/split`)));
  return { eval: perm.slice(0, evalSize), train: perm.slice(evalSize, evalSize + trainSize) };
}

export function checkIndex(what: string, index: number, size: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= size) {
    throw new RangeError(`${what}: index ${index} out of range [0, ${size})`);
  }
}
