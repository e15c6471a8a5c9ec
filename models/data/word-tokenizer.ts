/**
 * Word-level tokenizer with a vocabulary built from the training captions: the cheap choice for small data.
 *
 * Words: the caption lowercased and split on every run of characters that are not letters or digits.
 * Ids: pad = 0, start = 1, end = 2, unknown = 3, then the most frequent words (ties broken alphabetically, so the
 * vocabulary is a pure function of the multiset of captions), up to vocabSize ids in all.
 */
import type { Tokenizer } from './tokenizer.js';
import { ConfigError } from '../events.js';

export const WORD_SPECIALS = ['<pad>', '<start>', '<end>', '<unk>'] as const;

/** Lowercased words of a text; the same rule builds the vocabulary and encodes. */
export function splitWords(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 0);
}

export class WordTokenizer implements Tokenizer {
  readonly name = 'word' as const;
  readonly padId = 0;
  readonly startId = 1;
  readonly endId = 2;
  readonly unknownId = 3;
  /** words[id] is the token of id (specials included). */
  readonly words: readonly string[];
  private readonly ids: Map<string, number>;

  private constructor(words: string[]) {
    this.words = words;
    this.ids = new Map(words.map((w, i) => [w, i]));
  }

  get vocabSize(): number {
    return this.words.length;
  }

  /** vocabSize counts the 4 special tokens; the vocabulary is smaller when the captions have fewer distinct words. */
  static fromCaptions(captions: Iterable<string>, vocabSize: number): WordTokenizer {
    if (!Number.isInteger(vocabSize) || vocabSize < WORD_SPECIALS.length + 1) {
      throw new ConfigError(
        'model.text.vocab_size',
        `expected an integer >= ${WORD_SPECIALS.length + 1} (4 special tokens + words), got ${vocabSize}`,
      );
    }
    const counts = new Map<string, number>();
    for (const caption of captions) {
      for (const w of splitWords(caption)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    const ranked = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, vocabSize - WORD_SPECIALS.length)
      .map(([w]) => w);
    return new WordTokenizer([...WORD_SPECIALS, ...ranked]);
  }

  /** Rebuilds a tokenizer from its `words` (e.g. saved with a checkpoint). */
  static fromWords(words: readonly string[]): WordTokenizer {
    for (let i = 0; i < WORD_SPECIALS.length; i++) {
      if (words[i] !== WORD_SPECIALS[i]) {
        throw new Error(`word tokenizer: expected "${WORD_SPECIALS[i]}" at id ${i}, got "${words[i]}"`);
      }
    }
    return new WordTokenizer([...words]);
  }

  /** Ids of the caption's words, without start/end. */
  tokenize(text: string): number[] {
    return splitWords(text).map((w) => this.ids.get(w) ?? this.unknownId);
  }

  encode(text: string, contextLength: number): Int32Array {
    return packIds(this.tokenize(text), contextLength, this);
  }

  /** Words of the ids, specials and padding dropped (for logs and tests). */
  decode(ids: ArrayLike<number>): string {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id === this.padId || id === this.startId || id === this.endId) continue;
      out.push(this.words[id] ?? WORD_SPECIALS[3]);
    }
    return out.join(' ');
  }
}

/** [contextLength]: start, ids (cut so the end token fits), end, padding. Shared with the clip-bpe tokenizer. */
export function packIds(
  ids: readonly number[],
  contextLength: number,
  tok: Pick<Tokenizer, 'startId' | 'endId' | 'padId'>,
): Int32Array {
  if (!Number.isInteger(contextLength) || contextLength < 2) {
    throw new ConfigError('model.text.context_length', `expected an integer >= 2 (start + end), got ${contextLength}`);
  }
  const out = new Int32Array(contextLength).fill(tok.padId);
  out[0] = tok.startId;
  const n = Math.min(ids.length, contextLength - 2);
  for (let i = 0; i < n; i++) out[1 + i] = ids[i];
  out[1 + n] = tok.endId;
  return out;
}
