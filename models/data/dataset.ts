/** The one dataset interface every source (synthetic shapes, emoji, Fashion-MNIST, a user's folder) implements. */

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

export interface Dataset {
  readonly name: string;
  readonly imageSize: number;
  readonly train: Split;
  readonly eval: Split;
  /** Class names used to build zero-shot classifiers (e.g. 'red circle', 'T-shirt/top'). */
  readonly classNames: string[];
  /** Prompt templates with '{}' for the class name, e.g. 'a photo of a {}.'. */
  readonly templates: string[];
}
