/**
 * LayerNorm over the last axis (eps LN_EPS): the forward pass per row (one workgroup a row; it keeps each row's mean
 * and 1/std for the backward pass), the input gradient per row with an optional residual gradient added (the
 * pre-LN block's skip path), and the gamma/beta gradients as column sums over row chunks (summed by
 * kernels/partials.ts). x-hat is recomputed from x and the saved statistics instead of being stored.
 */
import { WG_LINEAR } from '../gpu.js';
import { f32, packUniform } from '../uniforms.js';
import { reduceArrays, ROW_REDUCE_WGSL } from './reduce.js';

export interface LayerNormArgs {
  rows: number;
  D: number;
  gammaOff: number;
  betaOff: number;
  eps: number;
}

export const layerNormUniform = (a: LayerNormArgs) => packUniform([a.rows, a.D, a.gammaOff, a.betaOff, f32(a.eps)]);

/** x (0), params (1) -> y (2), stats [rows, 2] = mean, 1/std (3). */
export const LAYERNORM_FORWARD_WGSL = /* wgsl */ `
struct Params { rows: u32, D: u32, gOff: u32, bOff: u32, eps: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> prm: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${ROW_REDUCE_WGSL}
${reduceArrays(2)}
${WG_LINEAR}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wgLinear(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.D;
  let n = f32(p.D);
  var s = 0.0;
  for (var c = lid; c < p.D; c += 64u) { s += x[base + c]; }
  let mean = rowSum2(&red0, vec2f(s, 0.0), lid).x / n;
  var q = 0.0;
  for (var c = lid; c < p.D; c += 64u) { let d = x[base + c] - mean; q += d * d; }
  let rstd = inverseSqrt(rowSum2(&red1, vec2f(q, 0.0), lid).x / n + p.eps);
  for (var c = lid; c < p.D; c += 64u) {
    y[base + c] = (x[base + c] - mean) * rstd * prm[p.gOff + c] + prm[p.bOff + c];
  }
  if (lid == 0u) { stats[2u * row] = mean; stats[2u * row + 1u] = rstd; }
}
`;

export interface LayerNormBackwardArgs {
  rows: number;
  D: number;
  gammaOff: number;
  /** Add the residual gradient (binding 4) to dx. */
  residual: boolean;
}

export const layerNormBackwardUniform = (a: LayerNormBackwardArgs) => packUniform([a.rows, a.D, a.gammaOff, a.residual ? 1 : 0]);

/** dy (0), x (1), stats (2), params (3), residual gradient (4) -> dx (5). */
export const LAYERNORM_BACKWARD_WGSL = /* wgsl */ `
struct Params { rows: u32, D: u32, gOff: u32, residual: u32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> prm: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
${ROW_REDUCE_WGSL}
${reduceArrays(1)}
${WG_LINEAR}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wgLinear(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.D;
  let mean = stats[2u * row];
  let rstd = stats[2u * row + 1u];
  var s = vec2f(0.0);
  for (var c = lid; c < p.D; c += 64u) {
    let g = dy[base + c] * prm[p.gOff + c];
    let xh = (x[base + c] - mean) * rstd;
    s += vec2f(g, g * xh);
  }
  let m = rowSum2(&red0, s, lid) / f32(p.D);
  for (var c = lid; c < p.D; c += 64u) {
    let g = dy[base + c] * prm[p.gOff + c];
    let xh = (x[base + c] - mean) * rstd;
    var v = rstd * (g - m.x - xh * m.y);
    if (p.residual != 0u) { v += res[base + c]; }
    dx[base + c] = v;
  }
}
`;

export interface LayerNormParamGradArgs {
  rows: number;
  D: number;
  /** Rows per workgroup row: the rows are split into ceil(rows / rowChunk) chunks, one partial each. */
  rowChunk: number;
}

export const layerNormParamGradUniform = (a: LayerNormParamGradArgs) => packUniform([a.rows, a.D, a.rowChunk]);
export const layerNormParamGradChunks = (a: LayerNormParamGradArgs) => Math.ceil(a.rows / a.rowChunk);
export const layerNormParamGradGrid = (a: LayerNormParamGradArgs): [number, number, number] => [Math.ceil(a.D / 64), layerNormParamGradChunks(a), 1];

/**
 * dy (0), x (1), stats (2) -> partial gamma and beta gradients per row chunk, [chunks][2][D] (3), which
 * kernels/partials.ts sums into the flat gradient buffer.
 */
export const LAYERNORM_PARAM_GRAD_WGSL = /* wgsl */ `
struct Params { rows: u32, D: u32, chunk: u32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
var<workgroup> acc: array<vec2f, 256>;
@compute @workgroup_size(64, 4)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wid.x * 64u + lid.x;
  let end = min(p.rows, (wid.y + 1u) * p.chunk);
  var s = vec2f(0.0);
  if (c < p.D) {
    for (var r = wid.y * p.chunk + lid.y; r < end; r += 4u) {
      let g = dy[r * p.D + c];
      s += vec2f(g * (x[r * p.D + c] - stats[2u * r]) * stats[2u * r + 1u], g);
    }
  }
  acc[lid.y * 64u + lid.x] = s;
  workgroupBarrier();
  if (lid.y == 0u && c < p.D) {
    let t = acc[lid.x] + acc[64u + lid.x] + acc[128u + lid.x] + acc[192u + lid.x];
    part[wid.y * 2u * p.D + c] = t.x;
    part[wid.y * 2u * p.D + p.D + c] = t.y;
  }
}
`;
