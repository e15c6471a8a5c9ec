/**
 * 'folder': your own image-caption pairs. data.path is one of:
 *
 * 1. A JSONL file: one object per line, {"image": "relative/path.png", "caption": "...", "label"?: "class name"};
 *    image paths are relative to the JSONL file's folder; blank lines are skipped.
 * 2. A folder holding `captions.jsonl`: read as in 1.
 * 3. Any other folder: every .png / .jpg / .jpeg below it (subfolders included, names starting with '.' skipped,
 *    sorted by relative path). The caption of `a/b/red_circle-2.png` is the text of the sidecar `a/b/red_circle-2.txt`
 *    when there is one, else the file name without extension, '_' and '-' read as spaces and trailing digits
 *    dropped ('red circle'). When every image sits in a subfolder, the first subfolder's name is its label
 *    (the ImageFolder layout: cat/1.png, dog/2.png); otherwise the images have no labels.
 *
 * classNames are the distinct labels, sorted; without labels classNames is [] and zero-shot evaluation is skipped.
 * Splits are a seeded permutation of the examples (eval first, then train, as for every finite source). Only the
 * selected images are decoded, all at load time, so a corrupt file stops the run before training starts.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import type { Dataset, Example, Split } from './dataset.js';
import { ConfigError } from '../events.js';
import { checkImageSize, checkIndex, checkSplitSizes, splitIndices } from './checks.js';
import { ImageDecodeError, bytesToFloat, decodeImageFile, mapLimit } from './image-decode.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

export interface FolderEntry {
  /** Absolute image path. */
  file: string;
  caption: string;
  label: string | null;
}

/** Entries of a JSONL file; errors name file:line. */
export function readJsonl(file: string): FolderEntry[] {
  const dir = dirname(file);
  const entries: FolderEntry[] = [];
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new ConfigError('data.path', `${where}: invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new ConfigError('data.path', `${where}: expected an object {"image", "caption", "label"?}, got ${line.slice(0, 80)}`);
    }
    const { image, caption, label } = obj as Record<string, unknown>;
    if (typeof image !== 'string' || image === '') throw new ConfigError('data.path', `${where}: "image" must be a non-empty string, got ${JSON.stringify(image)}`);
    if (typeof caption !== 'string') throw new ConfigError('data.path', `${where}: "caption" must be a string, got ${JSON.stringify(caption)}`);
    if (label !== undefined && label !== null && typeof label !== 'string') {
      throw new ConfigError('data.path', `${where}: "label" must be a string when given, got ${JSON.stringify(label)}`);
    }
    entries.push({ file: resolve(dir, image), caption, label: label ?? null });
  });
  return entries;
}

function listImages(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.')) continue;
      const full = join(dir, name);
      const st = statSync(full);
      if (st.isDirectory()) walk(full);
      else if (IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) out.push(full);
    }
  };
  walk(root);
  return out.sort((a, b) => (relative(root, a) < relative(root, b) ? -1 : 1));
}

/** 'red_circle-2' -> 'red circle'. */
export function captionFromFileName(file: string): string {
  const stem = basename(file, extname(file));
  return stem.replace(/[_-]+/g, ' ').replace(/[\s\d]+$/, '').trim() || stem;
}

/** Entries of a folder without captions.jsonl (rule 3 above). */
export function readImageFolder(root: string): FolderEntry[] {
  const files = listImages(root);
  const inSubfolder = files.length > 0 && files.every((f) => relative(root, f).includes(sep));
  return files.map((file) => {
    const sidecar = join(dirname(file), `${basename(file, extname(file))}.txt`);
    const caption = existsSync(sidecar) ? readFileSync(sidecar, 'utf8').trim() : captionFromFileName(file);
    const label = inSubfolder ? relative(root, file).split(sep)[0] : null;
    return { file, caption, label };
  });
}

export function readFolderEntries(path: string): FolderEntry[] {
  if (!existsSync(path)) throw new ConfigError('data.path', `no such file or folder: ${path}`);
  if (statSync(path).isDirectory()) {
    const jsonl = join(path, 'captions.jsonl');
    const entries = existsSync(jsonl) ? readJsonl(jsonl) : readImageFolder(path);
    if (entries.length === 0) {
      throw new ConfigError('data.path', `no images in ${path} (expected .png/.jpg/.jpeg files or a captions.jsonl)`);
    }
    return entries;
  }
  const entries = readJsonl(path);
  if (entries.length === 0) throw new ConfigError('data.path', `no examples in ${path} (one JSON object per line expected)`);
  return entries;
}

export async function folderDataset(
  seed: number,
  trainSize: number,
  evalSize: number,
  imageSize: number,
  path: string | null,
): Promise<Dataset> {
  checkImageSize(imageSize);
  checkSplitSizes(trainSize, evalSize);
  if (path === null || path === '') {
    throw new ConfigError('data.path', 'dataset "folder" needs data.path: a folder of images or a JSONL file');
  }
  const entries = readFolderEntries(path);
  const classNames = [...new Set(entries.map((e) => e.label).filter((l): l is string => l !== null))].sort();
  const classIndex = new Map(classNames.map((c, i) => [c, i]));
  const split = splitIndices(entries.length, trainSize, evalSize, seed, 'folder', `folder ${path}`);
  const make = async (name: string, indices: Int32Array): Promise<Split> => {
    const chosen = Array.from(indices, (i) => entries[i]);
    const images = await mapLimit(chosen, 16, async (e) => {
      try {
        return await decodeImageFile(e.file, imageSize);
      } catch (err) {
        if (err instanceof ImageDecodeError) throw new ConfigError('data.path', err.message);
        throw err;
      }
    });
    return {
      size: chosen.length,
      get(index: number): Example {
        checkIndex(`folder ${name}`, index, chosen.length);
        const e = chosen[index];
        return { image: bytesToFloat(images[index]), caption: e.caption, label: e.label === null ? -1 : classIndex.get(e.label)! };
      },
    };
  };
  return {
    name: 'folder',
    imageSize,
    train: await make('train', split.train),
    eval: await make('eval', split.eval),
    classNames,
    templates: classNames.length > 0 ? ['a photo of a {}.', 'a {}.', 'a picture of the {}.', 'an image showing a {}.'] : [],
  };
}
