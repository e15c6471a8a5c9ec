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

}  // namespace

void adamw_update(const AdamWStep& s, const float* p, const float* g, float* m, float* v, float* out, int64_t count) {
  parallel_for(count, 1 << 15, [&](int64_t i0, int64_t i1) { update_range(s, p + i0, g + i0, m + i0, v + i0, out + i0, i1 - i0); });
}
