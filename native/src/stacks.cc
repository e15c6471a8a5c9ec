#include "kernels.h"
#include "parallel.h"
#include "vectorize.h"

namespace {

FLIP_VECTORIZE
void add_or_copy(float* dst, const float* src, int64_t n, bool copy) {
  if (copy) {
    for (int64_t j = 0; j < n; j++) dst[j] = src[j];
  } else {
    for (int64_t j = 0; j < n; j++) dst[j] += src[j];
  }
}

void forward(const Stack& st) {
  const int64_t n = st.shape.batch * st.shape.tokens, d = st.shape.heads * st.shape.head_dim;
  const float* h = st.h;
  for (const StackLayer& l : st.layers) {
    attention_sublayer_forward(st.shape, st.eps, h, l.attn_w, st.key_bias, l.attn_out, l.attn_saved);
    mlp_sublayer_forward(n, d, l.hidden, st.eps, l.attn_out, l.mlp_w, l.mlp_out, l.mlp_saved);
    h = l.mlp_out;
  }
}

void backward(const Stack& st) {
  const int64_t n = st.shape.batch * st.shape.tokens, d = st.shape.heads * st.shape.head_dim;
  const float* dy = st.dy;
  for (auto l = st.layers.rbegin(); l != st.layers.rend(); ++l) {
    mlp_sublayer_backward(n, d, l->hidden, dy, l->mlp_w, l->mlp_saved, l->mlp_grads);
    attention_sublayer_backward(st.shape, l->mlp_grads.dh, l->attn_w, l->attn_saved, l->attn_grads);
    dy = l->attn_grads.dh;
  }
}

// Samples [b0, b1) of a stack: every per-row (or per-sample) pointer moved to the part's first row. Weight gradients
// go to `weight_grads` (16 arrays per layer, from second_half_grads) instead of the stack's own when given.
Stack part_of(const Stack& st, int64_t b0, int64_t b1, float* const* weight_grads) {
  const int64_t t = st.shape.tokens, d = st.shape.heads * st.shape.head_dim, r0 = b0 * t;
  const int64_t probs0 = b0 * st.shape.heads * t * t;
  Stack p = st;
  p.shape.batch = b1 - b0;
  if (st.h) p.h = st.h + r0 * d;
  if (st.dy) p.dy = st.dy + r0 * d;
  if (st.key_bias) p.key_bias = st.key_bias + r0;
  size_t g = 0;
  for (StackLayer& l : p.layers) {
    const int64_t m = l.hidden;
    AttentionSaved& a = l.attn_saved;
    a = {a.xhat + r0 * d, a.rstd + r0, a.q + r0 * d, a.k + r0 * d, a.v + r0 * d, a.probs + probs0, a.ctx + r0 * d};
    MlpSaved& ms = l.mlp_saved;
    ms = {ms.xhat + r0 * d, ms.rstd + r0, ms.u + r0 * m, ms.z + r0 * m};
    if (l.attn_out) l.attn_out += r0 * d;
    if (l.mlp_out) l.mlp_out += r0 * d;
    if (l.attn_grads.dh) l.attn_grads.dh += r0 * d;
    if (l.mlp_grads.dh) l.mlp_grads.dh += r0 * d;
    if (weight_grads && st.dy) {
      float* const* w = weight_grads + g;
      g += 16;
      l.attn_grads = {l.attn_grads.dh, w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9]};
      l.mlp_grads = {l.mlp_grads.dh, w[10], w[11], w[12], w[13], w[14], w[15]};
    }
  }
  return p;
}

// Sizes of a layer's 16 weight gradients, in AttentionGrads then MlpGrads order (dh aside).
void weight_sizes(const Stack& st, const StackLayer& l, int64_t out[16]) {
  int64_t saved_attention[7], saved_mlp[4];
  attention_sizes(st.shape, out, saved_attention);
  mlp_sizes(st.shape.batch * st.shape.tokens, st.shape.heads * st.shape.head_dim, l.hidden, out + 10, saved_mlp);
}

