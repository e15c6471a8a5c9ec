/**
 * AdamW over the flat parameter, gradient and moment buffers in one dispatch, as models/optimizer.ts computes it
 * (V_FLOOR added to the second moment, decay only on the parameters laid out first), then the logit-scale clamp to
 * [0, LOGIT_SCALE_MAX] on its one element, whose new value also goes to out[1] for the trainer. A range can be
 * skipped: parameters that got no gradient this step, which the other engines' AdamW leaves untouched.
 */
import { WG_LINEAR } from '../gpu.js';
import { f32, packUniform } from '../uniforms.js';

export interface AdamWArgs {
  size: number;
  /** Elements [0, decayEnd) get weight decay. */
  decayEnd: number;
  logScaleOff: number;
  /** Elements [skipStart, skipEnd) are left as they are (parameters without a gradient on this step). */
  skipStart: number;
  skipEnd: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Bias corrections 1 / (1 - beta^t). */
  c1: number;
  c2: number;
  vFloor: number;
  logScaleMax: number;
}

export const adamwUniform = (a: AdamWArgs) =>
  packUniform([a.size, a.decayEnd, a.logScaleOff, a.skipStart, a.skipEnd, f32(a.lr), f32(a.beta1), f32(a.beta2), f32(a.eps), f32(a.weightDecay), f32(a.c1), f32(a.c2), f32(a.vFloor), f32(a.logScaleMax)]);
export const ADAMW_THREADS = 256;

/** params (0, in place), grads (1), m (2), v (3), out (4). */
export const ADAMW_WGSL = /* wgsl */ `
struct Params {
  n: u32, decayEnd: u32, lsOff: u32, skipStart: u32, skipEnd: u32,
  lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, c1: f32, c2: f32, vFloor: f32, lsMax: f32,
}
@group(0) @binding(0) var<storage, read_write> prm: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
${WG_LINEAR}
@compute @workgroup_size(${ADAMW_THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = wgLinear(wid, nwg) * ${ADAMW_THREADS}u + lid;
  if (i >= p.n || (i >= p.skipStart && i < p.skipEnd)) { return; }
  let g = grads[i];
  let mi = p.b1 * m[i] + (1.0 - p.b1) * g;
  let vi = p.b2 * v[i] + (1.0 - p.b2) * g * g + p.vFloor;
  m[i] = mi;
  v[i] = vi;
  let w = prm[i];
  let wd = select(0.0, p.wd, i < p.decayEnd);
  var next = w - p.lr * ((mi * p.c1) / (sqrt(vi * p.c2) + p.eps) + wd * w);
  if (i == p.lsOff) {
    next = clamp(next, 0.0, p.lsMax);
    out[1] = next;
  }
  prm[i] = next;
}
`;
