#include "kernels.h"
#include "parallel.h"

namespace {

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

// One stack: on this thread, its kernels sharing the pool. Two: side by side, each on one thread with its own
// scratch arena (each kernel inside then runs in one piece, computing exactly what it computes when shared).
template <typename Run>
void run_stacks(const std::vector<Stack>& stacks, Run run) {
  if (stacks.size() == 1) {
    run(stacks[0]);
    return;
  }
  run_pair(
      [&] {
        use_scratch_arena(0);
        run(stacks[0]);
      },
      [&] {
        use_scratch_arena(1);
        run(stacks[1]);
        use_scratch_arena(0);
      });
}

}  // namespace

void stacks_forward(const std::vector<Stack>& stacks) { run_stacks(stacks, forward); }
void stacks_backward(const std::vector<Stack>& stacks) { run_stacks(stacks, backward); }
