#include "fast_math.h"
#include "kernels.h"
#include "parallel.h"
#include "vectorize.h"

namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per thread at least

FLIP_VECTORIZE
void forward_range(const float* x, float* y, int64_t count) {
  for_each8(count, [&](int64_t i, int64_t n) __attribute__((always_inline)) {
    const f8 v = load8(x + i, n);
    store8(y + i, v * sigmoid8(v * 1.702f), n);
  });
}

FLIP_VECTORIZE
void backward_range(const float* dy, const float* x, float* dx, int64_t count) {
  for_each8(count, [&](int64_t i, int64_t n) __attribute__((always_inline)) {
    const f8 v = load8(x + i, n);
    const f8 s = sigmoid8(v * 1.702f);
    store8(dx + i, load8(dy + i, n) * (s + 1.702f * v * s * (1.0f - s)), n);
  });
}

}  // namespace

void quick_gelu_forward(const float* x, float* y, int64_t count) {
  parallel_for(count, kGrain, [&](int64_t i0, int64_t i1) { forward_range(x + i0, y + i0, i1 - i0); });
}

void quick_gelu_backward(const float* dy, const float* x, float* dx, int64_t count) {
  parallel_for(count, kGrain, [&](int64_t i0, int64_t i1) { backward_range(dy + i0, x + i0, dx + i0, i1 - i0); });
}
