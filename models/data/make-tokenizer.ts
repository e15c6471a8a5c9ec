/**
 * The tokenizer named by model.text.tokenizer. Evaluation encodes class-name prompts with the same instance:
 * `tokenizer.encode(template.replace('{}', className), contextLength)`, see encodePrompts.
 */
import type { TrainConfig } from '../config.js';
import type { Tokenizer } from './tokenizer.js';
import { ConfigError } from '../events.js';
import { WordTokenizer } from './word-tokenizer.js';

export async function makeTokenizer(text: TrainConfig['model']['text'], trainCaptions: string[]): Promise<Tokenizer> {
  switch (text.tokenizer) {
    case 'word':
      return WordTokenizer.fromCaptions(trainCaptions, text.vocab_size);
    case 'clip-bpe': {
      // Imported on demand: the embedded BPE vocabulary takes a moment to load.
      const { ClipBpeTokenizer } = await import('./clip-bpe-tokenizer.js');
      return ClipBpeTokenizer.create();
    }
    default:
      throw new ConfigError(
        'model.text.tokenizer',
        `unknown tokenizer "${String((text as { tokenizer: unknown }).tokenizer)}"; known: word, clip-bpe`,
      );
  }
}

/** [classNames.length][templates.length] prompts, each encoded to contextLength ids: the zero-shot classifier's text. */
export function encodePrompts(
  tokenizer: Tokenizer,
  classNames: readonly string[],
  templates: readonly string[],
  contextLength: number,
): Int32Array[][] {
  for (const t of templates) {
    if (!t.includes('{}')) throw new ConfigError('eval.templates', `template "${t}" has no '{}' for the class name`);
  }
  return classNames.map((name) => templates.map((t) => tokenizer.encode(t.split('{}').join(name), contextLength)));
}
