// The two halves of a pre-LN transformer block as single kernels, forward and backward, built from the add-on's other
// kernels. One call replaces some 15 tfjs kernel calls each way (and the engine's bookkeeping for each); the
// gradients that stay inside (d ctx, dq, dk, dv, d LN output) live in reusable scratch buffers. In the backward pass
// a linear layer's input gradient and weight gradient are independent: they run side by side as whole products
// (run_pair), which keeps each BLAS call large and makes no split that could depend on the thread count.
#include "kernels.h"
#include "parallel.h"
#include "scratch.h"

namespace {

// One arena per stack that may run at once (stacks.cc runs two side by side); a thread uses the one it was given.
Scratch arenas[kMaxStacks];
thread_local int arena = 0;

Scratch& scratch() { return arenas[arena]; }

enum Slot { kA, kDctx, kDq, kDk, kDv, kDa, kDz };

// The backward pass of a linear layer y = x w + b (x [n, din], w [din, dout]): dx = dy w^T on one side, dw = x^T dy
// and db = column sums of dy on the other.
void linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db, int64_t n, int64_t din, int64_t dout) {
  run_pair([&] { matmul_whole(false, true, n, din, dout, 1.0f, dy, dout, w, dout, 0.0f, dx, din); },
           [&] {
             matmul_whole(true, false, din, dout, n, 1.0f, x, din, dy, dout, 0.0f, dw, dout);
             column_sums(dy, db, n, dout);
           });
}

}  // namespace

void use_scratch_arena(int index) { arena = index; }

float* scratch_buffer(int arena_index, int slot, int64_t n) { return arenas[arena_index].get(slot, n); }

int64_t sublayer_scratch_bytes() {
  int64_t total = 0;
  for (const Scratch& s : arenas) total += s.bytes();
  return total;
}

void sublayer_scratch_release() {
  for (Scratch& s : arenas) s.release();
}

void attention_sizes(const AttentionShape& s, int64_t weights[10], int64_t saved[7]) {
  const int64_t n = s.batch * s.tokens, d = s.heads * s.head_dim;
  const int64_t w[10] = {d, d, d * d, d, d * d, d, d * d, d, d * d, d};
  const int64_t sv[7] = {n * d, n, n * d, n * d, n * d, s.batch * s.heads * s.tokens * s.tokens, n * d};
  for (int i = 0; i < 10; i++) weights[i] = w[i];
  for (int i = 0; i < 7; i++) saved[i] = sv[i];
}

void mlp_sizes(int64_t n, int64_t d, int64_t m, int64_t weights[6], int64_t saved[4]) {
  const int64_t w[6] = {d, d, d * m, m, m * d, d};
  const int64_t sv[4] = {n * d, n, n * m, n * m};
  for (int i = 0; i < 6; i++) weights[i] = w[i];
  for (int i = 0; i < 4; i++) saved[i] = sv[i];
}

void attention_sublayer_forward(const AttentionShape& s, float eps, const float* h, const AttentionWeights& w, const float* key_bias,
                                float* out, const AttentionSaved& saved) {
  const int64_t n = s.batch * s.tokens, d = s.heads * s.head_dim;
  float* a = scratch().get(kA, n * d);
  layer_norm_forward(h, w.ln_gamma, w.ln_beta, eps, a, saved.xhat, saved.rstd, n, d);
  linear_forward(a, w.wq, w.bq, nullptr, saved.q, n, d, d);
  linear_forward(a, w.wk, w.bk, nullptr, saved.k, n, d, d);
  linear_forward(a, w.wv, w.bv, nullptr, saved.v, n, d, d);
  attention_forward(s, saved.q, saved.k, saved.v, key_bias, saved.ctx, saved.probs);
  linear_forward(saved.ctx, w.wo, w.bo, h, out, n, d, d);
}

void attention_sublayer_backward(const AttentionShape& s, const float* dy, const AttentionWeights& w, const AttentionSaved& saved,
                                 const AttentionGrads& g) {
  const int64_t n = s.batch * s.tokens, d = s.heads * s.head_dim;
  Scratch& sc = scratch();
  // Output projection.
  float* dctx = sc.get(kDctx, n * d);
  linear_backward(saved.ctx, w.wo, dy, dctx, g.wo, g.bo, n, d, d);
  float* dq = sc.get(kDq, n * d);
  float* dk = sc.get(kDk, n * d);
  float* dv = sc.get(kDv, n * d);
  attention_backward(s, saved.q, saved.k, saved.v, saved.probs, dctx, dq, dk, dv);
  // Projections from the LayerNorm output a (recomputed from xhat): dW = a^T dX and db = column sums on one side,
  // da = sum dX W^T on the other.
  float* a = sc.get(kA, n * d);
  layer_norm_reapply(saved.xhat, w.ln_gamma, w.ln_beta, a, n, d);
  float* da = sc.get(kDa, n * d);
  const float* dproj[3] = {dq, dk, dv};
  const float* wproj[3] = {w.wq, w.wk, w.wv};
  float* gw[3] = {g.wq, g.wk, g.wv};
  float* gb[3] = {g.bq, g.bk, g.bv};
  run_pair(
      [&] {
        for (int i = 0; i < 3; i++) {
          matmul_whole(true, false, d, d, n, 1.0f, a, d, dproj[i], d, 0.0f, gw[i], d);
          column_sums(dproj[i], gb[i], n, d);
        }
      },
      [&] {
        for (int i = 0; i < 3; i++) matmul_whole(false, true, n, d, d, 1.0f, dproj[i], d, wproj[i], d, i == 0 ? 0.0f : 1.0f, da, d);
      });
  // Through the LayerNorm, plus the residual path: dh = dy + LN'(da).
  layer_norm_backward(da, saved.xhat, saved.rstd, w.ln_gamma, dy, g.dh, g.ln_gamma, g.ln_beta, n, d);
}

void mlp_sublayer_forward(int64_t n, int64_t d, int64_t m, float eps, const float* h, const MlpWeights& w, float* out, const MlpSaved& saved) {
  float* a = scratch().get(kA, n * d);
  layer_norm_forward(h, w.ln_gamma, w.ln_beta, eps, a, saved.xhat, saved.rstd, n, d);
  linear_forward(a, w.w1, w.b1, nullptr, saved.u, n, d, m);
  quick_gelu_forward(saved.u, saved.z, n * m);
  linear_forward(saved.z, w.w2, w.b2, h, out, n, m, d);
}

void mlp_sublayer_backward(int64_t n, int64_t d, int64_t m, const float* dy, const MlpWeights& w, const MlpSaved& saved, const MlpGrads& g) {
  Scratch& sc = scratch();
  // Second linear.
  float* dz = sc.get(kDz, n * m);
  linear_backward(saved.z, w.w2, dy, dz, g.w2, g.b2, n, m, d);
  // Through QuickGELU (du in place of dz), then the first linear from the LayerNorm output a.
  quick_gelu_backward(dz, saved.u, dz, n * m);
  float* a = sc.get(kA, n * d);
  layer_norm_reapply(saved.xhat, w.ln_gamma, w.ln_beta, a, n, d);
  float* da = sc.get(kDa, n * d);
  linear_backward(a, w.w1, dz, da, g.w1, g.b1, n, d, m);
  layer_norm_backward(da, saved.xhat, saved.rstd, w.ln_gamma, dy, g.dh, g.ln_gamma, g.ln_beta, n, d);
}
