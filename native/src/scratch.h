// Reusable scratch buffers for the fused kernels' intermediate results (gradients that never leave the kernel).
// Grow-only: a training step asks for the same sizes every time, so after the first step nothing is allocated (fresh
// large allocations would cost page faults on every call). Used from the calling thread only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

class Scratch {
 public:
  // A buffer of at least n floats for `slot`; valid until the same slot is asked for again.
  float* get(int slot, int64_t n) {
    if (static_cast<int>(slots_.size()) <= slot) slots_.resize(slot + 1);
    std::vector<float>& s = slots_[slot];
    if (static_cast<int64_t>(s.size()) < n) s.resize(static_cast<size_t>(n));
    return s.data();
  }

  void release() { std::vector<std::vector<float>>().swap(slots_); }

  // Bytes held, for memory accounting (tfjs counts only its own tensors).
  int64_t bytes() const {
    int64_t total = 0;
    for (const auto& s : slots_) total += static_cast<int64_t>(s.capacity() * sizeof(float));
    return total;
  }

 private:
  std::vector<std::vector<float>> slots_;
};
