// Attention per (sample, head) as strided BLAS products on the token-major q/k/v: head h of sample b is the block of
// rows b*T .. b*T+T-1 and columns h*dh .. h*dh+dh-1, a matrix with leading dimension D. No head split or merge copies.
#include <cblas.h>

#include <vector>

#include "fast_math.h"
#include "kernels.h"
#include "parallel.h"
#include "vectorize.h"

namespace {

// Each row of s [t, t]: add key_bias (may be null), then softmax in place.
FLIP_VECTORIZE
void softmax_rows(float* s, const float* key_bias, int64_t t) {
  const float neg_inf = -__builtin_inff();
  for (int64_t i = 0; i < t; i++) {
    float* row = s + i * t;
    f8 mx = splat8(neg_inf);
    for_each8(t, [&](int64_t j, int64_t n) __attribute__((always_inline)) {
      f8 v = load8(row + j, n);
      if (key_bias) v += load8(key_bias + j, n);
      store8(row + j, v, n);
      v = n == 8 ? v : load8_fill(row + j, n, neg_inf);
      mx = v > mx ? v : mx;
    });
    const float m = max8(mx);
    f8 sum = splat8(0.0f);
    for_each8(t, [&](int64_t j, int64_t n) __attribute__((always_inline)) {
      const f8 e = exp8(load8(row + j, n) - m);
      store8(row + j, e, n);
      sum += n == 8 ? e : load8_fill(row + j, n, 0.0f);
    });
    const float inv = 1.0f / sum8(sum);
    for_each8(t, [&](int64_t j, int64_t n) __attribute__((always_inline)) { store8(row + j, load8(row + j, n) * inv, n); });
  }
}

// dS = P (dP - rowsum(P dP)), in place over dP; both [t, t].
FLIP_VECTORIZE
void softmax_backward_rows(const float* p, float* dp, int64_t t) {
  for (int64_t i = 0; i < t; i++) {
    const float* pr = p + i * t;
    float* dr = dp + i * t;
    f8 dot = splat8(0.0f);
    // Lanes past the row's end load as 0 from both, so they add nothing.
    for_each8(t, [&](int64_t j, int64_t n) __attribute__((always_inline)) { dot += load8(pr + j, n) * load8(dr + j, n); });
    const float d = sum8(dot);
    for_each8(t, [&](int64_t j, int64_t n) __attribute__((always_inline)) {
      store8(dr + j, load8(pr + j, n) * (load8(dr + j, n) - d), n);
    });
  }
}

}  // namespace

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* key_bias, float* out,
                       float* probs) {
  const int64_t t = s.tokens, dh = s.head_dim, d = s.heads * s.head_dim;
  // One (sample, head) pair per item; each writes its own probs block and its own columns of out.
  parallel_for(s.batch * s.heads, 8, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const int64_t b = i / s.heads, h = i % s.heads;
      const int64_t at = b * t * d + h * dh;
      float* p = probs + i * t * t;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, dh, s.scale, q + at, d, k + at, d, 0.0f, p, t);
      softmax_rows(p, key_bias ? key_bias + b * t : nullptr, t);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, dh, t, 1.0f, p, t, v + at, d, 0.0f, out + at, d);
    }
  });
}

void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, float* dq, float* dk, float* dv) {
  const int64_t t = s.tokens, dh = s.head_dim, d = s.heads * s.head_dim;
  parallel_for(s.batch * s.heads, 8, [&](int64_t i0, int64_t i1) {
    std::vector<float> scratch(static_cast<size_t>(t * t));
    float* ds = scratch.data();
    for (int64_t i = i0; i < i1; i++) {
      const int64_t at = (i / s.heads) * t * d + (i % s.heads) * dh;
      const float* p = probs + i * t * t;
      // dV = P^T dO; dP = dO V^T; dS = softmax'(dP); dQ = scale dS K; dK = scale dS^T Q.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, dh, t, 1.0f, p, t, dout + at, d, 0.0f, dv + at, d);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, dh, 1.0f, dout + at, d, v + at, d, 0.0f, ds, t);
      softmax_backward_rows(p, ds, t);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, dh, t, s.scale, ds, t, k + at, d, 0.0f, dq + at, d);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, dh, t, s.scale, ds, t, q + at, d, 0.0f, dk + at, d);
    }
  });
}
