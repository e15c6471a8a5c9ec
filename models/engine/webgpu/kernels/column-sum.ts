/**
 * Column sums of a [rows, D] matrix (bias gradients; with a row step, the CLS rows only), Z matrices at once, into
 * the flat gradient buffer. 64 columns x 4 row lanes per workgroup.
 */
import { packUniform } from '../uniforms.js';

export interface ColumnSumArgs {
  rows: number;
  D: number;
  /** Rows rowStart, rowStart + rowStep, ... < rows. */
  rowStart?: number;
  rowStep?: number;
  Z?: number;
  /** Element stride between the Z input matrices and between the Z output rows. */
  xZ?: number;
  outOff: number;
  outZ?: number;
}

export const columnSumUniform = (a: ColumnSumArgs) =>
  packUniform([a.rows, a.D, a.rowStart ?? 0, a.rowStep ?? 1, a.xZ ?? 0, a.outOff, a.outZ ?? 0]);
export const columnSumGrid = (a: ColumnSumArgs): [number, number, number] => [Math.ceil(a.D / 64), a.Z ?? 1, 1];

/** x (0) -> out (1). */
export const COLUMN_SUM_WGSL = /* wgsl */ `
struct Params { rows: u32, D: u32, rowStart: u32, rowStep: u32, xZ: u32, outOff: u32, outZ: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(64, 4)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wid.x * 64u + lid.x;
  let z = wid.y;
  var s = 0.0;
  if (c < p.D) {
    for (var r = p.rowStart + lid.y * p.rowStep; r < p.rows; r += 4u * p.rowStep) { s += x[z * p.xZ + r * p.D + c]; }
  }
  part[lid.y * 64u + lid.x] = s;
  workgroupBarrier();
  if (lid.y == 0u && c < p.D) {
    out[p.outOff + z * p.outZ + c] = part[lid.x] + part[64u + lid.x] + part[128u + lid.x] + part[192u + lid.x];
  }
}
`;
