/**
 * 'shapes': synthetic image-caption pairs generated in code, any size, nothing to download.
 *
 * One example = one coloured shape (circle, square, triangle, cross, ring) of one size (small, large) at one of nine
 * positions, on a dark noisy background. Example i of a split depends only on (seed, split, i), so a split of 100k
 * examples costs nothing until get(i) draws it. Train and eval draw from different random streams.
 *
 * Zero-shot classes are '<colour> <shape>' (7 x 5 = 35 classes, chance 1/35); size and position only appear in the
 * captions, as the extra detail real captions carry. Shapes span at least 40% of the image side (small: radius 0.22 x side, +-10%) so that they
 * stay recognisable at 16 x 16 pixels.
 */
import type { Dataset, Example, Split } from './dataset.js';
import { deriveSeed, makeRng } from '../random.js';
import { checkImageSize, checkIndex, checkSplitSizes } from './checks.js';
import { cachedExamples } from './example-cache.js';

export const SHAPES = ['circle', 'square', 'triangle', 'cross', 'ring'] as const;
export type ShapeName = (typeof SHAPES)[number];

/** Base RGB of each colour; each example jitters it by up to +-COLOUR_JITTER per channel. */
export const COLOURS: Record<string, [number, number, number]> = {
  red: [0.9, 0.1, 0.1],
  green: [0.1, 0.8, 0.2],
  blue: [0.15, 0.3, 0.95],
  yellow: [0.95, 0.9, 0.1],
  purple: [0.6, 0.15, 0.8],
  orange: [1.0, 0.55, 0.05],
  white: [0.95, 0.95, 0.95],
};
export const COLOUR_NAMES = Object.keys(COLOURS);
const COLOUR_JITTER = 0.06;

export const SIZES = ['small', 'large'] as const;
/** Radius as a share of the image side. */
const RADIUS: Record<(typeof SIZES)[number], number> = { small: 0.22, large: 0.32 };

/** Nine positions: [name, dx, dy] with dx, dy in {-1, 0, 1} (x to the right, y down). */
export const POSITIONS: [string, number, number][] = [
  ['top left', -1, -1],
  ['top', 0, -1],
  ['top right', 1, -1],
  ['left', -1, 0],
  ['center', 0, 0],
  ['right', 1, 0],
  ['bottom left', -1, 1],
  ['bottom', 0, 1],
  ['bottom right', 1, 1],
];

export const SHAPES_TEMPLATES = ['a photo of a {}.', 'a {}.', 'a picture of the {}.', 'an image showing a {}.', 'a {} shape.'];

/** classNames[c] = `${colour} ${shape}` with c = colourIndex * SHAPES.length + shapeIndex. */
export const SHAPES_CLASS_NAMES: string[] = COLOUR_NAMES.flatMap((c) => SHAPES.map((s) => `${c} ${s}`));

/** What a caption and a drawing need of any figure: its name, colour, size and position (glyphs.ts reuses them). */
export interface FigureParams {
  shape: string;
  colour: string;
  size: (typeof SIZES)[number];
  /** Index into POSITIONS. */
  position: number;
}

export interface ShapeParams extends FigureParams {
  shape: ShapeName;
}

/** Is (u, v), in units of the radius around the shape's centre (v down), inside the shape? (glyphs.ts reuses them.) */
export function insideShape(shape: ShapeName, u: number, v: number): boolean {
  const au = Math.abs(u);
  const av = Math.abs(v);
  switch (shape) {
    case 'circle':
      return u * u + v * v <= 1;
    case 'square':
      return au <= 0.82 && av <= 0.82;
    case 'triangle':
      // apex up at v = -0.9, base at v = 0.8, half-width 1 at the base
      return v >= -0.9 && v <= 0.8 && au <= (v + 0.9) / 1.7;
    case 'cross':
      return (au <= 0.3 && av <= 1) || (av <= 0.3 && au <= 1);
    case 'ring': {
      const r2 = u * u + v * v;
      return r2 <= 1 && r2 >= 0.5 * 0.5;
    }
  }
}

export function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** Phrases for a position; the first is the plain one. */
function positionPhrases(pos: string): string[] {
  if (pos === 'center') return ['in the center', 'in the middle'];
  if (pos.includes(' ')) return [`at the ${pos}`, `in the ${pos} corner`];
  return [`on the ${pos}`, `at the ${pos}`];
}

