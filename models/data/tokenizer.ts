/** Tokenizers turn captions into fixed-length id sequences for the text encoder. Implementations live beside this file. */
import type { TokenizerName } from '../config.js';

export interface Tokenizer {
  readonly name: TokenizerName;
  readonly vocabSize: number;
  /** Always at position 0; the text encoder pools there. */
  readonly startId: number;
  readonly endId: number;
  readonly padId: number;
  /** [contextLength] ids: start, caption tokens, end, then padId; a long caption is cut so that the end token still fits. */
  encode(text: string, contextLength: number): Int32Array;
}
