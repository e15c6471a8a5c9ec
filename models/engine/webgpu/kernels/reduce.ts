/**
 * WGSL helpers shared by the row kernels: sums and maxima over a 64-thread workgroup in workgroup memory.
 * Each call site passes its own workgroup array (declare them with reduceArrays): on llvmpipe, a second reduction
 * through the same array could overwrite the first one's total before every thread had read it, despite the
 * barrier after the read (measured: threads past the first 8 read the next reduction's partial).
 */
/** Declarations of `n` reduction arrays red0 .. red{n-1}. */
export const reduceArrays = (n: number) => Array.from({ length: n }, (_, i) => `var<workgroup> red${i}: array<vec2f, 64>;`).join('\n');

export const ROW_REDUCE_WGSL = /* wgsl */ `
// Sum of v over the workgroup's 64 threads (both components at once); every thread gets the result.
fn rowSum2(red: ptr<workgroup, array<vec2f, 64>>, v: vec2f, lid: u32) -> vec2f {
  (*red)[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { (*red)[lid] += (*red)[lid + s]; }
    workgroupBarrier();
  }
  return (*red)[0];
}
fn rowMax(red: ptr<workgroup, array<vec2f, 64>>, v: f32, lid: u32) -> f32 {
  (*red)[lid] = vec2f(v, 0.0);
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { (*red)[lid].x = max((*red)[lid].x, (*red)[lid + s].x); }
    workgroupBarrier();
  }
  return (*red)[0].x;
}
`;
