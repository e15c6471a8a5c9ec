/**
 * Sums partial results over their chunks: partials [Z][S][M + 1][N] (a split GEMM's chunks, or a column reduction's
 * row chunks) -> rows 0..M-1 into one place of the flat gradient buffer (a weight's gradient; gamma's), row M into
 * another (the bias's; beta's), for each of the Z batches.
 */
import { WG_LINEAR } from '../gpu.js';
import { packUniform } from '../uniforms.js';

export interface SumPartialsArgs {
  S: number;
  M: number;
  N: number;
  Z?: number;
  cOff: number;
  cZ?: number;
  /** Where row M goes; null: nowhere. */
  biasOff: number | null;
  biasZ?: number;
}

export const sumPartialsUniform = (a: SumPartialsArgs) =>
  packUniform([a.S, a.M, a.N, a.Z ?? 1, a.cOff, a.cZ ?? 0, a.biasOff ?? 0, a.biasZ ?? 0, a.biasOff === null ? 0 : 1]);
export const sumPartialsGroups = (a: SumPartialsArgs) => Math.ceil(((a.Z ?? 1) * (a.M + 1) * a.N) / 256);

/** partials (0) -> the flat gradient buffer (1). */
export const SUM_PARTIALS_WGSL = /* wgsl */ `
struct Params { S: u32, M: u32, N: u32, Z: u32, cOff: u32, cZ: u32, biasOff: u32, biasZ: u32, hasBias: u32 }
@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WG_LINEAR}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = wgLinear(wid, nwg) * 256u + lid;
  let per = (p.M + 1u) * p.N;
  if (idx >= p.Z * per) { return; }
  let z = idx / per;
  let e = idx % per;
  var s = 0.0;
  for (var c = 0u; c < p.S; c++) { s += part[(z * p.S + c) * per + e]; }
  if (e < p.M * p.N) {
    out[p.cOff + z * p.cZ + e] = s;
  } else if (p.hasBias != 0u) {
    out[p.biasOff + z * p.biasZ + e - p.M * p.N] = s;
  }
}
`;
