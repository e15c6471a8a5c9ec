/**
 * One WebDataset shard (a tar file, optionally gzipped) -> its samples, read as a stream with tar-stream.
 *
 * The WebDataset convention: files that belong to one sample sit next to each other in the tar and share a key, the
 * path up to the first '.' of the file name ('dir/000123.jpg' and 'dir/000123.txt' -> key 'dir/000123', extensions
 * 'jpg' and 'txt'; 'a/b.c.d' -> 'a/b' and 'c.d'). Extensions are lower-cased. Entries that are not regular files, and
 * names without an extension, are passed over, as webdataset does. Only one sample's files are held at a time.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';

export interface RawSample {
  /** The shard it came from (absolute path), for messages. */
  shard: string;
  key: string;
  /** Extension (lower case) -> bytes. */
  files: Map<string, Buffer>;
}

/** The shard cannot be read to its end: truncated, not a tar, or unreadable. The job stops here. */
export class ShardError extends Error {
  constructor(readonly shard: string, reason: string) {
    super(`shard ${shard} is truncated or corrupt: ${reason}`);
    this.name = 'ShardError';
  }
}

/** 'dir/000123.seg.jpg' -> ['dir/000123', 'seg.jpg']; null when the file name has no extension. */
export function splitKey(name: string): [string, string] | null {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === name.length - 1) return null;
  return [name.slice(0, dot), name.slice(dot + 1).toLowerCase()];
}

/**
 * The samples of `shard` in file order. Breaking out of the loop closes the file. A read error, a corrupt header or
 * an archive cut short throws a ShardError naming the shard; so does a sample key that appears twice in a row with
 * the same extension (webdataset treats that as a broken shard too).
 */
export async function* readShard(shard: string): AsyncGenerator<RawSample> {
  const extract = tar.extract();
  const source = createReadStream(shard);
  // The pipeline's own failure (a missing file, bad gzip) surfaces through the extract iterator below, which it
  // destroys with the same error; the promise is only kept from becoming an unhandled rejection.
  const feeding = (/\.(tgz|gz)$/i.test(shard) ? pipeline(source, createGunzip(), extract) : pipeline(source, extract)).catch(() => undefined);
  let current: RawSample | null = null;
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const type = entry.header.type ?? 'file';
      if (type !== 'file' && type !== 'contiguous-file') continue;
      const split = splitKey(entry.header.name);
      if (split === null) continue;
      const [key, ext] = split;
      if (current !== null && current.key !== key) {
        yield current;
        current = null;
      }
      current ??= { shard, key, files: new Map() };
      if (current.files.has(ext)) throw new ShardError(shard, `file ${key}.${ext} appears twice in one sample`);
      current.files.set(ext, Buffer.concat(chunks));
    }
    if (current !== null) yield current;
  } catch (e) {
    if (e instanceof ShardError) throw e;
    throw new ShardError(shard, e instanceof Error ? e.message : String(e));
  } finally {
    source.destroy();
    extract.destroy();
    await feeding;
  }
}
