/**
 * PNG/JPEG bytes -> [size, size, 3] RGB, via @napi-rs/canvas (prebuilt Skia, no system libraries).
 *
 * Non-square images are centre-cropped to a square (CLIP's preprocessing: the short side is kept whole), then
 * resized with Skia's high-quality filter. Transparent pixels are composited on white. Decoded images are kept as
 * bytes (a quarter of the Float32 size) and turned into floats in [0, 1] on each get().
 */
import { readFile } from 'node:fs/promises';
import { createCanvas, loadImage } from '@napi-rs/canvas';

/** The bytes are not an image @napi-rs/canvas can decode; `reason` says why. */
export class ImageDecodeError extends Error {
  constructor(readonly file: string, readonly reason: string) {
    super(`cannot decode image ${file}: ${reason}`);
    this.name = 'ImageDecodeError';
  }
}

/** [size * size * 3] bytes, RGB, HWC. `file` only names the image in errors. */
export async function decodeImage(bytes: Uint8Array, size: number, file: string): Promise<Uint8Array> {
  let img: Awaited<ReturnType<typeof loadImage>>;
  try {
    img = await loadImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new ImageDecodeError(file, e instanceof Error ? e.message : String(e));
  }
  const w = img.width;
  const h = img.height;
  if (!(w > 0 && h > 0)) throw new ImageDecodeError(file, `decoded to ${w} x ${h} pixels`);
  const side = Math.min(w, h);
  const canvas = createCanvas(size, size);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, size, size);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img, (w - side) / 2, (h - side) / 2, side, side, 0, 0, size, size);
  const rgba = ctx.getImageData(0, 0, size, size).data; // [size, size, 4]
  const rgb = new Uint8Array(size * size * 3);
  for (let p = 0, q = 0; p < rgb.length; p += 3, q += 4) {
    rgb[p] = rgba[q];
    rgb[p + 1] = rgba[q + 1];
    rgb[p + 2] = rgba[q + 2];
  }
  return rgb;
}

/** Reads and decodes one file; a read failure is reported like a decode failure. */
export async function decodeImageFile(file: string, size: number): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new ImageDecodeError(file, e instanceof Error ? e.message : String(e));
  }
  return decodeImage(bytes, size, file);
}

/** Bytes -> floats in [0, 1], same layout. */
export function bytesToFloat(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 255;
  return out;
}

/** Runs fn over items with at most `limit` in flight; results keep the order of items. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Grey [h, w] bytes -> [size, size, 3] floats in [0, 1], the grey value in all 3 channels. Shrinking averages the
 * source area under each output pixel; enlarging interpolates bilinearly.
 */
export function resizeGreyToRgb(src: Uint8Array, h: number, w: number, size: number): Float32Array {
  const grey = new Float32Array(size * size);
  if (size <= h && size <= w) {
    const sy = h / size;
    const sx = w / size;
    for (let y = 0; y < size; y++) {
      const y0 = y * sy;
      const y1 = y0 + sy;
      for (let x = 0; x < size; x++) {
        const x0 = x * sx;
        const x1 = x0 + sx;
        let sum = 0;
        for (let iy = Math.floor(y0); iy < Math.min(h, Math.ceil(y1)); iy++) {
          const wy = Math.min(y1, iy + 1) - Math.max(y0, iy);
          for (let ix = Math.floor(x0); ix < Math.min(w, Math.ceil(x1)); ix++) {
            const wx = Math.min(x1, ix + 1) - Math.max(x0, ix);
            sum += wy * wx * src[iy * w + ix];
          }
        }
        grey[y * size + x] = sum / (sy * sx);
      }
    }
  } else {
    for (let y = 0; y < size; y++) {
      const fy = Math.min(h - 1, Math.max(0, ((y + 0.5) * h) / size - 0.5));
      const y0 = Math.floor(fy);
      const y1 = Math.min(h - 1, y0 + 1);
      const ty = fy - y0;
      for (let x = 0; x < size; x++) {
        const fx = Math.min(w - 1, Math.max(0, ((x + 0.5) * w) / size - 0.5));
        const x0 = Math.floor(fx);
        const x1 = Math.min(w - 1, x0 + 1);
        const tx = fx - x0;
        const top = src[y0 * w + x0] * (1 - tx) + src[y0 * w + x1] * tx;
        const bottom = src[y1 * w + x0] * (1 - tx) + src[y1 * w + x1] * tx;
        grey[y * size + x] = top * (1 - ty) + bottom * ty;
      }
    }
  }
  const out = new Float32Array(size * size * 3);
  for (let i = 0; i < grey.length; i++) {
    const v = Math.min(1, Math.max(0, grey[i] / 255));
    out[3 * i] = v;
    out[3 * i + 1] = v;
    out[3 * i + 2] = v;
  }
  return out;
}
