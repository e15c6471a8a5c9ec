#pragma once
// Subnormal floats flushed to zero (FTZ: results, DAZ: inputs) while the kernels run.
//
// Why: the gradients of small models reach subnormal magnitudes (< 1.2e-38), and x86 cores handle every subnormal
// operand or result in microcode, ~100x the cost of a normal multiply-add. With the tiny preset the backward products
// ran 3-4x slower for it (perf: ~60% of a step inside OpenBLAS's sgemm kernel), which also hid most of what masking
// saves. Values that small change nothing a float32 training run can resolve.
//
// The main thread's mode is set for the length of one add-on call and restored after it (JavaScript and wasm, which
// share the thread, keep IEEE subnormals); the pool's worker threads run only kernels and keep it set.
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bits 15 (flush to zero) and 6 (denormals are zero)

class FlushDenormals {
 public:
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtzDaz); }
  ~FlushDenormals() { _mm_setcsr(saved_); }
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  unsigned saved_;
};

inline void flush_denormals_in_this_thread() { _mm_setcsr(_mm_getcsr() | kFtzDaz); }
#else
class FlushDenormals {};
inline void flush_denormals_in_this_thread() {}
#endif
