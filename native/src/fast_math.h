// exp and sigmoid on 8 floats at a time, with GCC's generic vector types: the compiler emits AVX2 instructions in the
// arch=haswell clone of a FLIP_VECTORIZE function and pairs of SSE2 instructions in the baseline clone, with no
// branches and no libm calls. exp: range reduction x = n ln2 + r, |r| <= ln2 / 2, then Cephes' degree-7 polynomial;
// relative error below 3e-7 over the clamped range [-87, 88] (inputs below -87 give ~1.6e-38 instead of 0).
#pragma once
#include <cstdint>
#include <cstring>

typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));

// The first n <= 8 floats at p; lanes past n are 0 (and never written back by store8).
// (Partial groups go lane by lane: a memcpy of a variable length would be a library call in the innermost loops.)
__attribute__((always_inline)) inline f8 load8(const float* p, int64_t n = 8) {
  f8 v = {};
  if (n == 8) {
    std::memcpy(&v, p, sizeof v);
  } else {
    for (int64_t k = 0; k < n; k++) v[k] = p[k];
  }
  return v;
}

__attribute__((always_inline)) inline void store8(float* p, f8 v, int64_t n = 8) {
  if (n == 8) {
    std::memcpy(p, &v, sizeof v);
  } else {
    for (int64_t k = 0; k < n; k++) p[k] = v[k];
  }
}

__attribute__((always_inline)) inline f8 splat8(float x) { return f8{x, x, x, x, x, x, x, x}; }

// The first n <= 8 floats at p, lanes past n set to fill (e.g. -inf for a maximum).
__attribute__((always_inline)) inline f8 load8_fill(const float* p, int64_t n, float fill) {
  const i8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
  const f8 v = load8(p, n);
  return lane < static_cast<int32_t>(n) ? v : splat8(fill);
}

__attribute__((always_inline)) inline float sum8(f8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

__attribute__((always_inline)) inline float max8(f8 v) {
  float m = v[0];
  for (int i = 1; i < 8; i++) m = v[i] > m ? v[i] : m;
  return m;
}

__attribute__((always_inline)) inline f8 exp8(f8 x) {
  x = x < splat8(-87.0f) ? splat8(-87.0f) : x;
  x = x > splat8(88.0f) ? splat8(88.0f) : x;
  // n = floor(x log2(e) + 1/2): truncate, then step down where truncation rounded a negative value up.
  const f8 t = x * 1.44269504088896341f + 0.5f;
  f8 n = __builtin_convertvector(__builtin_convertvector(t, i8), f8);
  n = n > t ? n - 1.0f : n;
  const f8 r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 split in two for precision
  f8 p = splat8(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const i8 bits = (__builtin_convertvector(n, i8) + 127) << 23;
  f8 scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

__attribute__((always_inline)) inline f8 sigmoid8(f8 x) { return 1.0f / (1.0f + exp8(-x)); }

// Calls op(i, n) for groups of n = 8 elements from i, then once for the last partial group (n < 8).
template <typename Op>
__attribute__((always_inline)) inline void for_each8(int64_t count, Op op) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) op(i, 8);
  if (i < count) op(i, count - i);
}
