/**
 * The one dataset interface every source (synthetic shapes, emoji, Fashion-MNIST, a user's folder, WebDataset shards)
 * implements. Finite sources give both splits by index; a streaming source (WebDataset) gives its training examples
 * through `stream` instead, and only its eval split by index.
 */

export interface Example {
  /** [image_size, image_size, 3], RGB in [0, 1], row-major (HWC). */
  image: Float32Array;
  caption: string;
  /** Index into Dataset.classNames for zero-shot evaluation; -1 when the example has no class. */
  label: number;
}

export interface Split {
  readonly size: number;
  /** Deterministic: the same index always gives the same example. */
  get(index: number): Example;
}

/**
 * Training examples read in order from data too big to hold (WebDataset shards): an endless seeded sequence, shards
 * visited in a new shuffled order on every pass and samples mixed through a bounded shuffle buffer.
 */
export interface ExampleStream {
  /** The next `count` examples. Unusable samples (no caption, undecodable image) are skipped and counted. */
  next(count: number): Promise<Example[]>;
  /** Captions of the first `limit` usable samples in shard order, for a tokenizer vocabulary; no image is decoded. */
  captions(limit: number): Promise<string[]>;
  /** Samples skipped so far: the eval split's at load time plus the stream's since. */
  readonly skippedSamples: number;
  /** Closes the shard being read. */
  close(): Promise<void>;
}

export interface Dataset {
  readonly name: string;
  readonly imageSize: number;
  /** With `stream` set: train.size is the length of an epoch (for train.epochs) and train.get throws. */
  readonly train: Split;
  readonly eval: Split;
  /** Class names used to build zero-shot classifiers (e.g. 'red circle', 'T-shirt/top'). */
  readonly classNames: string[];
  /** Prompt templates with '{}' for the class name, e.g. 'a photo of a {}.'. */
  readonly templates: string[];
  /** Set by streaming sources: the trainer takes its batches from here rather than from train.get. */
  readonly stream?: ExampleStream;
}
