// Batched single-precision matrix products on OpenBLAS: C[i] (+)= op(A[i]) op(B[i]) for i < batch, row-major.
#pragma once
#include <cstdint>

struct GemmShape {
  int64_t batch, m, n, k;
  bool trans_a, trans_b;
  // Elements between consecutive matrices of the batch; 0 repeats one matrix for every i (broadcasting).
  int64_t stride_a, stride_b, stride_c;
  bool accumulate;  // C += product instead of C = product
};

void gemm_batched(const GemmShape& s, const float* a, const float* b, float* c);

// What OpenBLAS reports about itself: version and build options, the core it picked.
const char* blas_config();
const char* blas_core();

// Threads the kernels use (parallel.h), the calling thread included.
void set_threads(int threads);
int threads();
