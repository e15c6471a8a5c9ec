import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS } from '../models/config.js';
import { encodePrompts, makeTokenizer } from '../models/data/make-tokenizer.js';
import { WordTokenizer } from '../models/data/word-tokenizer.js';
import { toClipAscii } from '../models/data/clip-bpe-tokenizer.js';
import { ConfigError } from '../models/events.js';

const text = (over: Partial<typeof DEFAULTS.model.text>) => ({ ...DEFAULTS.model.text, ...over });

test('word tokenizer: vocabulary by frequency, ties alphabetical, specials first', async () => {
  const captions = ['A red circle.', 'a BLUE circle', 'a red square!', 'zebra-apple'];
  const tok = (await makeTokenizer(text({ tokenizer: 'word', vocab_size: 7 }), captions)) as WordTokenizer;
  // a:3, circle:2, red:2, then 1 each: apple, blue, square, zebra -> only 3 word slots
  assert.deepEqual(tok.words, ['<pad>', '<start>', '<end>', '<unk>', 'a', 'circle', 'red']);
  assert.equal(tok.vocabSize, 7);
  assert.equal(tok.padId, 0);
  assert.equal(tok.name, 'word');
  const again = (await makeTokenizer(text({ tokenizer: 'word', vocab_size: 7 }), [...captions].reverse())) as WordTokenizer;
  assert.deepEqual(again.words, tok.words, 'caption order does not matter');
  const big = (await makeTokenizer(text({ tokenizer: 'word', vocab_size: 1000 }), captions)) as WordTokenizer;
  assert.deepEqual(big.words.slice(4), ['a', 'circle', 'red', 'apple', 'blue', 'square', 'zebra']);
});

test('word tokenizer: start first, end, padding, unknown, truncation keeps end', () => {
  const tok = WordTokenizer.fromCaptions(['a red circle', 'a blue square'], 100);
  const ids = Array.from(tok.encode('A red triangle', 8));
  const [a, red] = [tok.words.indexOf('a'), tok.words.indexOf('red')];
  assert.deepEqual(ids, [tok.startId, a, red, tok.unknownId, tok.endId, 0, 0, 0]);
  assert.equal(ids[0], tok.startId);
  const cut = Array.from(tok.encode('a red circle a blue square a red', 5));
  assert.equal(cut.length, 5);
  assert.deepEqual(cut, [tok.startId, a, red, tok.words.indexOf('circle'), tok.endId]);
  assert.deepEqual(Array.from(tok.encode('', 4)), [tok.startId, tok.endId, 0, 0]);
  assert.equal(tok.decode(tok.encode('a red circle', 8)), 'a red circle');
  assert.throws(() => tok.encode('a', 1), ConfigError);
  assert.throws(() => WordTokenizer.fromCaptions(['a'], 4), ConfigError);
  assert.deepEqual(WordTokenizer.fromWords(tok.words).words, tok.words);
});

test('clip-bpe tokenizer: reference ids, non-ASCII cleaned', async () => {
  const tok = await makeTokenizer(text({ tokenizer: 'clip-bpe' }), []);
  assert.equal(tok.vocabSize, 49408);
  assert.deepEqual(Array.from(tok.encode('a photo of a cat', 10)), [49406, 320, 1125, 539, 320, 2368, 49407, 0, 0, 0]);
  const cut = Array.from(tok.encode('a photo of a cat', 4));
  assert.deepEqual(cut, [49406, 320, 1125, 49407]);
  assert.equal(toClipAscii('Piñata “café” — 😀!'), 'Pinata "cafe" -  !');
  const ids = Array.from(tok.encode('Piñata 😀 naïve ☕', 16));
  assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 49408), ids.join(','));
  assert.deepEqual(ids, Array.from(tok.encode('Pinata naive', 16)));
});

test('prompts are encoded with the same tokenizer; unknown tokenizer is a ConfigError', async () => {
  const tok = WordTokenizer.fromCaptions(['a photo of a red circle'], 100);
  const prompts = encodePrompts(tok, ['red circle', 'blue square'], ['a photo of a {}.', 'a {}.'], 8);
  assert.equal(prompts.length, 2);
  assert.equal(prompts[0].length, 2);
  assert.deepEqual(prompts[0][0], tok.encode('a photo of a red circle.', 8));
  assert.throws(() => encodePrompts(tok, ['x'], ['no slot'], 8), ConfigError);
  await assert.rejects(makeTokenizer(text({ tokenizer: 'sentencepiece' as never }), []), (e: unknown) => {
    return e instanceof ConfigError && e.key === 'model.text.tokenizer';
  });
});
