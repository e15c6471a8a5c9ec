// Attention per (sample, head) on the token-major q/k/v: head h of sample b is the block of rows b*T .. b*T+T-1 and
// columns h*dh .. h*dh+dh-1, a matrix with leading dimension D. No head split or merge copies. The per-head products
// are BLAS calls for long sequences and plain vectorised loops for short ones, where a BLAS call's fixed cost
// dominates (measured at T = 16: 13 GFLOP/s through OpenBLAS).
#include <cblas.h>

#include <cstring>
#include <vector>

#include "fast_math.h"
#include "kernels.h"
#include "parallel.h"
#include "vectorize.h"

namespace {

// A head's score and probability matrices are worked on with rows padded to a multiple of 8 floats (tp), so that the
// softmax and its gradient run on whole 8-wide groups: per-lane tail loops made a 17-token head 2.3x slower than a
// 16-token one (measured). Padding columns hold -inf in the scores (added by the bias row), so 0 after the softmax,
// and 0 in every other matrix; the saved probabilities stay dense [t, t] (rows copied in and out).
inline int64_t padded(int64_t t) { return (t + 7) & ~int64_t{7}; }

// Each row of s [t, tp]: add the bias row (key bias or 0 for the t keys, -inf for the padding), then softmax in place.
FLIP_VECTORIZE
void softmax_rows(float* s, const float* bias, int64_t t, int64_t tp) {
  for (int64_t i = 0; i < t; i++) {
    float* row = s + i * tp;
    f8 mx = splat8(-__builtin_inff());
    for (int64_t j = 0; j < tp; j += 8) {
      const f8 v = load8(row + j) + load8(bias + j);
      store8(row + j, v);
      mx = v > mx ? v : mx;
    }
    const float m = max8(mx);
    f8 sum = splat8(0.0f);
    for (int64_t j = 0; j < tp; j += 8) {
      const f8 e = exp8(load8(row + j) - m);
      store8(row + j, e);
      sum += e;
    }
    const float inv = 1.0f / sum8(sum);
    for (int64_t j = 0; j < tp; j += 8) store8(row + j, load8(row + j) * inv);
  }
}

// dS = P (dP - rowsum(P dP)), in place over dP; both [t, tp], zero in the padding (which stays zero).
FLIP_VECTORIZE
void softmax_backward_rows(const float* p, float* dp, int64_t t, int64_t tp) {
  for (int64_t i = 0; i < t; i++) {
    const float* pr = p + i * tp;
    float* dr = dp + i * tp;
    f8 dot = splat8(0.0f);
    for (int64_t j = 0; j < tp; j += 8) dot += load8(pr + j) * load8(dr + j);
    const float d = sum8(dot);
    for (int64_t j = 0; j < tp; j += 8) store8(dr + j, load8(pr + j) * (load8(dr + j) - d));
  }
}

// Sequences up to this many tokens use the loops below instead of BLAS (the crossover measured here).
constexpr int64_t kSmallTokens = 48;

// The short-sequence products for head width DH (a multiple of 8), with 8-wide accumulators held in registers.
// c [t, tp] = alpha a b^T for a, b [t, DH] with leading dimension ld (0 in the padding); bt: DH * tp floats of scratch
// whose padding columns are zero (only the t columns are written here).
template <int DH>
__attribute__((always_inline)) inline void small_abt(const float* a, const float* b, int64_t ld, int64_t t, float alpha, float* c, float* bt) {
  const int64_t tp = padded(t);
  for (int64_t j = 0; j < t; j++) {
    for (int e = 0; e < DH; e++) bt[e * tp + j] = b[j * ld + e];
  }
  // Four rows at a time share each load of bt (one load per four multiply-adds instead of one per one); every element
  // sums over e in the same order either way.
  int64_t i = 0;
  for (; i + 4 <= t; i += 4) {
    const float* a0 = a + i * ld;
    for (int64_t j = 0; j < tp; j += 8) {
      f8 acc0 = splat8(0.0f), acc1 = splat8(0.0f), acc2 = splat8(0.0f), acc3 = splat8(0.0f);
      for (int e = 0; e < DH; e++) {
        const f8 bv = load8(bt + e * tp + j);
        acc0 += a0[e] * bv;
        acc1 += a0[ld + e] * bv;
        acc2 += a0[2 * ld + e] * bv;
        acc3 += a0[3 * ld + e] * bv;
      }
      store8(c + i * tp + j, acc0 * alpha);
      store8(c + (i + 1) * tp + j, acc1 * alpha);
      store8(c + (i + 2) * tp + j, acc2 * alpha);
      store8(c + (i + 3) * tp + j, acc3 * alpha);
    }
  }
  for (; i < t; i++) {
    for (int64_t j = 0; j < tp; j += 8) {
      f8 acc = splat8(0.0f);
      for (int e = 0; e < DH; e++) acc += a[i * ld + e] * load8(bt + e * tp + j);
      store8(c + i * tp + j, acc * alpha);
    }
  }
}

// c [t, DH] (leading dimension ld) = alpha p b for p [t, tp], b [t, DH] (leading dimension ld).
template <int DH>
__attribute__((always_inline)) inline void small_pb(const float* p, const float* b, int64_t ld, int64_t t, float alpha, float* c) {
  const int64_t tp = padded(t);
  for (int64_t i = 0; i < t; i++) {
    f8 acc[DH / 8] = {};
    for (int64_t j = 0; j < t; j++) {
      const float pij = p[i * tp + j];
      for (int g = 0; g < DH / 8; g++) acc[g] += pij * load8(b + j * ld + 8 * g);
    }
    for (int g = 0; g < DH / 8; g++) store8(c + i * ld + 8 * g, acc[g] * alpha);
  }
}

// c [t, DH] (leading dimension ld) = alpha p^T b for p [t, tp], b [t, DH] (leading dimension ld).
template <int DH>
__attribute__((always_inline)) inline void small_ptb(const float* p, const float* b, int64_t ld, int64_t t, float alpha, float* c) {
  const int64_t tp = padded(t);
  for (int64_t j = 0; j < t; j++) {
    f8 acc[DH / 8] = {};
    for (int64_t i = 0; i < t; i++) {
      const float pij = p[i * tp + j];
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

// One thread's working matrices for a run of heads, and the three product shapes of attention on them, by BLAS or by
// the loops above. The [t, tp] matrices start zero; nothing below writes a nonzero into their padding.
struct HeadWork {
  int64_t t, tp, dh, ld;
  bool small;
  std::vector<float> bt, first, second, bias;
  HeadWork(int64_t tokens, int64_t head_dim, int64_t d)
      : t(tokens),
        tp(padded(tokens)),
        dh(head_dim),
        ld(d),
        small(tokens <= kSmallTokens && (head_dim == 32 || head_dim == 64)),
        bt(small ? head_dim * padded(tokens) : 0, 0.0f),
        first(static_cast<size_t>(tokens * padded(tokens)), 0.0f),
        second(static_cast<size_t>(tokens * padded(tokens)), 0.0f),
        bias(static_cast<size_t>(padded(tokens)), -__builtin_inff()) {}
  // c [t, tp] = alpha a b^T
  void abt(const float* a, const float* b, float alpha, float* c) {
    if (small) (dh == 32 ? abt32 : abt64)(a, b, ld, t, alpha, c, bt.data());
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, dh, alpha, a, ld, b, ld, 0.0f, c, tp);
  }
  // c [t, dh] = alpha p b, p [t, tp]
  void pb(const float* p, const float* b, float alpha, float* c) {
    if (small) (dh == 32 ? pb32 : pb64)(p, b, ld, t, alpha, c);
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, dh, t, alpha, p, tp, b, ld, 0.0f, c, ld);
  }
  // c [t, dh] = alpha p^T b, p [t, tp]
  void ptb(const float* p, const float* b, float alpha, float* c) {
    if (small) (dh == 32 ? ptb32 : ptb64)(p, b, ld, t, alpha, c);
    else cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, dh, t, alpha, p, tp, b, ld, 0.0f, c, ld);
  }
  // The bias row of a sample: its key bias (or 0) for the t keys; the padding keeps -inf.
  void set_bias(const float* key_bias) {
    for (int64_t j = 0; j < t; j++) bias[j] = key_bias ? key_bias[j] : 0.0f;
  }
  // Dense [t, t] rows to and from a padded [t, tp] matrix.
  void unpad(const float* m, float* dense) const {
    for (int64_t i = 0; i < t; i++) std::memcpy(dense + i * t, m + i * tp, sizeof(float) * t);
  }
  void pad(const float* dense, float* m) const {
    for (int64_t i = 0; i < t; i++) std::memcpy(m + i * tp, dense + i * t, sizeof(float) * t);
  }
};

}  // namespace

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* key_bias, float* out,
                       float* probs) {
  const int64_t t = s.tokens, dh = s.head_dim, d = s.heads * s.head_dim;
  // One (sample, head) pair per item; each writes its own probs block and its own columns of out.
  parallel_for(s.batch * s.heads, 8, [&](int64_t i0, int64_t i1) {
    HeadWork w(t, dh, d);
    float* p = w.first.data();
    for (int64_t i = i0; i < i1; i++) {
      const int64_t b = i / s.heads, h = i % s.heads;
      const int64_t at = b * t * d + h * dh;
      if (i == i0 || h == 0) w.set_bias(key_bias ? key_bias + b * t : nullptr);
      w.abt(q + at, k + at, s.scale, p);
      softmax_rows(p, w.bias.data(), t, w.tp);
      w.pb(p, v + at, 1.0f, out + at);
      w.unpad(p, probs + i * t * t);
    }
  });
}

void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, float* dq, float* dk, float* dv) {
  const int64_t t = s.tokens, dh = s.head_dim, d = s.heads * s.head_dim;
  parallel_for(s.batch * s.heads, 8, [&](int64_t i0, int64_t i1) {
    HeadWork w(t, dh, d);
    float* p = w.first.data();
    float* ds = w.second.data();
    for (int64_t i = i0; i < i1; i++) {
      const int64_t at = (i / s.heads) * t * d + (i % s.heads) * dh;
      w.pad(probs + i * t * t, p);
      // dV = P^T dO; dP = dO V^T; dS = softmax'(dP); dQ = scale dS K; dK = scale dS^T Q.
      w.ptb(p, dout + at, 1.0f, dv + at);
      w.abt(dout + at, v + at, 1.0f, ds);
      softmax_backward_rows(p, ds, t, w.tp);
      w.pb(ds, k + at, s.scale, dq + at);
      w.ptb(ds, q + at, s.scale, dk + at);
    }
  });
}
