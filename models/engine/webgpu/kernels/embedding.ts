/**
 * The towers' inputs and their gradients that are not plain GEMMs. Image: after the patch GEMM (x = pixels W + b),
 * each kept patch's fixed sin-cos position is gathered on the GPU by its kept index, and CLS rows get the CLS
 * parameter, so the host uploads only the kept patches' pixels and indices. Text: token + position embedding rows
 * gathered by id and position. Their gradients are row scatters (a token id repeats in a batch): the host sorts the
 * rows by target once per batch (segments()), and one workgroup per distinct target sums its rows, without atomics.
 */
import { WG_LINEAR } from '../gpu.js';
import { packUniform } from '../uniforms.js';

export interface PatchPositionsArgs {
  rows: number;
  width: number;
  /** Tokens per sample (kept patches + CLS). */
  tokens: number;
  clsOff: number;
}
export const patchPositionsUniform = (a: PatchPositionsArgs) => packUniform([a.rows, a.width, a.tokens, a.clsOff]);

/** x (0, in place), params (1), position table (2), keep (3). */
export const PATCH_POSITIONS_WGSL = /* wgsl */ `
struct Params { rows: u32, D: u32, T: u32, clsOff: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> prm: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> keep: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;
${WG_LINEAR}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = wgLinear(wid, nwg) * 256u + lid;
  if (idx >= p.rows * p.D) { return; }
  let r = idx / p.D;
  let c = idx % p.D;
  let t = r % p.T;
  let b = r / p.T;
  if (t == 0u) {
    x[idx] += prm[p.clsOff + c];
  } else {
    x[idx] += table[keep[b * (p.T - 1u) + t - 1u] * p.D + c];
  }
}
`;

export interface TokenEmbeddingArgs {
  rows: number;
  width: number;
  tokensOff: number;
  positionsOff: number;
}
export const tokenEmbeddingUniform = (a: TokenEmbeddingArgs) => packUniform([a.rows, a.width, a.tokensOff, a.positionsOff]);

/** params (0), ids (1), positions (2) -> x (3). */
export const TOKEN_EMBEDDING_WGSL = /* wgsl */ `
struct Params { rows: u32, D: u32, tokOff: u32, posOff: u32 }
@group(0) @binding(0) var<storage, read> prm: array<f32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${WG_LINEAR}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = wgLinear(wid, nwg) * 256u + lid;
  if (idx >= p.rows * p.D) { return; }
  let r = idx / p.D;
  let c = idx % p.D;
  x[idx] = prm[p.tokOff + ids[r] * p.D + c] + prm[p.posOff + pos[r] * p.D + c];
}
`;

/** Words of a segments() buffer for `rows` rows: count, starts [rows + 1], targets [rows], order [rows]. */
export const segmentWords = (rows: number) => 1 + (rows + 1) + 2 * rows;

/**
 * The rows grouped by key: out = [count, start[0..count], target[0..count), order[rows]] (each group g is rows
 * order[start[g] .. start[g+1]), all with key target[g]); the layout has room for `rows` groups.
 */
export function segments(keys: Int32Array, out: Uint32Array): void {
  const n = keys.length;
  if (out.length !== segmentWords(n)) throw new Error(`segments: buffer of ${out.length} words for ${n} rows`);
  // One numeric sort of key x n + row (exact in a double): rows grouped by key, in row order within a group.
  const sorted = new Float64Array(n);
  for (let i = 0; i < n; i++) sorted[i] = keys[i] * n + i;
  sorted.sort();
  const startAt = 1;
  const targetAt = 1 + (n + 1);
  const orderAt = targetAt + n;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const row = sorted[i] % n;
    const key = (sorted[i] - row) / n;
    if (i === 0 || key !== out[targetAt + count - 1]) {
      out[startAt + count] = i;
      out[targetAt + count] = key;
      count++;
    }
    out[orderAt + i] = row;
  }
  out[startAt + count] = n;
  out[0] = count;
}

export interface ScatterRowsArgs {
  rows: number;
  width: number;
  outOff: number;
}
export const scatterRowsUniform = (a: ScatterRowsArgs) => packUniform([a.rows, a.width, a.outOff]);
/** Workgroups: one per possible group. */
export const scatterRowsGroups = (a: ScatterRowsArgs) => a.rows;

/** dx (0), segments (1) -> rows of the flat gradient buffer (2); rows no group names are left as they are. */
export const SCATTER_ROWS_WGSL = /* wgsl */ `
struct Params { N: u32, D: u32, outOff: u32 }
@group(0) @binding(0) var<storage, read> dx: array<f32>;
@group(0) @binding(1) var<storage, read> seg: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WG_LINEAR}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wgLinear(wid, nwg);
  if (g >= seg[0]) { return; }
  let start = seg[1u + g];
  let end = seg[2u + g];
  let dstRow = seg[1u + (p.N + 1u) + g];
  let orderAt = 1u + (p.N + 1u) + p.N;
  for (var c = lid; c < p.D; c += 64u) {
    var s = 0.0;
    for (var i = start; i < end; i++) { s += dx[seg[orderAt + i] * p.D + c]; }
    out[p.outOff + dstRow * p.D + c] = s;
  }
}
`;
