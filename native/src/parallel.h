// A small pool of persistent worker threads for the add-on's kernels. OpenBLAS's own threading made every product of
// the reference step slower on the 2-vCPU machines here (measured), while two single-threaded products running at once
// reach ~1.9x; so OpenBLAS runs with one thread and the kernels split their work across this pool instead.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

// Threads the kernels may use, the calling thread included (>= 1). Starts or stops workers as needed.
void pool_set_threads(int threads);
int pool_threads();

// Calls body(begin, end) over a split of [0, count) into at most pool_threads() contiguous parts of at least `grain`
// items each, the calling thread taking the first part; returns when every part is done. With one part, or when called
// from inside a part of another parallel_for, it just calls body(0, count): every body here must compute the same
// result whatever the split (they do: splits only decide which thread computes which independent items).
void parallel_for(int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

// Element-wise work over several arrays of the given sizes as one run of elements, split like parallel_for: calls
// body(item, begin, end) for each array's part [begin, end) of a split. Any split gives the same result.
void parallel_for_elements(const std::vector<int64_t>& sizes, int64_t grain, const std::function<void(size_t, int64_t, int64_t)>& body);

// Runs first() and second() at once when there are two threads, one after the other when there is one (or when
// nested in another job); a parallel_for inside either runs inline.
template <typename First, typename Second>
void run_pair(First first, Second second) {
  parallel_for(2, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      if (i == 0) first();
      else second();
    }
  });
}
