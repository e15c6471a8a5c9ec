/**
 * Tiled GEMM, C = op(A) op(B) with an epilogue: 64x64 output tiles, 16-deep K slices in workgroup memory, 4x4
 * outputs per thread. Options (flags): A or B transposed in memory, a bias row, QuickGELU on the output, the
 * QuickGELU derivative of an auxiliary matrix multiplied in (the MLP backward), a residual matrix added, QuickGELU
 * applied to A as it is loaded (so the MLP's activation never needs its own buffer), and a batch of Z products that
 * are either independent (q, k and v from one input) or summed into one C (the input gradient of q, k and v).
 * Every operand is addressed by an element offset into its buffer, so weights are read in place in the flat
 * parameter buffer and gradients written in place in the flat gradient buffer.
 *
 * Weight gradients (K = every token row of the batch, M and N only a layer's widths) would leave most of a GPU idle
 * with one workgroup per output tile, so they run as partial products (flag partial): the K range split into kSplit
 * chunks, one workgroup per (tile, chunk), each writing its [M, N] partial plus, as row M, the column sums of its
 * B rows (the bias gradient comes free: B is the output gradient); kernels/partials.ts then sums the chunks into the
 * gradient buffer.
 */
import { packUniform, f32 } from '../uniforms.js';

export const GEMM_FLAGS = {
  transA: 1,
  transB: 2,
  bias: 4,
  gelu: 8,
  geluGrad: 16,
  residual: 32,
  geluA: 64,
  sumZ: 128,
  partial: 256,
} as const;

export interface GemmArgs {
  /** C is [M, N]; the reduction is over K (and over Z with sumZ). */
  M: number;
  N: number;
  K: number;
  Z?: number;
  aOff?: number;
  bOff?: number;
  cOff?: number;
  biasOff?: number;
  auxOff?: number;
  /** Element strides between the Z products. */
  aZ?: number;
  bZ?: number;
  cZ?: number;
  biasZ?: number;
  auxZ?: number;
  flags?: number;
  alpha?: number;
  /** With flags.partial: K is split into kSplit chunks of kChunk (a multiple of 16). */
  kSplit?: number;
  kChunk?: number;
}

export const GEMM_TILE = 64;

export function gemmUniform(a: GemmArgs): ArrayBuffer {
  return packUniform([
    a.M, a.N, a.K, a.Z ?? 1,
    a.aOff ?? 0, a.bOff ?? 0, a.cOff ?? 0, a.biasOff ?? 0,
    a.auxOff ?? 0, a.aZ ?? 0, a.bZ ?? 0, a.cZ ?? 0,
    a.biasZ ?? 0, a.auxZ ?? 0, a.flags ?? 0, f32(a.alpha ?? 1),
    a.kSplit ?? 1, a.kChunk ?? a.K,
  ]);
}

export function gemmGrid(a: GemmArgs): [number, number, number] {
  const flags = a.flags ?? 0;
  if (flags & GEMM_FLAGS.partial && flags & GEMM_FLAGS.sumZ) throw new Error('gemm: partial products of a summed batch are not supported');
  const z = flags & GEMM_FLAGS.sumZ ? 1 : (a.Z ?? 1) * (flags & GEMM_FLAGS.partial ? (a.kSplit ?? 1) : 1);
  return [Math.ceil(a.N / GEMM_TILE), Math.ceil(a.M / GEMM_TILE), z];
}

/** Chunks for a partial product over K rows: about `rows` rows each, at most 64, and at most `maxFloats` of partials. */
export function splitK(K: number, M: number, N: number, Z: number, rows: number, maxFloats: number): { kSplit: number; kChunk: number } {
  let s = Math.max(1, Math.min(64, Math.ceil(K / rows), Math.floor(maxFloats / (Z * (M + 1) * N))));
  const kChunk = Math.ceil(Math.ceil(K / s) / 16) * 16;
  s = Math.ceil(K / kChunk);
  return { kSplit: s, kChunk };
}

