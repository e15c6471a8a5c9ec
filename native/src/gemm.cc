#include "gemm.h"

#include <cblas.h>

#include "kernels.h"
#include "parallel.h"
#include "vectorize.h"

namespace {

// Below this many multiply-adds a product is one BLAS call: sharing it costs more than it saves.
constexpr int64_t kParallelMacs = 1 << 19;

// Larger products are cut into this many blocks of rows, whatever the thread count, and the blocks shared among the
// threads. OpenBLAS's result for a row depends on where the row falls in the block it is computed in (its kernels
// treat the last rows of a block differently), so a split that followed the thread count would make results differ
// bit by bit between a 1-thread and a 2-thread job. Two blocks cost ~2% over one BLAS call here; four cost up to 30%
// on the weight-gradient shapes (measured), so the products use at most two threads.
constexpr int64_t kRowBlocks = 2;

// Calls block(r0, r1) for each block of rows of an m-row product, the blocks running in parallel.
template <typename Block>
void for_row_blocks(int64_t m, int64_t macs, Block block) {
  const int64_t blocks = macs < kParallelMacs || m < 2 * 16 ? 1 : kRowBlocks;
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) block(m * b / blocks, m * (b + 1) / blocks);
  });
}

}  // namespace

void gemm_batched(const GemmShape& s, const float* a, const float* b, float* c) {
  const int64_t lda = s.trans_a ? s.m : s.k;
  const int64_t ldb = s.trans_b ? s.k : s.n;
  if (s.batch >= 4) {
    // Many small products (attention heads): whole matrices per thread (each computed alike on any thread).
    const bool parallel = s.batch * s.m * s.n * s.k >= kParallelMacs;
    parallel_for(s.batch, parallel ? 2 : s.batch, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans, s.m, s.n, s.k, 1.0f,
                    a + i * s.stride_a, lda, b + i * s.stride_b, ldb, s.accumulate ? 1.0f : 0.0f, c + i * s.stride_c, s.n);
      }
    });
    return;
  }
  for (int64_t i = 0; i < s.batch; i++) {
    matmul(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a + i * s.stride_a, lda, b + i * s.stride_b, ldb, s.accumulate ? 1.0f : 0.0f,
           c + i * s.stride_c, s.n);
  }
}

void matmul_whole(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                  int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}

void matmul(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
            int64_t ldb, float beta, float* c, int64_t ldc) {
  for_row_blocks(m, m * n * k, [&](int64_t r0, int64_t r1) {
    // Row r of op(A) is row r of A, or column r when A is transposed: the block starts r0 rows or columns in.
    const float* a0 = trans_a ? a + r0 : a + r0 * lda;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, r1 - r0, n, k, alpha, a0, lda, b, ldb,
                beta, c + r0 * ldc, ldc);
  });
}

void linear_forward(const float* x, const float* w, const float* bias, const float* residual, float* out, int64_t n, int64_t din,
                    int64_t dout) {
  for_row_blocks(n, n * din * dout, [&](int64_t r0, int64_t r1) {
    float beta = 0.0f;
    if (bias || residual) {
      // Start from residual + bias in every row and let the product accumulate onto it.
      for (int64_t r = r0; r < r1; r++) {
        float* o = out + r * dout;
        const float* res = residual ? residual + r * dout : nullptr;
        for (int64_t j = 0; j < dout; j++) o[j] = (res ? res[j] : 0.0f) + (bias ? bias[j] : 0.0f);
      }
      beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, dout, din, 1.0f, x + r0 * din, din, w, dout, beta, out + r0 * dout, dout);
  });
}

FLIP_VECTORIZE
void column_sums(const float* x, float* sums, int64_t n, int64_t d) {
  for (int64_t j = 0; j < d; j++) sums[j] = 0;
  for (int64_t r = 0; r < n; r++) {
    for (int64_t j = 0; j < d; j++) sums[j] += x[r * d + j];
  }
}

const char* blas_config() { return openblas_get_config(); }
const char* blas_core() { return openblas_get_corename(); }

void set_threads(int threads) {
  // OpenBLAS stays single-threaded; the pool splits the work (parallel.h says why).
  openblas_set_num_threads(1);
  pool_set_threads(threads);
}

int threads() { return pool_threads(); }
