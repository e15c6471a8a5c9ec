/**
 * The towers' pooling and its gradient: the image tower's mean over all of a sample's tokens, the text tower's first
 * token. And the L2 normalisation of the projected embeddings, x / sqrt(|x|^2 + 1e-12), per row, keeping 1/norm.
 */
import { WG_LINEAR } from '../gpu.js';
import { packUniform } from '../uniforms.js';
import { reduceArrays, ROW_REDUCE_WGSL } from './reduce.js';

export type PoolMode = 'mean' | 'first';

export interface PoolArgs {
  batch: number;
  tokens: number;
  width: number;
  mode: PoolMode;
}
export const poolUniform = (a: PoolArgs) => packUniform([a.batch, a.tokens, a.width, a.mode === 'mean' ? 0 : 1]);

const COMMON = /* wgsl */ `
struct Params { B: u32, T: u32, D: u32, first: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WG_LINEAR}
`;

/** [B*T, D] (0) -> [B, D] (1). */
export const POOL_WGSL = /* wgsl */ `
${COMMON}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = wgLinear(wid, nwg) * 256u + lid;
  if (idx >= p.B * p.D) { return; }
  let b = idx / p.D;
  let c = idx % p.D;
  if (p.first != 0u) { dst[idx] = src[b * p.T * p.D + c]; return; }
  var s = 0.0;
  for (var t = 0u; t < p.T; t++) { s += src[(b * p.T + t) * p.D + c]; }
  dst[idx] = s / f32(p.T);
}
`;

/** The gradient: [B, D] (0) -> [B*T, D] (1). */
export const UNPOOL_WGSL = /* wgsl */ `
${COMMON}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = wgLinear(wid, nwg) * 256u + lid;
  if (idx >= p.B * p.T * p.D) { return; }
  let r = idx / p.D;
  let c = idx % p.D;
  let b = r / p.T;
  let t = r % p.T;
  if (p.first != 0u) {
    dst[idx] = select(0.0, src[b * p.D + c], t == 0u);
  } else {
    dst[idx] = src[b * p.D + c] / f32(p.T);
  }
}
`;

export interface L2NormArgs {
  rows: number;
  width: number;
}
export const l2NormUniform = (a: L2NormArgs) => packUniform([a.rows, a.width]);

/** z (0) -> e (1), 1/norm per row (2). */
export const L2NORM_FORWARD_WGSL = /* wgsl */ `
struct Params { rows: u32, D: u32 }
@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read_write> e: array<f32>;
@group(0) @binding(2) var<storage, read_write> rn: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${ROW_REDUCE_WGSL}
${reduceArrays(1)}
${WG_LINEAR}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wgLinear(wid, nwg);
  if (row >= p.rows) { return; }
  var s = 0.0;
  for (var c = lid; c < p.D; c += 64u) { let v = z[row * p.D + c]; s += v * v; }
  let r = inverseSqrt(rowSum2(&red0, vec2f(s, 0.0), lid).x + 1e-12);
  for (var c = lid; c < p.D; c += 64u) { e[row * p.D + c] = z[row * p.D + c] * r; }
  if (lid == 0u) { rn[row] = r; }
}
`;

/** de (0), e (1), 1/norm (2) -> dz = (de - e (e . de)) / norm (3). */
export const L2NORM_BACKWARD_WGSL = /* wgsl */ `
struct Params { rows: u32, D: u32 }
@group(0) @binding(0) var<storage, read> de: array<f32>;
@group(0) @binding(1) var<storage, read> e: array<f32>;
@group(0) @binding(2) var<storage, read> rn: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${ROW_REDUCE_WGSL}
${reduceArrays(1)}
${WG_LINEAR}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wgLinear(wid, nwg);
  if (row >= p.rows) { return; }
  var s = 0.0;
  for (var c = lid; c < p.D; c += 64u) { s += e[row * p.D + c] * de[row * p.D + c]; }
  let dot = rowSum2(&red0, vec2f(s, 0.0), lid).x;
  let r = rn[row];
  for (var c = lid; c < p.D; c += 64u) { dz[row * p.D + c] = (de[row * p.D + c] - e[row * p.D + c] * dot) * r; }
}
`;
