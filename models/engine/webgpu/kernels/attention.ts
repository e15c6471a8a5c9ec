/**
 * Multi-head attention on token rows [B*T, D] (head h in columns h*dh .. h*dh+dh), q, k and v stacked in one buffer
 * [3, B*T, D]. The forward pass takes one workgroup per (sample, head, query): the query's T scores live in workgroup
 * memory, softmax there, then the weighted sum of v; it keeps the row's log-sum-exp so the backward pass can
 * recompute the probabilities instead of storing them per layer. The backward pass is two dispatches: per query row,
 * the probabilities P and score gradients dS = P (dP - rowsum(P dP)) into a scratch buffer shared by the layers, and
 * dq; then per key row, dk = scale dS^T q and dv = P^T do. keyBias [B*T] is added to every score of a key (0, or
 * PAD_BIAS on padding tokens); it is a constant.
 */
import { WG_LINEAR } from '../gpu.js';
import { f32, packUniform } from '../uniforms.js';
import { reduceArrays, ROW_REDUCE_WGSL } from './reduce.js';

/** The longest sequence the kernels hold in workgroup memory. */
export const ATTENTION_MAX_TOKENS = 1024;

export interface AttentionArgs {
  batch: number;
  tokens: number;
  heads: number;
  width: number;
}

export function attentionUniform(a: AttentionArgs): ArrayBuffer {
  if (a.tokens > ATTENTION_MAX_TOKENS) throw new Error(`attention kernels: ${a.tokens} tokens, at most ${ATTENTION_MAX_TOKENS}`);
  const dh = a.width / a.heads;
  return packUniform([a.batch, a.tokens, a.heads, dh, a.width, a.batch * a.tokens, f32(1 / Math.sqrt(dh))]);
}
/** Workgroups: one per (sample, head, row). */
export const attentionGroups = (a: AttentionArgs) => a.batch * a.heads * a.tokens;

const COMMON = /* wgsl */ `
struct Params { B: u32, T: u32, H: u32, dh: u32, D: u32, N: u32, scale: f32 }
const MAXT = ${ATTENTION_MAX_TOKENS}u;
${WG_LINEAR}
${ROW_REDUCE_WGSL}
`;

/** qkv (0), keyBias (1) -> o (2), lse (3). */
export const ATTENTION_FORWARD_WGSL = /* wgsl */ `
${COMMON}
${reduceArrays(2)}
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> keyBias: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
var<workgroup> s: array<f32, MAXT>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = wgLinear(wid, nwg);
  if (id >= p.B * p.H * p.T) { return; }
  let i = id % p.T;
  let bh = id / p.T;
  let h = bh % p.H;
  let b = bh / p.H;
  let q = (b * p.T + i) * p.D + h * p.dh;
  let kBase = p.N * p.D + b * p.T * p.D + h * p.dh;
  let vBase = 2u * p.N * p.D + b * p.T * p.D + h * p.dh;
  var mx = -3.4e38;
  for (var j = lid; j < p.T; j += 64u) {
    var d = 0.0;
    for (var c = 0u; c < p.dh; c++) { d = fma(qkv[q + c], qkv[kBase + j * p.D + c], d); }
    let v = d * p.scale + keyBias[b * p.T + j];
    s[j] = v;
    mx = max(mx, v);
  }
  mx = rowMax(&red0, mx, lid);
  var sum = 0.0;
  for (var j = lid; j < p.T; j += 64u) { let e = exp(s[j] - mx); s[j] = e; sum += e; }
  sum = rowSum2(&red1, vec2f(sum, 0.0), lid).x;
  let inv = 1.0 / sum;
  for (var c = lid; c < p.dh; c += 64u) {
    var acc = 0.0;
    for (var j = 0u; j < p.T; j++) { acc = fma(s[j], qkv[vBase + j * p.D + c], acc); }
    o[(b * p.T + i) * p.D + h * p.dh + c] = acc * inv;
  }
  if (lid == 0u) { lse[id] = mx + log(sum); }
}
`;

/** qkv (0), keyBias (1), lse (2), do (3), o (4) -> scratch [2, B*H, T, T] = P, dS (5), dq in dqkv (6). */
export const ATTENTION_BACKWARD_QUERY_WGSL = /* wgsl */ `
${COMMON}
${reduceArrays(1)}
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> keyBias: array<f32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> dO: array<f32>;
@group(0) @binding(4) var<storage, read> o: array<f32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(6) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;
var<workgroup> ds: array<f32, MAXT>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = wgLinear(wid, nwg);
  if (id >= p.B * p.H * p.T) { return; }
  let i = id % p.T;
  let bh = id / p.T;
  let h = bh % p.H;
  let b = bh / p.H;
  let row = (b * p.T + i) * p.D + h * p.dh;
  let kBase = p.N * p.D + b * p.T * p.D + h * p.dh;
  let vBase = 2u * p.N * p.D + b * p.T * p.D + h * p.dh;
  var di = 0.0;
  for (var c = lid; c < p.dh; c += 64u) { di += dO[row + c] * o[row + c]; }
  di = rowSum2(&red0, vec2f(di, 0.0), lid).x;
  let l = lse[id];
  let pRow = id * p.T;
  let dsRow = p.B * p.H * p.T * p.T + id * p.T;
  for (var j = lid; j < p.T; j += 64u) {
    var qk = 0.0;
    var dp = 0.0;
    for (var c = 0u; c < p.dh; c++) {
      qk = fma(qkv[row + c], qkv[kBase + j * p.D + c], qk);
      dp = fma(dO[row + c], qkv[vBase + j * p.D + c], dp);
    }
    let pr = exp(qk * p.scale + keyBias[b * p.T + j] - l);
    let g = pr * (dp - di);
    scratch[pRow + j] = pr;
    scratch[dsRow + j] = g;
    ds[j] = g;
  }
  workgroupBarrier();
  for (var c = lid; c < p.dh; c += 64u) {
    var acc = 0.0;
    for (var j = 0u; j < p.T; j++) { acc = fma(ds[j], qkv[kBase + j * p.D + c], acc); }
    dqkv[row + c] = acc * p.scale;
  }
}
`;

/** qkv (0), do (1), scratch (2) -> dk, dv in dqkv (3). One workgroup per (sample, head, key row). */
export const ATTENTION_BACKWARD_KEY_WGSL = /* wgsl */ `
${COMMON}
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> dO: array<f32>;
@group(0) @binding(2) var<storage, read> scratch: array<f32>;
@group(0) @binding(3) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = wgLinear(wid, nwg);
  if (id >= p.B * p.H * p.T) { return; }
  let j = id % p.T;
  let bh = id / p.T;
  let h = bh % p.H;
  let b = bh / p.H;
  let col = bh * p.T * p.T + j;
  let dsBase = p.B * p.H * p.T * p.T;
  let base = b * p.T * p.D + h * p.dh;
  for (var c = lid; c < p.dh; c += 64u) {
    var dk = 0.0;
    var dv = 0.0;
    for (var i = 0u; i < p.T; i++) {
      dk = fma(scratch[dsBase + col + i * p.T], qkv[base + i * p.D + c], dk);
      dv = fma(scratch[col + i * p.T], dO[base + i * p.D + c], dv);
    }
    dqkv[p.N * p.D + base + j * p.D + c] = dk * p.scale;
    dqkv[2u * p.N * p.D + base + j * p.D + c] = dv;
  }
}
`;
