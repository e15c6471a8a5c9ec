// The CLIP head in one call each way: from both towers' last hidden states to the symmetric contrastive loss. Per tower,
// the final LayerNorm of the rows it pools (every token for the mean, the first token otherwise), the pooling, the
// projection and the L2 normalisation; then logits exp(log_scale) u v^T and the mean of the image->text (rows) and
// text->image (columns) cross-entropies. The loss head of models/flip-model.ts ran ~40 tfjs kernels for this, each
// way, whose bookkeeping cost more than the arithmetic. Per-sample work is split over the pool by samples and summed in
// a fixed order, so the result does not depend on the thread count.
#include <cmath>
#include <vector>

#include "kernels.h"
#include "parallel.h"
#include "vectorize.h"

namespace {

// Added to the squared norm before the reciprocal square root, as l2Normalize (models/flip-model.ts) does.
constexpr float kNormEps = 1e-12f;

// Where the saved values lie in the one saved buffer (floats from its start).
struct TowerLayout {
  int64_t pooled_rows;  // rows of the final LayerNorm per sample: tokens for the mean, 1 for the first token
  int64_t xhat, rstd, pooled, unit, rnorm;
};
struct Layout {
  TowerLayout tower[2];
  int64_t probs_rows, probs_cols, logits, scale, total;
};

Layout layout_of(const HeadShape& s, const HeadTower towers[2]) {
  Layout l;
  int64_t at = 0;
  for (int t = 0; t < 2; t++) {
    TowerLayout& w = l.tower[t];
    w.pooled_rows = towers[t].mean_pool ? towers[t].tokens : 1;
    const int64_t rows = s.batch * w.pooled_rows;
    w.xhat = at;
    w.rstd = w.xhat + rows * s.width;
    w.pooled = w.rstd + rows;
    w.unit = w.pooled + s.batch * s.width;
    w.rnorm = w.unit + s.batch * s.embed;
    at = w.rnorm + s.batch;
  }
  l.probs_rows = at;
  l.probs_cols = l.probs_rows + s.batch * s.batch;
  l.logits = l.probs_cols + s.batch * s.batch;
  l.scale = l.logits + s.batch * s.batch;
  l.total = l.scale + 1;
  return l;
}

// The final LayerNorm of sample b's pooled rows (rows b*tokens .. b*tokens + p - 1 of h) and their mean:
// pooled = gamma mean(xhat) + beta. Saves xhat and rstd of those rows.
FLIP_VECTORIZE
void norm_and_pool(const float* h, const HeadTower& tw, const TowerLayout& w, int64_t d, float eps, float* saved, int64_t b) {
  const int64_t p = w.pooled_rows;
  const float inv_d = 1.0f / static_cast<float>(d);
  float* pooled = saved + w.pooled + b * d;
  for (int64_t j = 0; j < d; j++) pooled[j] = 0;
  for (int64_t i = 0; i < p; i++) {
    const float* x = h + (b * tw.tokens + i) * d;
    float* xhat = saved + w.xhat + (b * p + i) * d;
    float mean = 0;
    for (int64_t j = 0; j < d; j++) mean += x[j];
    mean *= inv_d;
    float var = 0;
    for (int64_t j = 0; j < d; j++) var += (x[j] - mean) * (x[j] - mean);
    const float rs = 1.0f / std::sqrt(var * inv_d + eps);
    saved[w.rstd + b * p + i] = rs;
    for (int64_t j = 0; j < d; j++) {
      xhat[j] = (x[j] - mean) * rs;
      pooled[j] += xhat[j];
    }
  }
  const float inv_p = 1.0f / static_cast<float>(p);
  for (int64_t j = 0; j < d; j++) pooled[j] = tw.ln_gamma[j] * (pooled[j] * inv_p) + tw.ln_beta[j];
}

// Back through the pooling and the LayerNorm for sample b: every pooled row's output gradient is dpooled / p; rows that
// were not pooled get zero. The sample's dgamma contribution goes to dgamma_b.
FLIP_VECTORIZE
void unpool_and_unnorm(const float* dpooled_b, const HeadTower& tw, const TowerLayout& w, int64_t d, const float* saved, float* dgamma_b,
                       int64_t b) {
  const int64_t p = w.pooled_rows;
  const float inv_d = 1.0f / static_cast<float>(d);
  const float inv_p = 1.0f / static_cast<float>(p);
  for (int64_t j = 0; j < d; j++) dgamma_b[j] = 0;
  for (int64_t i = 0; i < tw.tokens; i++) {
    float* dx = tw.dh + (b * tw.tokens + i) * d;
    if (i >= p) {
      for (int64_t j = 0; j < d; j++) dx[j] = 0;
      continue;
    }
    const float* xhat = saved + w.xhat + (b * p + i) * d;
    // dxhat = dy gamma with dy = dpooled / p; dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)).
    float m1 = 0, m2 = 0;
    for (int64_t j = 0; j < d; j++) {
      const float g = dpooled_b[j] * inv_p * tw.ln_gamma[j];
      m1 += g;
      m2 += g * xhat[j];
      dgamma_b[j] += dpooled_b[j] * inv_p * xhat[j];
    }
    m1 *= inv_d;
    m2 *= inv_d;
    const float rs = saved[w.rstd + b * p + i];
    for (int64_t j = 0; j < d; j++) dx[j] = rs * (dpooled_b[j] * inv_p * tw.ln_gamma[j] - m1 - xhat[j] * m2);
  }
}

// Softmax of each of the n lines of logits [n, n] into out (rows: line_stride n, step 1; columns: line_stride 1,
// step n); returns the lines' summed cross-entropy against their diagonal entry.
double softmax_lines(const float* logits, float* out, int64_t n, int64_t line_stride, int64_t step) {
  double loss = 0;
  for (int64_t l = 0; l < n; l++) {
    const int64_t at = l * line_stride;
    float mx = -INFINITY;
    for (int64_t k = 0; k < n; k++) mx = std::fmax(mx, logits[at + k * step]);
    float sum = 0;
    for (int64_t k = 0; k < n; k++) sum += (out[at + k * step] = std::exp(logits[at + k * step] - mx));
    const float inv = 1.0f / sum;
    for (int64_t k = 0; k < n; k++) out[at + k * step] *= inv;
    loss -= static_cast<double>(logits[l * (n + 1)] - mx) - std::log(static_cast<double>(sum));
  }
  return loss;
}

}  // namespace

