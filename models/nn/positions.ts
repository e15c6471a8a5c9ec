/** Fixed 2-D sin-cos position embeddings (MAE's get_2d_sincos_pos_embed): half the width encodes the row, half the
 * column; each half is [sin(p w_i), cos(p w_i)] with w_i = 1 / 10000^(i / (D/4)). */

/** [gridSize * gridSize, dim] row-major, token t = row * gridSize + col. */
export function sinCos2d(gridSize: number, dim: number): Float32Array {
  if (dim % 4 !== 0) throw new Error(`sinCos2d: width ${dim} must be a multiple of 4`);
  const quarter = dim / 4;
  const out = new Float32Array(gridSize * gridSize * dim);
  for (let r = 0; r < gridSize; r++) {
    for (let c = 0; c < gridSize; c++) {
      const base = (r * gridSize + c) * dim;
      for (let i = 0; i < quarter; i++) {
        const w = 1 / Math.pow(10000, i / quarter);
        out[base + i] = Math.sin(r * w);
        out[base + quarter + i] = Math.cos(r * w);
        out[base + 2 * quarter + i] = Math.sin(c * w);
        out[base + 3 * quarter + i] = Math.cos(c * w);
      }
    }
  }
  return out;
}
