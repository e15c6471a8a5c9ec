// The towers' inputs: the image tower's patch embedding with its fixed positions and CLS rows, and the text tower's
// token and position embeddings, forward and backward. Each replaces a handful of tfjs kernels (a gather, adds, the
// CLS broadcast product) and the host-side gather of the position rows. Index ranges are checked by the caller
// (addon.cc).
#include "kernels.h"
#include "parallel.h"
#include "vectorize.h"

namespace {

FLIP_VECTORIZE
void add_rows(float* out, const float* a, const float* b, int64_t d) {
  for (int64_t j = 0; j < d; j++) out[j] = a[j] + b[j];
}

FLIP_VECTORIZE
void accumulate_row(float* acc, const float* x, int64_t d) {
  for (int64_t j = 0; j < d; j++) acc[j] += x[j];
}

}  // namespace

void patch_embedding_forward(const PatchEmbedding& e, const float* pixels, const int32_t* keep, float* out) {
  const int64_t k = e.tokens - 1, d = e.width;
  // Every row starts from its additive part (CLS rows: cls + bias; patch rows: bias + the kept patch's position); the
  // product of the pixel rows (zero on CLS rows) is then accumulated onto it.
  for (int64_t b = 0; b < e.batch; b++) {
    float* row = out + b * e.tokens * d;
    add_rows(row, e.cls, e.bias, d);
    for (int64_t j = 0; j < k; j++) add_rows(row + (1 + j) * d, e.bias, e.positions + keep[b * k + j] * d, d);
  }
  matmul(false, false, e.batch * e.tokens, d, e.pixel_values, 1.0f, pixels, e.pixel_values, e.w, d, 1.0f, out, d);
}

void patch_embedding_backward(const PatchEmbedding& e, const float* pixels, const float* dout, float* dw, float* dbias, float* dcls) {
  const int64_t rows = e.batch * e.tokens, d = e.width;
  matmul_whole(true, false, e.pixel_values, d, rows, 1.0f, pixels, e.pixel_values, dout, d, 0.0f, dw, d);
  column_sums(dout, dbias, rows, d);
  for (int64_t j = 0; j < d; j++) dcls[j] = 0;
  for (int64_t b = 0; b < e.batch; b++) accumulate_row(dcls, dout + b * e.tokens * d, d);
}

void token_embedding_forward(const TokenEmbedding& e, const int32_t* ids, const int32_t* positions, float* out) {
  for (int64_t r = 0; r < e.rows; r++) add_rows(out + r * e.width, e.table + ids[r] * e.width, e.positions + positions[r] * e.width, e.width);
}

void token_embedding_backward(const TokenEmbedding& e, const int32_t* ids, const int32_t* positions, const float* dout, float* dtable,
                              float* dpositions) {
  for (int64_t i = 0; i < e.vocab * e.width; i++) dtable[i] = 0;
  for (int64_t i = 0; i < e.context * e.width; i++) dpositions[i] = 0;
  // In row order, on one thread: a token's gradient is the same sum whatever the thread count.
  for (int64_t r = 0; r < e.rows; r++) {
    accumulate_row(dtable + ids[r] * e.width, dout + r * e.width, e.width);
    accumulate_row(dpositions + positions[r] * e.width, dout + r * e.width, e.width);
  }
}