/** One caption, worded by `pick` (a number in [0, 1)). Always holds the colour and the shape word. */
export function shapesCaption(p: FigureParams, pick: number, pick2: number): string {
  const { shape, colour, size } = p;
  const pos = POSITIONS[p.position][0];
  const phrases = positionPhrases(pos);
  const where = phrases[Math.floor(pick2 * phrases.length)];
  const templates: (() => string)[] = [
    () => `${article(size)} ${size} ${colour} ${shape} ${where}`,
    () => `a picture of ${article(size)} ${size} ${colour} ${shape}`,
    () => `${colour} ${shape}, ${size}, ${pos}`,
    () => `a photo of ${article(colour)} ${colour} ${shape} ${where}`,
    () => `there is ${article(size)} ${size} ${colour} ${shape} ${where}`,
    () => `${article(size)} ${size} ${shape} in ${colour} ${where}`,
    () => `${article(colour)} ${colour} ${shape} on a dark background`,
    () => `${pos}: ${article(size)} ${size} ${colour} ${shape}`,
    () => `${article(colour)} ${colour} ${shape}`,
  ];
  return templates[Math.floor(pick * templates.length)]();
}

/**
 * Draws one example into a new [S, S, 3] Float32Array. 2 x 2 samples per pixel give the shape soft edges, which
 * keeps small shapes readable at S = 16.
 */
export function drawShape(p: ShapeParams, imageSize: number, rng: () => number): Float32Array {
  return drawFigure((u, v) => insideShape(p.shape, u, v), p, imageSize, rng);
}

/**
 * Draws any figure given by its inside test, (u, v) in units of the radius around its centre (v down), with the
 * colour, size, position and background noise of `p`.
 */
export function drawFigure(
  isInside: (u: number, v: number) => boolean,
  p: FigureParams,
  imageSize: number,
  rng: () => number,
  /** How much of the figure's colour covers the background where it is drawn (1: all of it). */
  opacity = 1,
): Float32Array {
  const S = imageSize;
  const img = new Float32Array(S * S * 3);
  const bg = rng() * 0.25; // background grey level
  const tint = [rng() * 0.08, rng() * 0.08, rng() * 0.08];
  const base = COLOURS[p.colour];
  const col = base.map((c) => Math.min(1, Math.max(0, c + (rng() * 2 - 1) * COLOUR_JITTER)));
  const r = RADIUS[p.size] * (0.9 + 0.2 * rng()); // share of S
  const [, dx, dy] = POSITIONS[p.position];
  const reach = 0.5 - r * 1.02; // keeps the shape inside the image
  const cx = (0.5 + dx * reach * 0.85 + (rng() * 2 - 1) * 0.03) * S;
  const cy = (0.5 + dy * reach * 0.85 + (rng() * 2 - 1) * 0.03) * S;
  const rad = r * S;
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      let cover = 0;
      for (let sy = 0; sy < 2; sy++) {
        for (let sx = 0; sx < 2; sx++) {
          const u = (x + 0.25 + 0.5 * sx - cx) / rad;
          const v = (y + 0.25 + 0.5 * sy - cy) / rad;
          if (isInside(u, v)) cover += 0.25;
        }
      }
      const o = (y * S + x) * 3;
      for (let c = 0; c < 3; c++) {
        const back = bg + tint[c] + (rng() * 2 - 1) * 0.04;
        const a = cover * opacity;
        const v = a * col[c] + (1 - a) * back;
        img[o + c] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  }
  return img;
}

/** Example `index` of a split: a pure function of (seed, split, index, imageSize). */
export function shapesExample(seed: number, split: 'train' | 'eval', index: number, imageSize: number): Example {
  const rng = makeRng(deriveSeed(seed, `shapes/${split}/${index}`));
  const shapeIdx = Math.floor(rng() * SHAPES.length);
  const colourIdx = Math.floor(rng() * COLOUR_NAMES.length);
  const params: ShapeParams = {
    shape: SHAPES[shapeIdx],
    colour: COLOUR_NAMES[colourIdx],
    size: SIZES[Math.floor(rng() * SIZES.length)],
    position: Math.floor(rng() * POSITIONS.length),
  };
  const caption = shapesCaption(params, rng(), rng());
  const image = drawShape(params, imageSize, rng);
  return { image, caption, label: colourIdx * SHAPES.length + shapeIdx };
}

/**
 * A synthetic dataset whose example `index` of a split is computed on demand by `example` (shapes, glyphs), so a split
 * of any size costs nothing until it is read.
 */
export function generatedDataset(
  name: string,
  imageSize: number,
  trainSize: number,
  evalSize: number,
  classNames: string[],
  example: (split: 'train' | 'eval', index: number) => Example,
): Dataset {
  checkImageSize(imageSize);
  checkSplitSizes(trainSize, evalSize);
  const split = (which: 'train' | 'eval', size: number): Split => {
    const make = cachedExamples((index) => example(which, index), size, imageSize);
    return {
      size,
      get(index: number): Example {
        checkIndex(`${name} ${which}`, index, size);
        return make(index);
      },
    };
  };
  return { name, imageSize, train: split('train', trainSize), eval: split('eval', evalSize), classNames, templates: SHAPES_TEMPLATES };
}

export function shapesDataset(seed: number, trainSize: number, evalSize: number, imageSize: number): Dataset {
  return generatedDataset('shapes', imageSize, trainSize, evalSize, SHAPES_CLASS_NAMES, (split, index) => shapesExample(seed, split, index, imageSize));
}
