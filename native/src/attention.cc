// Attention per (sample, head) on the token-major q/k/v: head h of sample b is the block of rows b*T .. b*T+T-1 and
// columns h*dh .. h*dh+dh-1, a matrix with leading dimension D. No head split or merge copies. The per-head products
// are BLAS calls for long sequences and plain vectorised loops for short ones, where a BLAS call's fixed cost
// dominates (measured at T = 16: 13 GFLOP/s through OpenBLAS).
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

// Sequences up to this many tokens use the loops below instead of BLAS (the crossover measured here).
constexpr int64_t kSmallTokens = 48;

// The short-sequence products for head width DH (a multiple of 8), with 8-wide accumulators held in registers.
// c [t, t] (dense) = alpha a b^T for a, b [t, DH] with leading dimension ld; bt: DH * round8(t) floats of scratch.
template <int DH>
__attribute__((always_inline)) inline void small_abt(const float* a, const float* b, int64_t ld, int64_t t, float alpha, float* c, float* bt) {
  const int64_t tp = (t + 7) & ~int64_t{7};
  for (int64_t j = 0; j < tp; j++) {
    for (int e = 0; e < DH; e++) bt[e * tp + j] = j < t ? b[j * ld + e] : 0.0f;
  }
  for (int64_t i = 0; i < t; i++) {
    for (int64_t j = 0; j < tp; j += 8) {
      f8 acc = splat8(0.0f);
      for (int e = 0; e < DH; e++) acc += a[i * ld + e] * load8(bt + e * tp + j);
      store8(c + i * t + j, acc * alpha, t - j < 8 ? t - j : 8);
    }
  }
}

// c [t, DH] (leading dimension ld) = alpha p b for p [t, t] dense, b [t, DH] (leading dimension ld).
template <int DH>
__attribute__((always_inline)) inline void small_pb(const float* p, const float* b, int64_t ld, int64_t t, float alpha, float* c) {
  for (int64_t i = 0; i < t; i++) {
    f8 acc[DH / 8] = {};
    for (int64_t j = 0; j < t; j++) {
      const float pij = p[i * t + j];
      for (int g = 0; g < DH / 8; g++) acc[g] += pij * load8(b + j * ld + 8 * g);
    }
    for (int g = 0; g < DH / 8; g++) store8(c + i * ld + 8 * g, acc[g] * alpha);
  }
}

// c [t, DH] (leading dimension ld) = alpha p^T b for p [t, t] dense, b [t, DH] (leading dimension ld).
template <int DH>
__attribute__((always_inline)) inline void small_ptb(const float* p, const float* b, int64_t ld, int64_t t, float alpha, float* c) {
  for (int64_t j = 0; j < t; j++) {
    f8 acc[DH / 8] = {};
    for (int64_t i = 0; i < t; i++) {
      const float pij = p[i * t + j];
      for (int g = 0; g < DH / 8; g++) acc[g] += pij * load8(b + i * ld + 8 * g);
    }
    for (int g = 0; g < DH / 8; g++) store8(c + j * ld + 8 * g, acc[g] * alpha);
  }
}

// Instances for the head widths in use (32: every preset here; 64: the paper's).
FLIP_VECTORIZE void abt32(const float* a, const float* b, int64_t ld, int64_t t, float alpha, float* c, float* bt) { small_abt<32>(a, b, ld, t, alpha, c, bt); }
FLIP_VECTORIZE void abt64(const float* a, const float* b, int64_t ld, int64_t t, float alpha, float* c, float* bt) { small_abt<64>(a, b, ld, t, alpha, c, bt); }
FLIP_VECTORIZE void pb32(const float* p, const float* b, int64_t ld, int64_t t, float alpha, float* c) { small_pb<32>(p, b, ld, t, alpha, c); }
FLIP_VECTORIZE void pb64(const float* p, const float* b, int64_t ld, int64_t t, float alpha, float* c) { small_pb<64>(p, b, ld, t, alpha, c); }
FLIP_VECTORIZE void ptb32(const float* p, const float* b, int64_t ld, int64_t t, float alpha, float* c) { small_ptb<32>(p, b, ld, t, alpha, c); }
FLIP_VECTORIZE void ptb64(const float* p, const float* b, int64_t ld, int64_t t, float alpha, float* c) { small_ptb<64>(p, b, ld, t, alpha, c); }

// The three product shapes of attention, by BLAS or by the loops above.
struct HeadProducts {
  int64_t t, dh, ld;
  bool small;
  std::vector<float> scratch;
  HeadProducts(int64_t tokens, int64_t head_dim, int64_t d)
      : t(tokens),
        dh(head_dim),
        ld(d),
        small(tokens <= kSmallTokens && (head_dim == 32 || head_dim == 64)),
        scratch(small ? head_dim * ((tokens + 7) & ~int64_t{7}) : 0) {}
  // c [t, t] = alpha a b^T
  void abt(const float* a, const float* b, float alpha, float* c) {
    if (small) (dh == 32 ? abt32 : abt64)(a, b, ld, t, alpha, c, scratch.data());
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, dh, alpha, a, ld, b, ld, 0.0f, c, t);
  }
  // c [t, dh] = alpha p b
  void pb(const float* p, const float* b, float alpha, float* c) {
    if (small) (dh == 32 ? pb32 : pb64)(p, b, ld, t, alpha, c);
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, dh, t, alpha, p, t, b, ld, 0.0f, c, ld);
  }
  // c [t, dh] = alpha p^T b
  void ptb(const float* p, const float* b, float alpha, float* c) {
    if (small) (dh == 32 ? ptb32 : ptb64)(p, b, ld, t, alpha, c);
    else cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, dh, t, alpha, p, t, b, ld, 0.0f, c, ld);
  }
};

}  // namespace

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* key_bias, float* out,
                       float* probs) {
  const int64_t t = s.tokens, dh = s.head_dim, d = s.heads * s.head_dim;
  // One (sample, head) pair per item; each writes its own probs block and its own columns of out.
  parallel_for(s.batch * s.heads, 8, [&](int64_t i0, int64_t i1) {
    HeadProducts mm(t, dh, d);
    for (int64_t i = i0; i < i1; i++) {
      const int64_t b = i / s.heads, h = i % s.heads;
      const int64_t at = b * t * d + h * dh;
      float* p = probs + i * t * t;
      mm.abt(q + at, k + at, s.scale, p);
      softmax_rows(p, key_bias ? key_bias + b * t : nullptr, t);
      mm.pb(p, v + at, 1.0f, out + at);
    }
  });
}

void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, float* dq, float* dk, float* dv) {
  const int64_t t = s.tokens, dh = s.head_dim, d = s.heads * s.head_dim;
  parallel_for(s.batch * s.heads, 8, [&](int64_t i0, int64_t i1) {
    HeadProducts mm(t, dh, d);
    std::vector<float> scratch(static_cast<size_t>(t * t));
    float* ds = scratch.data();
    for (int64_t i = i0; i < i1; i++) {
      const int64_t at = (i / s.heads) * t * d + (i % s.heads) * dh;
      const float* p = probs + i * t * t;
      // dV = P^T dO; dP = dO V^T; dS = softmax'(dP); dQ = scale dS K; dK = scale dS^T Q.
      mm.ptb(p, dout + at, 1.0f, dv + at);
      mm.abt(dout + at, v + at, 1.0f, ds);
      softmax_backward_rows(p, ds, t);
      mm.pb(ds, k + at, s.scale, dq + at);
      mm.ptb(ds, q + at, s.scale, dk + at);
    }
  });
}
