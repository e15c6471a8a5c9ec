/**
 * One WebDataset sample -> an image-caption pair, or the reason it cannot be one. The image is KEY.jpg, KEY.jpeg,
 * KEY.png or KEY.webp (the first present, in that order, as open_clip's "jpg;png;jpeg;webp" picks), the caption
 * KEY.txt (trimmed; empty counts as missing). Other files (KEY.json, ...) are ignored; KEY.cls is read by the caller
 * where a class index is wanted.
 */
import { ConfigError } from '../events.js';
import { ImageDecodeError, decodeImage } from './image-decode.js';
import type { RawSample } from './shard-reader.js';

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp'];

export type SkipReason = 'no image' | 'no caption' | 'undecodable image';

export type DecodedSample =
  | { ok: true; pixels: Uint8Array; caption: string }
  | { ok: false; reason: SkipReason; detail: string };

/** `where` names the sample in messages: shard:key. */
export function sampleName(raw: RawSample): string {
  return `${raw.shard}:${raw.key}`;
}

/** The caption of a sample with one, else null; no image is decoded. */
export function sampleCaption(raw: RawSample): string | null {
  if (!IMAGE_EXTENSIONS.some((ext) => raw.files.has(ext))) return null;
  const caption = raw.files.get('txt')?.toString('utf8').trim() ?? '';
  return caption === '' ? null : caption;
}

export async function decodeSample(raw: RawSample, imageSize: number): Promise<DecodedSample> {
  const ext = IMAGE_EXTENSIONS.find((e) => raw.files.has(e));
  const where = sampleName(raw);
  if (ext === undefined) return { ok: false, reason: 'no image', detail: `${where} has no ${IMAGE_EXTENSIONS.join('/')} file` };
  const caption = raw.files.get('txt')?.toString('utf8').trim() ?? '';
  if (caption === '') return { ok: false, reason: 'no caption', detail: `${where} has no caption (.txt missing or empty)` };
  try {
    return { ok: true, pixels: await decodeImage(raw.files.get(ext)!, imageSize, `${where}.${ext}`), caption };
  } catch (e) {
    if (e instanceof ImageDecodeError) return { ok: false, reason: 'undecodable image', detail: e.message };
    throw e;
  }
}

/**
 * The class index of KEY.cls as an index into `classNames`; -1 without classNames or without a .cls file. A .cls
 * that is not an index into classNames is an error: zero-shot accuracy against the wrong names would be meaningless.
 */
export function sampleLabel(raw: RawSample, classNames: readonly string[]): number {
  const cls = raw.files.get('cls');
  if (classNames.length === 0 || cls === undefined) return -1;
  const text = cls.toString('utf8').trim();
  if (!/^\d+$/.test(text)) {
    throw new ConfigError('data.val', `${sampleName(raw)}.cls holds "${text.slice(0, 40)}", not a class index (a non-negative integer)`);
  }
  const label = Number(text);
  if (label >= classNames.length) {
    throw new ConfigError(
      'data.classnames',
      `${sampleName(raw)}.cls is class ${label}, but data.classnames lists ${classNames.length} names (indices 0 to ${classNames.length - 1})`,
    );
  }
  return label;
}
