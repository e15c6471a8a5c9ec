/**
 * One WebDataset shard (a tar file, optionally gzipped) -> its samples, read as a stream with tar-stream.
 *
 * The WebDataset convention: files that belong to one sample sit next to each other in the tar and share a key, the
 * path up to the first '.' of the file name ('dir/000123.jpg' and 'dir/000123.txt' -> key 'dir/000123', extensions
 * 'jpg' and 'txt'; 'a/b.c.d' -> 'a/b' and 'c.d'). Extensions are lower-cased. Entries that are not regular files, and
 * names without an extension, are passed over, as webdataset does. Only one sample's files are held at a time.
 * Shards named *.tar.gz / *.tgz are gunzipped on the way.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
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
  constructor(readonly shard: string, reason: string, unreadable = false) {
    super(`shard ${shard} ${unreadable ? 'cannot be read' : 'is truncated or corrupt'}: ${reason}`);
    this.name = 'ShardError';
  }
}

/** Every tar writer (GNU tar, Python's tarfile as webdataset and img2dataset use it, tar-stream) ends the archive
 * with two zero blocks; without them a copy cut exactly at an entry boundary would pass for a smaller shard. */
const END_OF_ARCHIVE = 1024;

async function checkEndOfArchive(shard: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(shard, 'r');
  } catch (e) {
    throw new ShardError(shard, e instanceof Error ? e.message : String(e), true);
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) throw new ShardError(shard, 'the file is empty');
    if (size < END_OF_ARCHIVE || size % 512 !== 0) throw new ShardError(shard, `${size} bytes is not a whole number of 512-byte tar blocks`);
    const tail = Buffer.alloc(END_OF_ARCHIVE);
    await handle.read(tail, 0, END_OF_ARCHIVE, size - END_OF_ARCHIVE);
    if (tail.some((b) => b !== 0)) throw new ShardError(shard, 'no end-of-archive marker (the last 1024 bytes are not zero): the file was cut short');
  } finally {
    await handle.close();
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
  const gzipped = /\.(tgz|gz)$/i.test(shard);
  if (!gzipped) await checkEndOfArchive(shard);
  const extract = tar.extract();
  const source = createReadStream(shard);
  // The pipeline's own failure (a missing file, bad gzip) surfaces through the extract iterator below, which it
  // destroys with the same error; the promise is only kept from becoming an unhandled rejection.
  const feeding = (gzipped ? pipeline(source, createGunzip(), extract) : pipeline(source, extract)).catch(() => undefined);
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
    // A system error (ENOENT, EIO, ...) is the file's; anything else is tar-stream's or gunzip's verdict on the bytes.
    const system = e instanceof Error && typeof (e as NodeJS.ErrnoException).syscall === 'string';
    throw new ShardError(shard, e instanceof Error ? e.message : String(e), system);
  } finally {
    source.destroy();
    extract.destroy();
    await feeding;
  }
}
