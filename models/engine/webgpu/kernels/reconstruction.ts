/**
 * The MAE decoder's ends. Its input: each decoder row takes its encoder row (the CLS token or a kept patch, embedded
 * to the decoder width) or, for a removed patch, the learned mask token, plus the fixed sin-cos position of its patch
 * (zero on CLS rows). Its loss (models/nn/mae-decoder.ts maskedPatchLoss): the per-row MSE against per-patch
 * normalised pixels, averaged over the removed patches, in one workgroup; it adds weight x the loss to out[0] (the
 * contrastive loss is there already), writes the loss to out[2], and the prediction's gradient.
 */
import { WG_LINEAR } from '../gpu.js';
import { f32, packUniform } from '../uniforms.js';

export interface DecoderInputArgs {
  rows: number;
  width: number;
  /** Decoder rows per sample (patches + CLS). */
  tokens: number;
  /** The source row that means the mask token. */
  maskRow: number;
  maskOff: number;
}
export const decoderInputUniform = (a: DecoderInputArgs) => packUniform([a.rows, a.width, a.tokens, a.maskRow, a.maskOff]);

/** z (0), params (1), positions [tokens, width] (2), source rows (3) -> the decoder's input (4). */
export const DECODER_INPUT_WGSL = /* wgsl */ `
struct Params { rows: u32, D: u32, T: u32, maskRow: u32, maskOff: u32 }
@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> prm: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
${WG_LINEAR}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = wgLinear(wid, nwg) * 256u + lid;
  if (idx >= p.rows * p.D) { return; }
  let r = idx / p.D;
  let c = idx % p.D;
  let s = src[r];
  var v = prm[p.maskOff + c];
  if (s != p.maskRow) { v = z[s * p.D + c]; }
  x[idx] = v + pos[(r % p.T) * p.D + c];
}
`;

export interface PatchLossArgs {
  rows: number;
  patchValues: number;
  /** loss.reconstruction_weight */
  weight: number;
}
export const patchLossUniform = (a: PatchLossArgs) => packUniform([a.rows, a.patchValues, f32(a.weight)]);

/** pred (0), target (1), row weights (2) -> dPred (3), out[0] += weight x loss, out[2] = loss (4). */
export const PATCH_LOSS_WGSL = /* wgsl */ `
struct Params { rows: u32, PV: u32, w: f32 }
@group(0) @binding(0) var<storage, read> pred: array<f32>;
@group(0) @binding(1) var<storage, read> goal: array<f32>;
@group(0) @binding(2) var<storage, read> rowWeight: array<f32>;
@group(0) @binding(3) var<storage, read_write> dPred: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
var<workgroup> part: array<vec2f, 256>;
var<workgroup> total: vec2f;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = vec2f(0.0);
  for (var r = lid; r < p.rows; r += 256u) {
    let w = rowWeight[r];
    var e = 0.0;
    for (var c = 0u; c < p.PV; c++) { let d = pred[r * p.PV + c] - goal[r * p.PV + c]; e += d * d; }
    acc += vec2f(w, w * e);
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) { part[lid] += part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { total = part[0]; }
  workgroupBarrier();
  let removed = total.x;
  var scale = 0.0;
  if (removed > 0.0) { scale = p.w * 2.0 / (f32(p.PV) * removed); }
  for (var i = lid; i < p.rows * p.PV; i += 256u) {
    dPred[i] = scale * rowWeight[i / p.PV] * (pred[i] - goal[i]);
  }
  if (lid == 0u) {
    var loss = 0.0;
    if (removed > 0.0) { loss = total.y / (f32(p.PV) * removed); }
    out[2] = loss;
    out[0] = out[0] + p.w * loss;
  }
}
`;
