/**
 * Kernel parameters as uniform blocks: every field 4 bytes, u32 unless written as f32(x). One block per dispatch,
 * written once when the plan is built (the shapes are fixed by then), in 256-byte slots of one buffer
 * (minUniformBufferOffsetAlignment is at most 256).
 */
export const UNIFORM_SLOT = 256;

export interface F32 {
  f32: number;
}
export const f32 = (x: number): F32 => ({ f32: x });
export type UniformField = number | F32;

/** The block's bytes; sizes rounded up to 16 bytes as WGSL lays out a struct of 4-byte fields. */
export function packUniform(fields: UniformField[]): ArrayBuffer {
  const bytes = Math.ceil((fields.length * 4) / 16) * 16;
  if (bytes > UNIFORM_SLOT) throw new Error(`packUniform: ${fields.length} fields do not fit a ${UNIFORM_SLOT}-byte slot`);
  const out = new ArrayBuffer(bytes);
  const u = new Uint32Array(out);
  const f = new Float32Array(out);
  fields.forEach((v, i) => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`packUniform: field ${i} = ${v} is not a u32`);
      u[i] = v;
    } else f[i] = v.f32;
  });
  return out;
}
