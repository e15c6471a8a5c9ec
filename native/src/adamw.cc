#include <cmath>

#include "kernels.h"
#include "parallel.h"
#include "vectorize.h"

namespace {

FLIP_VECTORIZE
void update_range(const AdamWStep& s, const float* p, const float* g, float* m, float* v, float* out, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    const float mi = s.beta1 * m[i] + (1.0f - s.beta1) * g[i];
    // + v_floor keeps v a normal float (see V_FLOOR in models/optimizer.ts).
    const float vi = s.beta2 * v[i] + (1.0f - s.beta2) * g[i] * g[i] + s.v_floor;
    m[i] = mi;
    v[i] = vi;
    out[i] = p[i] - s.lr * ((mi * s.c1) / (std::sqrt(vi * s.c2) + s.eps) + s.weight_decay * p[i]);
  }
}

// The same update written back into p: a loop of its own, so that the compiler need not assume p and out overlap
// (they do, exactly, which its alias checks would send to the scalar loop).
FLIP_VECTORIZE
void update_range_in_place(const AdamWStep& s, float* p, const float* g, float* m, float* v, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    const float mi = s.beta1 * m[i] + (1.0f - s.beta1) * g[i];
    const float vi = s.beta2 * v[i] + (1.0f - s.beta2) * g[i] * g[i] + s.v_floor;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] - s.lr * ((mi * s.c1) / (std::sqrt(vi * s.c2) + s.eps) + s.weight_decay * p[i]);
  }
}

}  // namespace

void adamw_step(const AdamWStep& step, const std::vector<AdamWTensor>& tensors) {
  // The tensors as one run of elements, cut into the pool's parts by element count: the update is element-wise, so
  // any split gives the same result.
  std::vector<int64_t> sizes;
  for (const AdamWTensor& x : tensors) sizes.push_back(x.count);
  parallel_for_elements(sizes, 1 << 15, [&](size_t t, int64_t a, int64_t b) {
    const AdamWTensor& x = tensors[t];
    AdamWStep s = step;
    s.weight_decay = x.weight_decay;
    if (x.out == x.p) update_range_in_place(s, x.out + a, x.g + a, x.m + a, x.v + a, b - a);
    else update_range(s, x.p + a, x.g + a, x.m + a, x.v + a, x.out + a, b - a);
  });
}