// Buffers for the second halves' weight gradients: every weight of every layer of every stack, from scratch arena 1
// (slots after the sublayers' own), so they are counted in the scratch bytes and reused from step to step.
std::vector<std::vector<float*>> second_half_grads(const std::vector<Stack>& stacks) {
  std::vector<std::vector<float*>> out(stacks.size());
  int slot = kFirstGradientSlot;
  for (size_t s = 0; s < stacks.size(); s++) {
    for (const StackLayer& l : stacks[s].layers) {
      int64_t sizes[16];
      weight_sizes(stacks[s], l, sizes);
      for (int i = 0; i < 16; i++) out[s].push_back(scratch_buffer(1, slot++, sizes[i]));
    }
  }
  return out;
}

// Two stacks, each whole on one thread (stack i on thread i): for stacks of about the same size the products stay
// twice as long as with halves. The arithmetic differs from the halves' (other blocks), so the caller's choice must
// depend on the shapes only, never on the thread count.
template <typename Run>
void run_whole(const std::vector<Stack>& stacks, Run run) {
  run_pair(
      [&] {
        use_scratch_arena(0);
        run(stacks[0]);
      },
      [&] {
        use_scratch_arena(1);
        if (stacks.size() > 1) run(stacks[1]);
        use_scratch_arena(0);
      });
}

// Every stack is cut into two halves of its samples, whatever the thread count: one thread takes the first half of
// each stack, the other the second, each running whole products on its own with its own scratch arena (the kernels
// inside run in one piece). So the two threads always have the same work, at any mask ratio, and the result is the
// same bit for bit with one thread or two. In the backward pass the second halves' weight gradients are added to the
// first halves' afterwards, in a fixed order.
template <typename Run>
void run_halves(const std::vector<Stack>& stacks, Run run) {
  const bool backward = stacks[0].dy != nullptr;
  const std::vector<std::vector<float*>> grads = backward ? second_half_grads(stacks) : std::vector<std::vector<float*>>(stacks.size());
  std::vector<Stack> first, second;
  for (size_t s = 0; s < stacks.size(); s++) {
    const Stack& st = stacks[s];
    const int64_t half = st.shape.batch / 2;
    first.push_back(part_of(st, 0, half, nullptr));
    second.push_back(part_of(st, half, st.shape.batch, backward ? grads[s].data() : nullptr));
  }
  run_pair(
      [&] {
        use_scratch_arena(0);
        for (const Stack& st : first) {
          if (st.shape.batch > 0) run(st);
        }
      },
      [&] {
        use_scratch_arena(1);
        for (const Stack& st : second) run(st);
        use_scratch_arena(0);
      });
  if (!backward) return;
  // The second halves' weight gradients added to the first halves' (or copied, where a first half had no samples), as
  // one run of elements split over the pool: element-wise, so any split gives the same result.
  struct Sum {
    float* dst;
    const float* src;
    int64_t count;
    bool copy;
  };
  std::vector<Sum> sums;
  for (size_t s = 0; s < stacks.size(); s++) {
    size_t g = 0;
    for (size_t l = 0; l < stacks[s].layers.size(); l++) {
      const StackLayer& layer = stacks[s].layers[l];
      float* dst[16] = {layer.attn_grads.ln_gamma, layer.attn_grads.ln_beta, layer.attn_grads.wq, layer.attn_grads.bq, layer.attn_grads.wk, layer.attn_grads.bk,
                        layer.attn_grads.wv,       layer.attn_grads.bv,      layer.attn_grads.wo, layer.attn_grads.bo, layer.mlp_grads.ln_gamma, layer.mlp_grads.ln_beta,
                        layer.mlp_grads.w1,        layer.mlp_grads.b1,       layer.mlp_grads.w2,  layer.mlp_grads.b2};
      int64_t sizes[16];
      weight_sizes(stacks[s], layer, sizes);
      for (int i = 0; i < 16; i++) sums.push_back({dst[i], grads[s][g++], sizes[i], stacks[s].shape.batch / 2 == 0});
    }
  }
  std::vector<int64_t> sizes;
  for (const Sum& sum : sums) sizes.push_back(sum.count);
  parallel_for_elements(sizes, 1 << 15, [&](size_t k, int64_t a, int64_t b) { add_or_copy(sums[k].dst + a, sums[k].src + a, b - a, sums[k].copy); });
}

}  // namespace

void stacks_forward(const std::vector<Stack>& stacks, bool halves) {
  if (halves) run_halves(stacks, forward);
  else run_whole(stacks, forward);
}

void stacks_backward(const std::vector<Stack>& stacks, bool halves) {
  if (halves) run_halves(stacks, backward);
  else run_whole(stacks, backward);
}
