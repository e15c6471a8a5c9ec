#include <cmath>
#include <vector>

#include "kernels.h"
#include "parallel.h"
#include "vectorize.h"

namespace {

constexpr int64_t kGrainRows = 256;

FLIP_VECTORIZE
void forward_rows(const float* x, const float* gamma, const float* beta, float eps, float* y, float* xhat, float* rstd, int64_t r0,
                  int64_t r1, int64_t d) {
  const float inv_d = 1.0f / static_cast<float>(d);
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * d;
    float* hr = xhat + r * d;
    float* yr = y + r * d;
    float mean = 0;
    for (int64_t j = 0; j < d; j++) mean += xr[j];
    mean *= inv_d;
    float var = 0;
    for (int64_t j = 0; j < d; j++) {
      const float c = xr[j] - mean;
      var += c * c;
    }
    const float rs = 1.0f / std::sqrt(var * inv_d + eps);
    rstd[r] = rs;
    for (int64_t j = 0; j < d; j++) {
      hr[j] = (xr[j] - mean) * rs;
      yr[j] = hr[j] * gamma[j] + beta[j];
    }
  }
}

// dx for rows [r0, r1); their dgamma and dbeta contributions are added to the given partial sums.
FLIP_VECTORIZE
void backward_rows(const float* dy, const float* xhat, const float* rstd, const float* gamma, const float* add, float* dx, float* dgamma,
                   float* dbeta, int64_t r0, int64_t r1, int64_t d) {
  const float inv_d = 1.0f / static_cast<float>(d);
  for (int64_t r = r0; r < r1; r++) {
    const float* dyr = dy + r * d;
    const float* hr = xhat + r * d;
    float* dxr = dx + r * d;
    // dxhat = dy gamma; dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)).
    float m1 = 0, m2 = 0;
    for (int64_t j = 0; j < d; j++) {
      const float g = dyr[j] * gamma[j];
      m1 += g;
      m2 += g * hr[j];
      dgamma[j] += dyr[j] * hr[j];
      dbeta[j] += dyr[j];
    }
    m1 *= inv_d;
    m2 *= inv_d;
    const float rs = rstd[r];
    if (add) {
      const float* ar = add + r * d;
      for (int64_t j = 0; j < d; j++) dxr[j] = ar[j] + rs * (dyr[j] * gamma[j] - m1 - hr[j] * m2);
    } else {
      for (int64_t j = 0; j < d; j++) dxr[j] = rs * (dyr[j] * gamma[j] - m1 - hr[j] * m2);
    }
  }
}

FLIP_VECTORIZE
void reapply_rows(const float* xhat, const float* gamma, const float* beta, float* y, int64_t r0, int64_t r1, int64_t d) {
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t j = 0; j < d; j++) y[r * d + j] = xhat[r * d + j] * gamma[j] + beta[j];
  }
}

}  // namespace

void layer_norm_reapply(const float* xhat, const float* gamma, const float* beta, float* y, int64_t n, int64_t d) {
  parallel_for(n, kGrainRows, [&](int64_t r0, int64_t r1) { reapply_rows(xhat, gamma, beta, y, r0, r1, d); });
}

void layer_norm_forward(const float* x, const float* gamma, const float* beta, float eps, float* y, float* xhat, float* rstd,
                        int64_t n, int64_t d) {
  parallel_for(n, kGrainRows, [&](int64_t r0, int64_t r1) { forward_rows(x, gamma, beta, eps, y, xhat, rstd, r0, r1, d); });
}

void layer_norm_backward(const float* dy, const float* xhat, const float* rstd, const float* gamma, const float* add, float* dx,
                         float* dgamma, float* dbeta, int64_t n, int64_t d) {
  // Rows are cut into chunks of a fixed size, whatever the thread count; each chunk sums its rows' dgamma/dbeta into
  // its own slot and the slots are added in order afterwards. So the result is the same bit for bit with any number of
  // threads (jobs on different executors or machines record identical curves).
  const int64_t chunks = (n + kGrainRows - 1) / kGrainRows;
  std::vector<float> partial(static_cast<size_t>(chunks * 2 * d), 0.0f);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      float* dg = partial.data() + c * 2 * d;
      const int64_t r1 = (c + 1) * kGrainRows < n ? (c + 1) * kGrainRows : n;
      backward_rows(dy, xhat, rstd, gamma, add, dx, dg, dg + d, c * kGrainRows, r1, d);
    }
  });
  for (int64_t j = 0; j < d; j++) dgamma[j] = dbeta[j] = 0;
  for (int64_t c = 0; c < chunks; c++) {
    for (int64_t j = 0; j < d; j++) {
      dgamma[j] += partial[c * 2 * d + j];
      dbeta[j] += partial[c * 2 * d + d + j];
    }
  }
}
