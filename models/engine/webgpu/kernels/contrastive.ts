/**
 * The symmetric contrastive loss and its gradient in one workgroup, from the cosine similarities S = e_img e_txt^T
 * [B, B] (a GEMM before it): logits L = exp(log scale) S, the mean of the row-wise and column-wise cross-entropy with
 * the diagonal as targets. It writes the loss to out[0], the gradient of the log scale (sum dL * L) straight into the
 * flat gradient buffer, and dS = exp(log scale) dL for the two GEMMs that carry the gradient into the embeddings.
 */
import { packUniform } from '../uniforms.js';

export interface ContrastiveArgs {
  batch: number;
  logScaleOff: number;
}
export const contrastiveUniform = (a: ContrastiveArgs) => packUniform([a.batch, a.logScaleOff]);

/** S (0), params (1), scratch [2B] (2) -> dS (3), the log scale's gradient (4), loss in out[0] (5). */
export const CONTRASTIVE_WGSL = /* wgsl */ `
struct Params { B: u32, lsOff: u32 }
@group(0) @binding(0) var<storage, read> S: array<f32>;
@group(0) @binding(1) var<storage, read> prm: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> dS: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
var<workgroup> part: array<vec2f, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let B = p.B;
  let scale = exp(prm[p.lsOff]);
  for (var i = lid; i < B; i += 256u) {
    var mr = -3.4e38;
    var mc = -3.4e38;
    for (var j = 0u; j < B; j++) { mr = max(mr, S[i * B + j]); mc = max(mc, S[j * B + i]); }
    var sr = 0.0;
    var sc = 0.0;
    for (var j = 0u; j < B; j++) { sr += exp(scale * (S[i * B + j] - mr)); sc += exp(scale * (S[j * B + i] - mc)); }
    lse[i] = scale * mr + log(sr);
    lse[B + i] = scale * mc + log(sc);
  }
  storageBarrier();
  workgroupBarrier();
  var acc = vec2f(0.0);
  let inv = 1.0 / f32(2u * B);
  for (var idx = lid; idx < B * B; idx += 256u) {
    let i = idx / B;
    let j = idx % B;
    let l = scale * S[idx];
    var g = exp(l - lse[i]) + exp(l - lse[B + j]);
    if (i == j) { g -= 2.0; acc.x += lse[i] + lse[B + j] - 2.0 * l; }
    g *= inv;
    dS[idx] = g * scale;
    acc.y += g * l;
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) { part[lid] += part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[0] = part[0].x * inv;
    grads[p.lsOff] = part[0].y;
  }
}
`;