export const GEMM_WGSL = /* wgsl */ `
struct Params {
  M: u32, N: u32, K: u32, Z: u32,
  aOff: u32, bOff: u32, cOff: u32, biasOff: u32,
  auxOff: u32, aZ: u32, bZ: u32, cZ: u32,
  biasZ: u32, auxZ: u32, flags: u32, alpha: f32,
  kSplit: u32, kChunk: u32,
}
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const TRANS_A = ${GEMM_FLAGS.transA}u;
const TRANS_B = ${GEMM_FLAGS.transB}u;
const BIAS = ${GEMM_FLAGS.bias}u;
const GELU = ${GEMM_FLAGS.gelu}u;
const GELU_GRAD = ${GEMM_FLAGS.geluGrad}u;
const RESIDUAL = ${GEMM_FLAGS.residual}u;
const GELU_A = ${GEMM_FLAGS.geluA}u;
const SUM_Z = ${GEMM_FLAGS.sumZ}u;
const PARTIAL = ${GEMM_FLAGS.partial}u;

var<workgroup> As: array<f32, 1024>; // [16 k][64 m]
var<workgroup> Bs: array<f32, 1024>; // [16 k][64 n]

fn gelu(x: f32) -> f32 { return x / (1.0 + exp(-1.702 * x)); }

fn loadA(z: u32, m: u32, k: u32, kEnd: u32) -> f32 {
  if (m >= p.M || k >= kEnd) { return 0.0; }
  var i = p.aOff + z * p.aZ + m * p.K + k;
  if ((p.flags & TRANS_A) != 0u) { i = p.aOff + z * p.aZ + k * p.M + m; }
  let v = A[i];
  if ((p.flags & GELU_A) != 0u) { return gelu(v); }
  return v;
}

fn loadB(z: u32, k: u32, n: u32, kEnd: u32) -> f32 {
  if (n >= p.N || k >= kEnd) { return 0.0; }
  if ((p.flags & TRANS_B) != 0u) { return B[p.bOff + z * p.bZ + n * p.K + k]; }
  return B[p.bOff + z * p.bZ + k * p.N + n];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let t = lid.y * 16u + lid.x;
  let m0 = wg.y * 64u;
  let n0 = wg.x * 64u;
  let sumZ = (p.flags & SUM_Z) != 0u;
  let partial = (p.flags & PARTIAL) != 0u;
  var split = 0u;
  var zb = wg.z;
  if (partial) { split = wg.z % p.kSplit; zb = wg.z / p.kSplit; }
  let kBegin = split * p.kChunk;
  let kEnd = min(p.K, kBegin + p.kChunk);
  var zLo = zb;
  var zHi = zb + 1u;
  if (sumZ) { zLo = 0u; zHi = p.Z; }
  let transA = (p.flags & TRANS_A) != 0u;
  let transB = (p.flags & TRANS_B) != 0u;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  var colAcc = vec4f(0.0);
  for (var z = zLo; z < zHi; z++) {
    for (var k0 = kBegin; k0 < kEnd; k0 += 16u) {
      for (var r = 0u; r < 4u; r++) {
        let e = t + r * 256u;
        // Consecutive threads read consecutive addresses of whichever layout the operand has.
        var am = e / 16u;
        var ak = e % 16u;
        if (transA) { ak = e / 64u; am = e % 64u; }
        As[ak * 64u + am] = loadA(z, m0 + am, k0 + ak, kEnd);
        var bk = e / 64u;
        var bn = e % 64u;
        if (transB) { bn = e / 16u; bk = e % 16u; }
        Bs[bk * 64u + bn] = loadB(z, k0 + bk, n0 + bn, kEnd);
      }
      workgroupBarrier();
      if (partial && lid.y == 0u) {
        for (var kk = 0u; kk < 16u; kk++) {
          for (var j = 0u; j < 4u; j++) { colAcc[j] += Bs[kk * 64u + lid.x + 16u * j]; }
        }
      }
      for (var kk = 0u; kk < 16u; kk++) {
        var a: array<f32, 4>;
        var b: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
          a[i] = As[kk * 64u + lid.y + 16u * i];
          b[i] = Bs[kk * 64u + lid.x + 16u * i];
        }
        for (var i = 0u; i < 4u; i++) {
          for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]); }
        }
      }
      workgroupBarrier();
    }
  }
  var zc = zb;
  if (sumZ) { zc = 0u; }
  if (partial) {
    // [Z][kSplit][M + 1][N]: this chunk's product, then the column sums of its B rows as row M.
    let base = (zc * p.kSplit + split) * (p.M + 1u) * p.N;
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + lid.y + 16u * i;
      for (var j = 0u; j < 4u; j++) {
        let n = n0 + lid.x + 16u * j;
        if (m < p.M && n < p.N) { C[base + m * p.N + n] = acc[i * 4u + j] * p.alpha; }
      }
    }
    if (wg.y == 0u && lid.y == 0u) {
      for (var j = 0u; j < 4u; j++) {
        let n = n0 + lid.x + 16u * j;
        if (n < p.N) { C[base + p.M * p.N + n] = colAcc[j]; }
      }
    }
    return;
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + 16u * i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + 16u * j;
      if (n >= p.N) { continue; }
      var v = acc[i * 4u + j] * p.alpha;
      if ((p.flags & BIAS) != 0u) { v += bias[p.biasOff + zc * p.biasZ + n]; }
      if ((p.flags & GELU) != 0u) { v = gelu(v); }
      let ai = p.auxOff + zc * p.auxZ + m * p.N + n;
      if ((p.flags & GELU_GRAD) != 0u) {
        let u = aux[ai];
        let s = 1.0 / (1.0 + exp(-1.702 * u));
        v *= s + 1.702 * u * s * (1.0 - s);
      }
      if ((p.flags & RESIDUAL) != 0u) { v += aux[ai]; }
      C[p.cOff + zc * p.cZ + m * p.N + n] = v;
    }
  }
}
`;