int64_t clip_head_saved_floats(const HeadShape& s, const HeadTower towers[2]) { return layout_of(s, towers).total; }

float clip_head_forward(const HeadShape& s, const HeadTower towers[2], float log_scale, float* saved) {
  const Layout l = layout_of(s, towers);
  const int64_t n = s.batch, d = s.width, e = s.embed;
  std::vector<float> features(static_cast<size_t>(n * e));
  for (int t = 0; t < 2; t++) {
    const HeadTower& tw = towers[t];
    const TowerLayout& w = l.tower[t];
    parallel_for(n, 8, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) norm_and_pool(tw.h, tw, w, d, s.eps, saved, b);
    });
    matmul_whole(false, false, n, e, d, 1.0f, saved + w.pooled, d, tw.proj, e, 0.0f, features.data(), e);
    for (int64_t b = 0; b < n; b++) {
      const float* f = features.data() + b * e;
      float ss = 0;
      for (int64_t j = 0; j < e; j++) ss += f[j] * f[j];
      const float r = 1.0f / std::sqrt(ss + kNormEps);
      saved[w.rnorm + b] = r;
      for (int64_t j = 0; j < e; j++) saved[w.unit + b * e + j] = f[j] * r;
    }
  }
  // Rows: image i against every caption; columns: caption j against every image. The matches are the diagonal.
  const float scale = std::exp(log_scale);
  saved[l.scale] = scale;
  float* logits = saved + l.logits;
  matmul_whole(false, true, n, n, e, 1.0f, saved + l.tower[0].unit, e, saved + l.tower[1].unit, e, 0.0f, logits, n);
  for (int64_t k = 0; k < n * n; k++) logits[k] *= scale;
  const double loss = softmax_lines(logits, saved + l.probs_rows, n, n, 1) + softmax_lines(logits, saved + l.probs_cols, n, 1, n);
  return static_cast<float>(loss / (2.0 * static_cast<double>(n)));
}

float clip_head_backward(const HeadShape& s, const HeadTower towers[2], float upstream, const float* saved) {
  const Layout l = layout_of(s, towers);
  const int64_t n = s.batch, d = s.width, e = s.embed;
  const float* logits = saved + l.logits;
  const float scale = saved[l.scale];
  // dLoss/dlogits = upstream / 2n (P - I + Q - I); logits = exp(log_scale) u v^T, so dlog_scale = sum(G logits).
  std::vector<float> g(static_cast<size_t>(n * n));
  const float c = upstream / (2.0f * static_cast<float>(n));
  double dlog_scale = 0;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t j = 0; j < n; j++) {
      const int64_t k = i * n + j;
      g[k] = c * (saved[l.probs_rows + k] + saved[l.probs_cols + k] - (i == j ? 2.0f : 0.0f));
      dlog_scale += static_cast<double>(g[k]) * logits[k];
    }
  }
  std::vector<float> dunit(static_cast<size_t>(n * e)), dpooled(static_cast<size_t>(n * d)), dgamma(static_cast<size_t>(n * d));
  for (int t = 0; t < 2; t++) {
    const HeadTower& tw = towers[t];
    const TowerLayout& w = l.tower[t];
    const float* unit = saved + w.unit;
    // Gradients of the unit rows: s G v for the images (rows of G), s G^T u for the captions (its columns).
    matmul_whole(t == 1, false, n, e, n, scale, g.data(), n, saved + l.tower[1 - t].unit, e, 0.0f, dunit.data(), e);
    // Through the normalisation, in place: dfeatures = r (du - u (du . u)).
    for (int64_t b = 0; b < n; b++) {
      float* du = dunit.data() + b * e;
      const float* u = unit + b * e;
      float dot = 0;
      for (int64_t j = 0; j < e; j++) dot += du[j] * u[j];
      const float r = saved[w.rnorm + b];
      for (int64_t j = 0; j < e; j++) du[j] = r * (du[j] - u[j] * dot);
    }
    matmul_whole(true, false, d, e, n, 1.0f, saved + w.pooled, d, dunit.data(), e, 0.0f, tw.d_proj, e);
    matmul_whole(false, true, n, d, e, 1.0f, dunit.data(), e, tw.proj, e, 0.0f, dpooled.data(), d);
    parallel_for(n, 8, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) unpool_and_unnorm(dpooled.data() + b * d, tw, w, d, saved, dgamma.data() + b * d, b);
    });
    for (int64_t j = 0; j < d; j++) tw.d_ln_gamma[j] = tw.d_ln_beta[j] = 0;
    for (int64_t b = 0; b < n; b++) {
      for (int64_t j = 0; j < d; j++) {
        tw.d_ln_gamma[j] += dgamma[b * d + j];
        tw.d_ln_beta[j] += dpooled[b * d + j];
      }
    }
  }
  return static_cast<float>(dlog_scale);
}
